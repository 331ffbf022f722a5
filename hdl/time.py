"""The timebase: a 64-bit nanosecond clock that both TX and RX stamps are taken from.

It advances by `increment` ns every cycle, in 8.24 fixed point: 8 ns nominal at 125 MHz, trimmed
by the host to cancel the oscillator's ppm error (resolution 2**-24 ns per cycle, 0.0075 ppm).
A 64-bit ns counter wraps after 584 years.
"""
from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..regmap import NS_PER_CYCLE, TIME_FRAC_BITS

__all__ = ["Timebase", "Reference"]

LOW_BITS = 16               # ns bits on the fast carry chain (the increment is < 2**8 ns)


class Timebase(wiring.Component):
    increment: In(32, init=NS_PER_CYCLE << TIME_FRAC_BITS)
    now: Out(64)

    def elaborate(self, platform):
        m = Module()
        # Two carry chains instead of one of 88 bits: the fraction and the low ns bits add the
        # increment; their carry, registered, steps the high bits to `high_plus` (high + 1,
        # kept ready) a cycle later, so `now` shows the low bits a cycle late beside them. `low`
        # starts a cycle ahead, so `now` is still 8 ns × the cycles since reset.
        fraction, low = Signal(TIME_FRAC_BITS), Signal(LOW_BITS, init=NS_PER_CYCLE)
        high, high_plus = Signal(64 - LOW_BITS), Signal(64 - LOW_BITS, init=1)
        total = Signal(TIME_FRAC_BITS + LOW_BITS + 1)
        carry, low_now = Signal(), Signal(LOW_BITS)
        m.d.comb += total.eq(Cat(fraction, low) + self.increment)
        m.d.sync += [Cat(fraction, low).eq(total), carry.eq(total[-1]), low_now.eq(low)]
        with m.If(carry):
            m.d.sync += [high.eq(high_plus), high_plus.eq(high_plus + 1)]
        m.d.comb += self.now.eq(Cat(low_now, high))
        return m


class Reference(wiring.Component):
    """Reference outputs of the timebase for a lab counter (`wirestamp calibrate`):

    - `pps` rises on the first cycle at which `now` has reached the next whole second
      (`period_ns`, REF_PPS_NS) and stays high for `width` cycles (100 ms);
    - `square` is `now` bit REF_SQUARE_BIT: its period is 2**(bit + 1) ns of the trimmed
      time, 15.625 MHz, and at the nominal 8 ns a cycle exactly 4 cycles high and 4 low.

    Both follow the trim, so a counter that measures either measures the timebase. Each is
    registered twice (`pps` after the comparison, `square` for the pin), so both lag `now` by
    LATENCY cycles, the same at every edge. The comparison is a 64-bit carry chain on two
    registers; `next` moves on a cycle after an edge, and the comparison made with the old
    `next` in that cycle is ignored (`hold`).

    A PPS input, to discipline the timebase or to line up two units, would compare its edges
    against `now` the same way (docs/boards.md, "Reference outputs")."""
    now: In(64)
    pps: Out(1)
    square: Out(1)

    LATENCY = 2

    def __init__(self, period_ns=None, width=None):
        from ..regmap import REF_PPS_NS, REF_PPS_WIDTH_CYCLES
        self._period = REF_PPS_NS if period_ns is None else period_ns
        self._width = REF_PPS_WIDTH_CYCLES if width is None else width
        super().__init__()

    def elaborate(self, platform):
        from ..regmap import REF_SQUARE_BIT
        m = Module()
        target = Signal(64, init=self._period)
        reached, hold = Signal(), Signal()
        left = Signal(range(self._width + 1))
        square = Signal()
        m.d.sync += [reached.eq(self.now >= target), hold.eq(0),
                     square.eq(self.now[REF_SQUARE_BIT]), self.square.eq(square)]
        with m.If(reached & ~hold):
            m.d.sync += [target.eq(target + self._period), hold.eq(1), left.eq(self._width),
                         self.pps.eq(1)]
        with m.Elif(left > 1):
            m.d.sync += left.eq(left - 1)
        with m.Else():
            m.d.sync += [left.eq(0), self.pps.eq(0)]
        return m
