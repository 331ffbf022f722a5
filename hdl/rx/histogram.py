"""The histogram's bucket of a latency, in hardware: `regmap.hist_bucket`, pipelined.

Below HIST_LINEAR × 8 ns the buckets are 8 ns wide; above, each octave [2**e, 2**(e+1)) of the
latency in 8 ns units is cut into HIST_SUB equal buckets, so a bucket is at most 1/16 of its
value wide; the last bucket takes everything past the top.
"""
from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...regmap import HIST_BUCKETS, HIST_LINEAR, HIST_OVERFLOW, HIST_SUB

assert HIST_LINEAR % HIST_SUB == 0 and HIST_BUCKETS % HIST_SUB == 0

__all__ = ["HistogramBucket", "LATENCY_BITS"]

LATENCY_BITS = 40
SUB_BITS = (HIST_SUB - 1).bit_length()
LINEAR_BITS = (HIST_LINEAR - 1).bit_length()
GROUP_BITS = 8


class HistogramBucket(wiring.Component):
    """`bucket` is the bucket of the `latency` (ns) given LATENCY cycles earlier. Four short
    stages: the leading one within each group of 8 bits; the leading group; the four bits
    below the leading one; the bucket."""
    LATENCY = 4
    latency: In(LATENCY_BITS)
    bucket: Out(range(HIST_BUCKETS))

    def elaborate(self, platform):
        m = Module()
        width = LATENCY_BITS - 3
        cycles = [Signal(width, name=f"cycles{i}") for i in range(2)]     # 8 ns units
        m.d.sync += [cycles[0].eq(self.latency[3:]), cycles[1].eq(cycles[0])]
        # The highest set bit of `cycles` (its octave), found 8 bits at a time.
        groups = -(-width // GROUP_BITS)
        lead = [Signal(range(GROUP_BITS), name=f"lead{g}") for g in range(groups)]
        seen = Signal(groups)
        for g in range(groups):
            bits = self.latency[3 + g * GROUP_BITS:3 + min(width, (g + 1) * GROUP_BITS)]
            m.d.sync += seen[g].eq(bits.any())
            for i in range(len(bits)):          # the highest set bit wins
                with m.If(bits[i]):
                    m.d.sync += lead[g].eq(i)
        octave = Signal(range(LATENCY_BITS))
        for g in range(groups):                 # the highest group with a set bit wins
            with m.If(seen[g]):
                m.d.sync += octave.eq(Cat(lead[g], Const(g, range(groups))))

        # Past the linear part the bucket is HIST_LINEAR + (octave - LINEAR_BITS) * HIST_SUB
        # + fine, that is `fine` below `group`.
        linear, low, fine = Signal(), Signal(LINEAR_BITS), Signal(SUB_BITS)
        group = Signal(range(LATENCY_BITS))
        m.d.sync += [
            linear.eq(cycles[1] < HIST_LINEAR), low.eq(cycles[1]),
            group.eq(octave + HIST_LINEAR // HIST_SUB - LINEAR_BITS),
            fine.eq((cycles[1] >> (octave - SUB_BITS).as_unsigned())[:SUB_BITS]),
        ]
        with m.If(linear):
            m.d.sync += self.bucket.eq(low)
        with m.Elif(group >= HIST_BUCKETS // HIST_SUB):
            m.d.sync += self.bucket.eq(HIST_OVERFLOW)
        with m.Else():
            m.d.sync += self.bucket.eq(Cat(fine, group))
        return m
