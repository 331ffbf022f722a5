"""PHY management: an MDIO master (IEEE 802.3 clause 22.2.4, management frames).

A frame is 64 MDC periods, most significant bit first:

    32 × 1 (preamble) · 01 (start) · 10 read / 01 write · PHYAD[4:0] · REGAD[4:0]
    · turnaround (write: 10 driven; read: released, the PHY drives 0) · DATA[15:0]

MDC is the control clock / 32: 1.95 MHz on the 62.5 MHz clock, under the clause's 2.5 MHz
(400 ns period, 160 ns each half). The master changes MDIO as MDC falls and samples it just
before MDC rises; a PHY answers within 300 ns of a rising edge (22.3.4), so a read bit has
been stable for over 400 ns when it is sampled. A read's data is the last 16 bits sampled.
"""
from amaranth import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ... import regmap

__all__ = ["MdioPins", "MdioMaster", "Command", "Result", "HALF_PERIOD"]

HALF_PERIOD = 16                # control-clock cycles: MDC = clock / 32
assert regmap.MDIO_CYCLES == 64 * 2 * HALF_PERIOD

Command = data.StructLayout(dict(regmap.MDIO_COMMAND_FIELDS))
Result = data.StructLayout(dict(regmap.MDIO_RESULT_FIELDS))


class MdioPins(wiring.Signature):
    """The management pins as the master sees them: MDC, and MDIO as a tristate (`o` driven
    while `oe`; `i` is the line, pulled up when nobody drives it)."""
    def __init__(self):
        super().__init__({"mdc": Out(1), "o": Out(1), "oe": Out(1), "i": In(1, init=1)})


class MdioMaster(wiring.Component):
    pins: Out(MdioPins())
    command: In(stream.Signature(Command))      # taken only while no frame is under way
    result: Out(Result)

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_i = FFSynchronizer(self.pins.i, line, init=1)

        # The preamble is not stored: 32 ones go out while more than 32 bits are left, then
        # `shift` from its top bit. The master drives every bit of a write, and of a read
        # all but the last 18 (turnaround and data).
        shift = Signal(32)          # start, op, PHYAD, REGAD, turnaround, data
        write = Signal()
        left = Signal(range(65))    # bits still to send
        phase = Signal(range(2 * HALF_PERIOD))
        sampled = Signal(16)
        m.d.comb += [self.result.data.eq(sampled), self.result.busy.eq(left != 0),
                     self.command.ready.eq(left == 0)]

        cmd = self.command.payload
        with m.If(self.command.valid & self.command.ready):
            op = Cat(cmd.write, ~cmd.write)                         # write 01, read 10
            ta = Cat(Const(0, 1), cmd.write)                        # write 10, read released
            m.d.sync += [shift.eq(Cat(cmd.data, ta, cmd.reg, cmd.phy, op, Const(0b01, 2))),
                         write.eq(cmd.write), left.eq(64), phase.eq(0)]
        with m.Elif(left != 0):
            m.d.sync += phase.eq(phase + 1)
            with m.If(phase == 0):
                m.d.sync += [self.pins.mdc.eq(0), self.pins.o.eq((left > 32) | shift[31]),
                             self.pins.oe.eq(write | (left > 18))]
            with m.If(phase == HALF_PERIOD - 1):
                m.d.sync += sampled.eq(Cat(line, sampled[:15]))
            with m.If(phase == HALF_PERIOD):
                m.d.sync += self.pins.mdc.eq(1)
            with m.If(phase == 2 * HALF_PERIOD - 1):
                m.d.sync += left.eq(left - 1)
                with m.If(left <= 32):
                    m.d.sync += shift.eq(shift << 1)
        with m.Else():
            m.d.sync += [self.pins.mdc.eq(0), self.pins.oe.eq(0)]
        return m
