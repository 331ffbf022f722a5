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


class Timebase(wiring.Component):
    increment: In(32, init=NS_PER_CYCLE << TIME_FRAC_BITS)
    now: Out(64)

    def elaborate(self, platform):
        m = Module()
        fraction = Signal(TIME_FRAC_BITS)
        m.d.sync += Cat(fraction, self.now).eq(Cat(fraction, self.now) + self.increment)
        return m
