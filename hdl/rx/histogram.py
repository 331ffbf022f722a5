"""The histogram's bucket of a latency, in hardware: `regmap.hist_bucket`, pipelined.

Below HIST_LINEAR × 8 ns the buckets are 8 ns wide; above, each octave [2**e, 2**(e+1)) of the
latency in 8 ns units is cut into HIST_SUB equal buckets, so a bucket is at most 1/16 of its
value wide; the last bucket takes everything past the top.
"""
from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...regmap import HIST_BUCKETS, HIST_LINEAR, HIST_OVERFLOW, HIST_SUB

assert HIST_LINEAR % HIST_SUB == 0 and HIST_BUCKETS % HIST_SUB == 0

__all__ = ["HistogramBucket", "LATENCY_BITS"]

LATENCY_BITS = 40
SUB_BITS = (HIST_SUB - 1).bit_length()
LINEAR_BITS = (HIST_LINEAR - 1).bit_length()


class HistogramBucket(wiring.Component):
    """`bucket` is the bucket of the `latency` (ns) given LATENCY cycles earlier. Three short
    stages: the leading one, the four bits below it, the bucket."""
    LATENCY = 3
    latency: In(LATENCY_BITS)
    bucket: Out(range(HIST_BUCKETS))

    def elaborate(self, platform):
        m = Module()
        cycles = Signal(LATENCY_BITS - 3)       # 8 ns units
        octave = Signal(range(LATENCY_BITS))    # of the highest set bit of `cycles`
        m.d.sync += cycles.eq(self.latency[3:])
        for i in range(LATENCY_BITS - 3):       # the highest set bit wins
            with m.If(self.latency[3 + i]):
                m.d.sync += octave.eq(i)

        # Past the linear part the bucket is HIST_LINEAR + (octave - LINEAR_BITS) * HIST_SUB
        # + fine, that is `fine` below `group`.
        linear, low, fine = Signal(), Signal(LINEAR_BITS), Signal(SUB_BITS)
        group = Signal(range(LATENCY_BITS))
        m.d.sync += [
            linear.eq(cycles < HIST_LINEAR), low.eq(cycles),
            group.eq(octave + HIST_LINEAR // HIST_SUB - LINEAR_BITS),
            fine.eq((cycles >> (octave - SUB_BITS).as_unsigned())[:SUB_BITS]),
        ]
        with m.If(linear):
            m.d.sync += self.bucket.eq(low)
        with m.Elif(group >= HIST_BUCKETS // HIST_SUB):
            m.d.sync += self.bucket.eq(HIST_OVERFLOW)
        with m.Else():
            m.d.sync += self.bucket.eq(Cat(fine, group))
        return m
