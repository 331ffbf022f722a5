"""UART, 8 data bits, no parity, 1 stop bit (8N1), at any baud rate up to a quarter of the
clock: 115 200 baud to 12 Mbaud on the 62.5 MHz control clock.

Bit times come from a phase accumulator (`step` = baud / clock × 2**32 per cycle), so even a
baud rate that does not divide the clock (3 Mbaud is 41.67 cycles) is exact on average and each
bit edge within one cycle of ideal. The receiver restarts its accumulator half a bit ahead at
each start edge and samples every bit in its middle; a byte whose stop bit is not high is a
framing error, counted and dropped.
"""
from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ...regmap import CLOCK_HZ

__all__ = ["UartTx", "UartRx", "baud_step"]


def baud_step(baud, clock_hz=CLOCK_HZ):
    if not 0 < baud <= clock_hz / 4:
        raise ValueError(f"baud rate {baud} is outside 1..{clock_hz // 4}")
    return round(baud * (1 << 32) / clock_hz)


class UartTx(wiring.Component):
    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, baud, clock_hz=CLOCK_HZ):
        self._step = baud_step(baud, clock_hz)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        phase = Signal(33)
        bits = Signal(10)          # stop, data[7:0], start: sent LSB first
        left = Signal(range(11))
        tick = phase[32]
        m.d.sync += phase.eq(phase[:32] + self._step)
        with m.If(left == 0):
            m.d.comb += self.data.ready.eq(1)
            with m.If(self.data.valid):
                m.d.sync += [bits.eq(Cat(0, self.data.payload, 1)), left.eq(10),
                             phase.eq(0)]
        with m.Elif(tick):
            m.d.sync += [self.tx.eq(bits[0]), bits.eq(bits >> 1), left.eq(left - 1)]
        # The start bit goes out at the first tick after a byte is taken; the line idles high.
        with m.If((left == 0) & ~self.data.valid):
            m.d.sync += self.tx.eq(1)
        return m


class UartRx(wiring.Component):
    rx: In(1, init=1)
    data: Out(stream.Signature(8))
    framing_errors: Out(32)
    overruns: Out(32)

    def __init__(self, baud, clock_hz=CLOCK_HZ):
        self._step = baud_step(baud, clock_hz)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        phase = Signal(33)
        shift = Signal(9)
        count = Signal(range(11))
        tick = phase[32]
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += [phase.eq(1 << 31), count.eq(0)]   # half a bit ahead
                    m.next = "BITS"
            with m.State("BITS"):
                m.d.sync += phase.eq(phase[:32] + self._step)
                with m.If(tick):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), count.eq(count + 1)]
                    with m.If((count == 0) & line):
                        m.next = "IDLE"                 # a glitch, not a start bit
                    with m.If(count == 9):
                        m.next = "IDLE"
                        with m.If(~line):
                            m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                        with m.Elif(self.data.valid & ~self.data.ready):
                            m.d.sync += self.overruns.eq(self.overruns + 1)
                        with m.Else():
                            m.d.sync += [self.data.payload.eq(shift[1:]),
                                         self.data.valid.eq(1)]
        return m
