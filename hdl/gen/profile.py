"""One stream's rate: a rate accumulator that issues packet credits, driven by a profile of
linear segments.

Rate is a fraction of the byte-time clock: `rate / rate_mod` packets per byte time. Every cycle
the phase advances by `rate`; each time it passes `rate_mod` a credit is issued and `rate_mod`
is subtracted, so the remainder is never lost: the long-run rate is exact for any rational
rate, and each credit comes in the first cycle at or after its ideal time (within one byte time).

A segment holds a start rate, a signed slope added every tick (one tick per stream every
TICK_CYCLES byte times, with RATE_FRAC_BITS fraction bits), and a duration in ticks (0: forever).
At the end of a segment the next one is adopted (presented by the scheduler with each tick), or
the profile restarts at its first segment (`loop`), or the stream ends.
"""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...regmap import PHASE_BITS, RATE_FRAC_BITS, SEGMENT_TABLE, SEGMENTS
from ..ctl.bank import row_layout

__all__ = ["StreamRate", "SegmentRow"]

SegmentRow = row_layout(SEGMENT_TABLE)


class StreamRate(wiring.Component):
    # `arm` latches the configuration and adopts `segment` as the first segment.
    arm: In(1)
    enable: In(1)
    loop: In(1)
    rate_mod: In(PHASE_BITS)
    first_segment: In(range(SEGMENTS))
    # With `arm`: the first segment; with `tick`: the one after the current segment.
    segment: In(SegmentRow)
    segment_index: In(range(SEGMENTS))
    next_segment: Out(range(SEGMENTS))

    go: In(1)       # start (if enabled): first credit now
    halt: In(1)     # stop now
    tick: In(1)     # profile step
    active: Out(1)
    credit: Out(1)  # one packet is due (registered)

    def elaborate(self, platform):
        m = Module()
        frac = RATE_FRAC_BITS
        mod = Signal(PHASE_BITS)
        enabled = Signal()
        loop = Signal()
        first = Signal(range(SEGMENTS))
        index = Signal(range(SEGMENTS))
        left = Signal(len(self.segment.ticks))
        forever = Signal()
        last = Signal()
        slope = Signal(signed(64))
        # The rate, and the rate minus the modulus, kept side by side so the accumulator never
        # needs a subtraction in series with its addition.
        rate = Signal(PHASE_BITS + frac)
        rate_less_mod = Signal(signed(PHASE_BITS + frac + 1))
        phase = Signal(signed(PHASE_BITS + 2))   # phase - rate_mod, in [-rate_mod, 0)

        def adopt(segment, seg_index, modulus):
            m.d.sync += [
                index.eq(seg_index),
                left.eq(segment.ticks),
                forever.eq(segment.ticks == 0),
                last.eq(segment.last),
                slope.eq(segment.slope),
                rate.eq(segment.rate << frac),
                rate_less_mod.eq((segment.rate - modulus) << frac),
            ]

        m.d.comb += self.next_segment.eq(Mux(last, first, index + 1))

        with m.If(self.arm):
            m.d.sync += [mod.eq(self.rate_mod), enabled.eq(self.enable), loop.eq(self.loop),
                         first.eq(self.first_segment), self.active.eq(0)]
            adopt(self.segment, self.segment_index, self.rate_mod)
        with m.Elif(self.halt):
            m.d.sync += self.active.eq(0)
        with m.Elif(self.go):
            m.d.sync += [self.active.eq(enabled), phase.eq(-mod)]
        with m.Elif(self.active):
            with m.If(self.tick):
                with m.If(~forever & (left == 1)):
                    with m.If(last & ~loop):
                        m.d.sync += self.active.eq(0)
                    with m.Else():
                        adopt(self.segment, self.segment_index, mod)
                with m.Else():
                    m.d.sync += [rate.eq(rate + slope), rate_less_mod.eq(rate_less_mod + slope)]
                    with m.If(~forever):
                        m.d.sync += left.eq(left - 1)

        # The accumulator: both outcomes are computed in parallel, the sign picks one.
        advanced = Signal(signed(PHASE_BITS + 2))
        wrapped = Signal(signed(PHASE_BITS + 2))
        m.d.comb += [
            advanced.eq(phase + rate[frac:]),
            wrapped.eq(phase + (rate_less_mod >> frac)),
        ]
        m.d.sync += self.credit.eq(self.go & enabled & ~self.arm & ~self.halt)
        with m.If(self.active & ~self.halt & ~self.arm):
            with m.If(advanced >= 0):
                m.d.sync += [phase.eq(wrapped), self.credit.eq(1)]
            with m.Else():
                m.d.sync += phase.eq(advanced)
        return m
