"""The register bank, built from the contract in `wirestamp.regmap`.

Every register of the map becomes a port of the bank: "r" registers are inputs the core drives
(unconnected ones read their reset value, which is how constants such as ID are made), "rw"
registers are outputs holding what the host wrote, "w" registers are outputs with a one-cycle
`<name>_strobe`. Each table becomes a write port into a memory row, one 32-bit word at a time.

A register wider than 32 bits reads as several words, low first; reading word 0 latches the
others, so they all belong to the same instant.
"""
from amaranth import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ... import regmap

__all__ = ["RegisterBus", "TableWrite", "RegisterBank", "row_layout"]


class RegisterBus(wiring.Signature):
    """Word-addressed 32-bit bus, as the master sees it. `r_data` is valid the cycle after
    `r_en`. A written register holds its value from the next cycle; a command (a write
    strobe) acts on the edge after that."""
    def __init__(self):
        super().__init__({
            "addr": Out(16), "w_data": Out(32), "w_en": Out(1), "r_en": Out(1), "r_data": In(32),
        })


class TableWrite(wiring.Signature):
    """Writes one 32-bit word of a table row (matches a memory write port of granularity 32)."""
    def __init__(self, table):
        self.table = table
        super().__init__({
            "addr": Out(range(table.rows)),
            "data": Out(32 * table.row_words),
            "en": Out(table.row_words),
        })


def row_layout(table):
    """The `data.StructLayout` of one row of a contract table."""
    return data.StructLayout({
        name: signed(width) if name in regmap.SIGNED_FIELDS else width
        for name, width in table.fields
    })


def _port_name(reg):
    return reg.name.lower()


class RegisterBank(wiring.Component):
    def __init__(self):
        members = {"bus": In(RegisterBus())}
        for reg in regmap.REGISTERS:
            shape = reg.width if reg.count == 1 else data.ArrayLayout(reg.width, reg.count)
            name = _port_name(reg)
            if reg.access == "r":
                members[name] = In(shape, init=reg.reset if reg.count == 1 else None)
            elif reg.access == "rw":
                members[name] = Out(shape, init=reg.reset)
            else:
                members[name] = Out(shape)
            if reg.access == "w" or reg.pops:
                members[name + "_strobe"] = Out(1)
        for table in regmap.TABLES:
            members[table.name.lower()] = Out(TableWrite(table))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        # The words above word 0 of the wide register whose word 0 was read last.
        shadow = Signal(max(r.width for r in regmap.REGISTERS if r.access != "w") - 32)

        for reg in regmap.REGISTERS:
            if reg.access == "w" or reg.pops:
                m.d.sync += getattr(self, _port_name(reg) + "_strobe").eq(0)
        with m.If(bus.r_en):
            m.d.sync += bus.r_data.eq(0)

        with m.Switch(bus.addr):
            for reg in regmap.REGISTERS:
                port = getattr(self, _port_name(reg))
                for i in range(reg.count):
                    value = port if reg.count == 1 else port[i]
                    base = reg.addr + i * reg.words
                    for word in range(reg.words):
                        with m.Case(base + word):
                            self._word(m, reg, value, word, shadow)
        for table in regmap.TABLES:
            self._table(m, table, getattr(self, table.name.lower()))
        return m

    def _word(self, m, reg, value, word, shadow):
        bus = self.bus
        if reg.access == "w":
            with m.If(bus.w_en):
                m.d.sync += [value.eq(bus.w_data),
                             getattr(self, _port_name(reg) + "_strobe").eq(1)]
            return
        with m.If(bus.r_en):
            if word == 0:
                m.d.sync += bus.r_data.eq(value[:32])
                if reg.words > 1:
                    m.d.sync += shadow.eq(value[32:])
                if reg.pops:
                    m.d.sync += getattr(self, _port_name(reg) + "_strobe").eq(1)
            else:
                m.d.sync += bus.r_data.eq(shadow.word_select(word - 1, 32))
        if reg.access == "rw":
            with m.If(bus.w_en):
                m.d.sync += value.word_select(word, 32).eq(bus.w_data)

    def _table(self, m, table, write):
        bus = self.bus
        word_bits = (table.stride - 1).bit_length()
        row_bits = (table.rows - 1).bit_length()
        word = bus.addr[:word_bits]
        selected = bus.addr[word_bits:] >> row_bits == table.base >> (word_bits + row_bits)
        m.d.comb += [
            write.addr.eq(bus.addr[word_bits:word_bits + row_bits]),
            write.data.eq(Cat(*[bus.w_data] * table.row_words)),
        ]
        with m.If(bus.w_en & selected & (word < table.row_words)):
            m.d.comb += write.en.eq(1 << word)
