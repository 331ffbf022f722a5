"""Rates and rate profiles in hardware.

`RateAccumulator` (one per stream, runs every cycle) issues packet credits. The rate is
`rate / modulus` packets per byte time: every cycle the phase advances by `rate`; each time it
passes `modulus` a credit is issued and `modulus` subtracted, so the remainder is never lost.
The long-run rate is exact for any rational rate, and each credit comes in the first cycle at
or after its ideal time (within one byte time). A loaded rate counts from the step after next.

`ProfileEngine` (one, shared) walks every stream's profile, a chain of linear segments (start
rate, signed slope added every tick, duration in ticks; 0: forever). It visits one of
TICK_CYCLES slots per cycle, so each stream gets a tick every TICK_CYCLES byte times, and hands
the new rate to that stream's accumulator. The tick is part of the contract, the same in every
image: one built with fewer streams (`streams`) leaves the slots above them idle. Its
per-stream state lives in a small memory, so the logic that does the arithmetic exists once,
not once per stream.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...regmap import (COUNT_BITS, PHASE_BITS, RATE_FRAC_BITS, SEGMENT_TABLE, SEGMENTS,
                       MAX_STREAMS, STREAM_TABLE, TICK_CYCLES)
from ..ctl.bank import row_layout
from ..fanout import copies, shares

__all__ = ["RateAccumulator", "ProfileEngine", "SegmentRow", "StreamRow"]

assert MAX_STREAMS <= TICK_CYCLES, "the profile engine visits one stream per cycle"

SegmentRow = row_layout(SEGMENT_TABLE)
StreamRow = row_layout(STREAM_TABLE)
Phase = signed(PHASE_BITS + 2)


def carry_select_sum(a, b):
    """`a + b` modulo 2**len(a), with the high half summed both ways beside the low half's
    carry chain: two chains of half the length, then a multiplexer."""
    half = len(a) // 2
    low = a[:half] + b[:half]
    a_high, b_high = a[half:], b[half:len(a)]
    # With a carry in: a bit of one below each operand, 1 + 1 (the chain does it, not a second
    # adder after the first).
    high_carried = (Cat(Const(1, 1), a_high) + Cat(Const(1, 1), b_high))[1:]
    return Cat(low[:half], Mux(low[half], high_carried, a_high + b_high))


class RateAccumulator(wiring.Component):
    arm: In(1)                  # restart the phase (with the `rate` being loaded), ready for `go`
    load: In(1)                 # adopt `rate` (and `rate_less_mod` = rate - modulus)
    rate: In(PHASE_BITS)
    rate_less_mod: In(signed(PHASE_BITS + 1))
    go: In(1)                   # the first credit, now
    active: In(1)               # accumulate
    credit: Out(1)              # registered: one packet is due

    def elaborate(self, platform):
        m = Module()
        rate, rate_less_mod = Signal(Phase), Signal(Phase)
        with m.If(self.load):
            m.d.sync += [rate.eq(self.rate), rate_less_mod.eq(self.rate_less_mod)]

        # `ahead` is the phase (in [-modulus, 0)) plus the rate: whether a step is due is known
        # from its sign bit, registered (in copies, each steering a quarter of the adder's
        # input), so no carry chain comes before the choice and none after it. (Summing both
        # next values in parallel is a LUT shorter, but 784 LUTs bigger: docs/timing.md.)
        ahead = Signal(Phase)
        dues = copies(1, 4, "due")          # ahead >= 0
        addend, advanced = Signal(Phase), Signal(Phase)
        for bits, due in zip(shares(Phase.width, len(dues)), dues):
            m.d.comb += addend[bits].eq(Mux(due, rate_less_mod[bits], rate[bits]))
        m.d.comb += advanced.eq(ahead + addend)
        m.d.sync += self.credit.eq(self.go)
        with m.If(self.arm):
            m.d.sync += [ahead.eq(self.rate_less_mod),      # phase -modulus, plus the rate
                         [due.eq(self.rate_less_mod >= 0) for due in dues]]
        with m.Elif(self.active & ~self.go):
            m.d.sync += [ahead.eq(advanced), [due.eq(advanced >= 0) for due in dues],
                         self.credit.eq(dues[0])]
        return m


Place = data.StructLayout({             # where a stream is in its profile
    "ending": 1,                        # left == 1: the next tick ends the segment
    "index": range(SEGMENTS),
    "last": 1,                          # the segment at `index` is the profile's last
    "first": range(SEGMENTS),
})
State = data.StructLayout({
    **Place.members,
    "rate": PHASE_BITS + RATE_FRAC_BITS,    # current rate, with the slope's fraction bits
    "left": dict(SEGMENT_TABLE.fields)["ticks"],  # ticks left in the segment (0: forever)
    "forever": 1,                       # left == 0, kept apart: a 48-bit test on the
                                        # tick's path did not meet 125 MHz on the 25F
    "loop": 1,
    "modulus": PHASE_BITS,
})


# The engine's stages, in the order a slot goes through them, one cycle each (`ProfileEngine`).
STAGES = "ABPRCDE"
WRITE_BACK = STAGES.index("D")      # the cycle a slot's new state is written, after A
assert WRITE_BACK < TICK_CYCLES, "a slot's state is written back before its next visit reads it"


class ProfileEngine(wiring.Component):
    """A pipeline over the streams: slot `slot_a` enters at A each cycle, and each slot comes
    round again every TICK_CYCLES cycles. One slot's way through it:

        cycle  stage  what happens
          0    A      its place in the profile is read (and, when arming, its stream row)
          1    B      place and stream row are here: the segment row to read is picked, the
                      current segment or the next one when this tick ends it (`ending`)
          2    P      the segment row comes out of its block RAM, into a register
          3    R      ... and into a second one; the slot's state is read
          4    C      the new state and rate
          5    D      the state is written back; what goes to the accumulator, registered
          6    E      handed over (`slot_onehot`: that stream adopts `rate`), from registers:
                      it fans out to every stream

    The invariants (asserted): the write-back (D, cycle 5) comes before the slot's next visit
    reads its place (A, cycle TICK_CYCLES), so no state is read stale and nothing needs
    forwarding; and an image's streams fit the slots, one stream per slot. A slot from
    `streams` on (an image with fewer streams) is swept like the others, but arms, ends and
    starts nothing."""
    start: In(1)                        # sweep once, arming every stream, then pulse `go`
    stream_addr: Out(range(MAX_STREAMS))
    stream_row: In(StreamRow)
    segment_addr: Out(range(SEGMENTS))
    segment_row: In(SegmentRow)

    slot: Out(range(MAX_STREAMS))       # the stream the outputs below are for
    slot_onehot: Out(MAX_STREAMS)       # the same, one bit per stream: it runs at `rate` now
    arm: Out(1)                         # arm `slot` with `count` (and the rate)
    arm_onehot: Out(MAX_STREAMS)        # the same, one bit per stream
    count: Out(COUNT_BITS)
    limited: Out(1)                     # count != 0
    rate: Out(PHASE_BITS)
    rate_less_mod: Out(signed(PHASE_BITS + 1))
    end: Out(1)                         # `slot`'s profile is over
    go: Out(1)                          # the sweep is over: the enabled streams start now
    starting: Out(MAX_STREAMS)          # with `go`: the enabled streams, one bit each

    def __init__(self, streams=MAX_STREAMS):
        assert streams <= TICK_CYCLES, "one stream per slot"
        self._streams = streams
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        frac = RATE_FRAC_BITS
        # Each stream's state is read where it is needed, not carried down the pipeline in
        # flip-flops: its place in the profile at A (for B), all of it at R (for C).
        m.submodules.states = states = Memory(shape=State, depth=TICK_CYCLES, init=[])
        m.submodules.places = places = Memory(shape=Place, depth=TICK_CYCLES, init=[])
        read, write = states.read_port(), states.write_port()
        read_place, write_place = places.read_port(), places.write_port()

        slot_a = Signal(range(TICK_CYCLES))
        slot_b = Signal(range(TICK_CYCLES))
        slot_p = Signal(range(TICK_CYCLES))
        slot_r = Signal(range(TICK_CYCLES))
        slot_c = Signal(range(TICK_CYCLES))
        arming_a, arming_b, arming_p, arming_r, arming_c = (Signal() for _ in range(5))
        m.d.sync += [slot_a.eq(slot_a + 1), slot_b.eq(slot_a), slot_p.eq(slot_b),
                     slot_r.eq(slot_p), slot_c.eq(slot_r), arming_b.eq(arming_a),
                     arming_p.eq(arming_b), arming_r.eq(arming_p), arming_c.eq(arming_r)]
        with m.If(self.start):
            m.d.sync += [slot_a.eq(0), arming_a.eq(1)]
        with m.Elif(arming_a & (slot_a == TICK_CYCLES - 1)):
            m.d.sync += arming_a.eq(0)
        m.d.comb += [read_place.addr.eq(slot_a), self.stream_addr.eq(slot_a),
                     read.addr.eq(slot_r)]

        # Stage B: the place and stream row of slot_b are here (both memories' outputs are
        # flip-flops): the segment row to read is picked, the current segment or the next one.
        # Stage P: the segment row comes out of its block RAM, and is registered twice (stages
        # P and R) before use in C: a block RAM's output is slow, and it reached its register
        # only with a short wire.
        place_b, state_c = read_place.data, read.data
        row_p, row_r, row_c = Signal(StreamRow), Signal(StreamRow), Signal(StreamRow)
        next_index_b = Mux(place_b.last, place_b.first, place_b.index + 1)
        next_index_p, next_index_r, next_index_c = (Signal(range(SEGMENTS)) for _ in range(3))
        m.d.comb += self.segment_addr.eq(Mux(arming_b, self.stream_row.first_segment,
                                             Mux(place_b.ending, next_index_b, place_b.index)))
        segment_r, segment = Signal(SegmentRow), Signal(SegmentRow)
        m.d.sync += [row_p.eq(self.stream_row), next_index_p.eq(next_index_b),
                     row_r.eq(row_p), next_index_r.eq(next_index_p),
                     segment_r.eq(self.segment_row),
                     row_c.eq(row_r), next_index_c.eq(next_index_r),
                     segment.eq(segment_r)]

        # Stage C: the new state of slot_c.
        new = Signal(State)
        ended = Signal()
        m.d.comb += new.eq(state_c)
        with m.If(arming_c):
            m.d.comb += [
                new.rate.eq(segment.rate << frac), new.left.eq(segment.ticks),
                new.ending.eq(segment.ticks == 1), new.forever.eq(segment.ticks == 0),
                new.index.eq(row_c.first_segment), new.last.eq(segment.last),
                new.first.eq(row_c.first_segment), new.loop.eq(row_c.loop),
                new.modulus.eq(row_c.rate_mod),
            ]
        with m.Elif(state_c.ending):
            with m.If(state_c.last & ~state_c.loop):
                m.d.comb += ended.eq(1)
            m.d.comb += [new.rate.eq(segment.rate << frac), new.left.eq(segment.ticks),
                         new.ending.eq(segment.ticks == 1), new.forever.eq(segment.ticks == 0),
                         new.index.eq(next_index_c), new.last.eq(segment.last)]
        with m.Else():
            # A segment counts down to 1 (`ending`), and the next tick loads the next one,
            # so `left` is 0 only in a segment without end: `forever` says so.
            m.d.comb += new.rate.eq(carry_select_sum(state_c.rate, segment.slope))
            with m.If(~state_c.forever):
                m.d.comb += [new.left.eq(state_c.left - 1), new.ending.eq(state_c.left == 2)]
        # Written back from registers (the adder's carry chain ends in flip-flops).
        written, slot_written = Signal(State), Signal(range(TICK_CYCLES))
        m.d.sync += [written.eq(new), slot_written.eq(slot_c)]
        m.d.comb += [write.addr.eq(slot_written), write.data.eq(written), write.en.eq(1),
                     write_place.addr.eq(slot_written), write_place.en.eq(1),
                     [getattr(write_place.data, name).eq(getattr(written, name))
                      for name in Place.members]]

        # Stage D: what the stream gets, registered; stage E: handed over.
        rate_d, modulus_d = Signal(PHASE_BITS), Signal(PHASE_BITS)
        slot_d, arm_d, end_d = Signal(range(TICK_CYCLES)), Signal(), Signal()
        count_d, go_d = Signal(COUNT_BITS), Signal()
        enables = Signal(self._streams)         # each stream's enable, as the sweep arms it
        real_c = Const(1) if self._streams == TICK_CYCLES else slot_c < self._streams
        m.d.sync += [
            slot_d.eq(slot_c), rate_d.eq(new.rate[frac:]), modulus_d.eq(new.modulus),
            arm_d.eq(arming_c & real_c), end_d.eq(ended & real_c),
            count_d.eq(row_c.count), go_d.eq(arming_c & (slot_c == TICK_CYCLES - 1)),
        ]
        with m.If(arming_c & real_c):
            m.d.sync += enables.bit_select(slot_c, 1).eq(row_c.enable)
        # Every output below is a register: each fans out to every accumulator, or is
        # one bit per stream.
        m.d.sync += [
            self.slot.eq(slot_d), self.slot_onehot.eq(1 << slot_d),
            self.rate.eq(rate_d), self.rate_less_mod.eq(rate_d - modulus_d),
            self.arm.eq(arm_d), self.arm_onehot.eq(Mux(arm_d, 1 << slot_d, 0)),
            self.end.eq(end_d), self.count.eq(count_d), self.limited.eq(count_d != 0),
            self.go.eq(go_d), self.starting.eq(Mux(go_d, enables, 0)),
        ]
        return m
