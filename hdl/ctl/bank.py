"""The register bank, built from the contract in `wirestamp.regmap`.

Every register of the map becomes a port of the bank: "r" registers are inputs the core drives
(unconnected ones read their reset value, which is how constants such as ID are made), "rw"
registers are outputs holding what the host wrote, "w" registers are outputs with a one-cycle
`<name>_strobe`. A register array (count > 1) is one input, the element `<name>_select`
names (so the core can keep the array in a small memory). Each table becomes a write port
into a memory row, one 32-bit word at a time.

A register wider than 32 bits reads as several words, low first; reading word 0 latches the
others, so they all belong to the same instant.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ... import regmap
from ..fanout import and_or, copies

__all__ = ["RegisterBus", "TableWrite", "RegisterBank", "row_layout"]

BLOCK_PAIR_BITS = 3         # the read multiplexer's first level: 8 pairs of words


class RegisterBus(wiring.Signature):
    """Word-addressed 32-bit bus, as the master sees it. After `r_en` the master holds `addr`
    until `r_valid`, the cycle `r_data` is valid (the bank takes READ_LATENCY cycles; the
    core first brings its counters over). WRITE_LATENCY cycles after `w_en` a written
    register holds its value (a table row its word), and a command's strobe is high (for one
    cycle)."""
    READ_LATENCY = 4
    WRITE_LATENCY = 3

    def __init__(self):
        super().__init__({
            "addr": Out(16), "w_data": Out(32), "w_en": Out(1), "r_en": Out(1), "r_data": In(32),
            "r_valid": In(1),
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
            shape = reg.width
            name = _port_name(reg)
            if reg.count > 1:
                assert reg.access == "r", "register arrays are read-only"
                members[name + "_select"] = Out(range(reg.count))
            if reg.access == "r":
                members[name] = In(shape, init=reg.reset)
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
        for reg in regmap.REGISTERS:
            if reg.access == "w" or reg.pops:
                m.d.sync += getattr(self, _port_name(reg) + "_strobe").eq(0)

        # Writes are registered, then decoded into one registered hit per word, then done:
        # short paths from the bus master, and each word's enable comes from a flip-flop.
        w_addr, w_data, w_en = Signal(16), Signal(32), Signal()
        m.d.sync += [w_addr.eq(bus.addr), w_data.eq(bus.w_data), w_en.eq(bus.w_en)]
        hit_data = Signal(32)
        m.d.sync += hit_data.eq(w_data)
        for reg, value, addr in self._elements():
            if reg.access == "r":
                continue
            for word in range(reg.words):
                hit = Signal(name=f"{_port_name(reg)}_hit{word}")
                m.d.sync += hit.eq(w_en & (w_addr == addr + word))
                with m.If(hit):
                    m.d.sync += value.word_select(word, 32).eq(hit_data)
                    if reg.access == "w":
                        m.d.sync += getattr(self, _port_name(reg) + "_strobe").eq(1)

        # Reads take four cycles: the address is registered; a multiplexer within each
        # aligned block of 8 pairs of words picks a pair, registered; the block's pair is
        # chosen, registered; then the word. The high word of a 64-bit register comes from
        # `shadow`, latched when its low word is read; a wider register latches its upper
        # words into its own snapshot.
        addr, reading = Signal(16), Signal()
        m.d.sync += [addr.eq(bus.addr), reading.eq(bus.r_en)]
        for reg in regmap.REGISTERS:
            if reg.count > 1:
                element = (addr - reg.addr) >> (reg.words - 1).bit_length()
                m.d.comb += getattr(self, _port_name(reg) + "_select").eq(element)
        pairs = {}                      # pair address -> [low word, high word]
        shadowed = set()                # pairs holding a 64-bit register
        array_pairs = {}                # the elements of an array share their pair
        for reg, value, base in self._elements():
            if reg.access == "w":
                continue
            words = [value[32 * i:32 * (i + 1)] for i in range(reg.words)]
            if reg.count > 1:
                assert reg.words == 2, "register arrays hold 64-bit registers"
                pairs[base >> 1] = array_pairs.setdefault(reg.name, words)
                shadowed.add(base >> 1)
                continue
            if reg.words == 2:
                shadowed.add(base >> 1)
            elif reg.words > 2:
                # Latched as the low word is read; each word's enable is a copy of its own,
                # decoded from the bus a cycle early (one enable cannot reach every word).
                snapshot = Signal(reg.width - 32, name=f"{_port_name(reg)}_snapshot")
                enables = copies(1, reg.words - 1, f"{_port_name(reg)}_snap")
                m.d.sync += [enable.eq(bus.r_en & (bus.addr == base)) for enable in enables]
                for i, enable in enumerate(enables):
                    with m.If(enable):
                        m.d.sync += snapshot[32 * i:32 * (i + 1)].eq(value[32 * (i + 1):
                                                                          32 * (i + 2)])
                words[1:] = [snapshot[32 * i:32 * (i + 1)] for i in range(reg.words - 1)]
            if reg.pops:
                with m.If(reading & (addr == base)):
                    m.d.sync += getattr(self, _port_name(reg) + "_strobe").eq(1)
            for i, word in enumerate(words):
                pairs.setdefault((base + i) >> 1, [Const(0, 32)] * 2)[(base + i) & 1] = word

        block_addr, block_reading = Signal(16), Signal()
        m.d.sync += [block_addr.eq(addr), block_reading.eq(reading)]
        block_pairs = {}
        blocks = sorted({index >> BLOCK_PAIR_BITS for index in pairs})
        # Each block's multiplexer is an AND-OR under its own copy of the pair's one-hot
        # address: one register cannot reach all of them in a cycle, and a binary select
        # takes a LUT level more.
        block_selects = copies(1 << BLOCK_PAIR_BITS, len(blocks), "in_block")
        m.d.sync += [select.eq(1 << bus.addr[1:1 + BLOCK_PAIR_BITS])
                     for select in block_selects]
        for block, in_block in zip(blocks, block_selects):
            indices = [(block << BLOCK_PAIR_BITS) | i for i in range(1 << BLOCK_PAIR_BITS)]
            entries = [pairs.get(index) for index in indices]
            block_pair = Signal(65, name=f"block_{block}")
            if all(entry is entries[0] for entry in entries):   # a register array
                m.d.sync += block_pair.eq(Cat(*entries[0], indices[0] in shadowed))
            else:
                m.d.sync += block_pair.eq(and_or([
                    (in_block[i], Cat(*entry, index in shadowed))
                    for i, (entry, index) in enumerate(zip(entries, indices))
                    if entry is not None]))
            block_pairs[block] = block_pair
        # The block is chosen by a registered one-hot match (an AND-OR, no address decode),
        # in two copies, each for half of the pair.
        halves = copies(len(blocks), 2, "hits")
        m.d.sync += [hits.eq(Cat(addr[1 + BLOCK_PAIR_BITS:] == block for block in blocks))
                     for hits in halves]
        pair, shadow = Signal(64), Signal(32)
        high_is_shadow = Signal()
        chosen = Cat(pair, high_is_shadow)
        for half, hits in zip((slice(0, 32), slice(32, 65)), halves):
            m.d.sync += chosen[half].eq(and_or([(hits[i], block_pairs[block][half])
                                                for i, block in enumerate(blocks)]))
        word_addr, word_reading = Signal(), Signal()
        m.d.sync += [word_addr.eq(block_addr[0]), word_reading.eq(block_reading),
                     bus.r_valid.eq(word_reading)]
        with m.If(word_reading):
            m.d.sync += bus.r_data.eq(Mux(word_addr,
                                          Mux(high_is_shadow, shadow, pair[32:]), pair[:32]))
            with m.If(~word_addr):
                m.d.sync += shadow.eq(pair[32:])
        for table in regmap.TABLES:
            self._table(m, table, getattr(self, table.name.lower()), w_addr, w_data, w_en)
        return m

    def _elements(self):
        """(register, its value, its address) for every register and array element."""
        for reg in regmap.REGISTERS:
            port = getattr(self, _port_name(reg))
            for i in range(reg.count):
                yield reg, port, reg.addr + i * reg.words

    def _table(self, m, table, write, w_addr, w_data, w_en):
        """The table's write port, from registers (a cycle after the bus write is decoded)."""
        word_bits = (table.stride - 1).bit_length()
        row_bits = (table.rows - 1).bit_length()
        word = w_addr[:word_bits]
        selected = w_addr[word_bits:] >> row_bits == table.base >> (word_bits + row_bits)
        m.d.sync += [
            write.addr.eq(w_addr[word_bits:word_bits + row_bits]),
            write.data.eq(Cat(*[w_data] * table.row_words)),
            write.en.eq(Mux(w_en & selected & (word < table.row_words), 1 << word, 0)),
        ]
