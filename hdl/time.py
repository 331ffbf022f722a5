"""The timebase: a 64-bit nanosecond clock that both TX and RX stamps are taken from.

It advances by `increment` ns every cycle, in 8.24 fixed point: 8 ns nominal at 125 MHz, trimmed
by the host to cancel the oscillator's ppm error (resolution 2**-24 ns per cycle, 0.0075 ppm).
A 64-bit ns counter wraps after 584 years.
"""
from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..regmap import NS_PER_CYCLE, TIME_FRAC_BITS

__all__ = ["Timebase"]

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
