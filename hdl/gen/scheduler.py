"""The scheduler: one rate accumulator per stream, the profile engine that feeds them their
segments, and a round-robin arbiter that hands due packets to the generator.

On `start` the engine sweeps the stream table once (arming each stream with its modulus, count
and first segment), then starts every enabled stream in the same cycle. While running it visits
one stream per cycle, so each stream gets a profile tick every TICK_CYCLES (= STREAMS) cycles,
with the segment that follows its current one read from the segment table.

Credits wait in a per-stream backlog until the generator is free (255 covers a 64-byte stream
waiting behind a full-size frame of every other stream); a credit that finds the backlog full
is dropped and counted in `late`: the packet it stood for is never sent. The
arbiter serves the streams with credit round-robin, so they share the line fairly.
"""
from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...regmap import COUNT_BITS, SEGMENTS, STREAM_TABLE, STREAMS, TICK_CYCLES
from ..ctl.bank import row_layout
from .profile import SegmentRow, StreamRate

__all__ = ["Scheduler", "Grant", "StreamRow"]

assert TICK_CYCLES == STREAMS, "the profile engine visits one stream per cycle"

StreamRow = row_layout(STREAM_TABLE)
Grant = data.StructLayout({"stream": range(STREAMS), "seq": 32, "last": 1})
BACKLOG = 255   # credits a stream may hold while the line is busy with other streams' frames


class Scheduler(wiring.Component):
    start: In(1)
    stop: In(1)
    clear: In(1)                       # zero `late` (`sent` restarts at each start)
    stream_addr: Out(range(STREAMS))
    stream_row: In(StreamRow)          # the row at the previous cycle's stream_addr
    segment_addr: Out(range(SEGMENTS))
    segment_row: In(SegmentRow)        # the row at the previous cycle's segment_addr
    grants: Out(stream.Signature(Grant))
    active: Out(STREAMS)
    running: Out(1)
    sent: Out(data.ArrayLayout(COUNT_BITS, STREAMS))
    late: Out(32)

    def elaborate(self, platform):
        m = Module()
        rates = [StreamRate() for _ in range(STREAMS)]
        for i, rate in enumerate(rates):
            m.submodules[f"rate{i}"] = rate
            m.d.comb += self.active[i].eq(rate.active)

        # The sweep: `slot` addresses a stream; its rows come back one and two cycles later.
        slot = Signal(range(STREAMS))
        slot1 = Signal(range(STREAMS))
        slot2 = Signal(range(STREAMS))
        arming = Signal()    # the sweep that arms the streams after START
        arming1 = Signal()
        arming2 = Signal()
        go = Signal()
        m.d.sync += [slot.eq(slot + 1), slot1.eq(slot), slot2.eq(slot1),
                     arming1.eq(arming), arming2.eq(arming1), go.eq(0)]
        with m.If(self.start):
            m.d.sync += [slot.eq(0), arming.eq(1)]
        with m.Elif(arming & (slot == STREAMS - 1)):
            m.d.sync += arming.eq(0)
        with m.If(arming2 & ~arming1):
            m.d.sync += go.eq(1)

        # Arming: stream row at cycle 1 gives the first segment, whose row comes at cycle 2.
        row = Signal(StreamRow)
        m.d.sync += row.eq(self.stream_row)
        next_segments = Array(rate.next_segment for rate in rates)
        m.d.comb += [
            self.stream_addr.eq(slot),
            self.segment_addr.eq(Mux(arming1, self.stream_row.first_segment,
                                     next_segments[slot1])),
        ]
        segment_index = Signal(range(SEGMENTS))
        m.d.sync += segment_index.eq(self.segment_addr)

        count = Array(Signal(COUNT_BITS, name=f"count{i}") for i in range(STREAMS))
        sent = Array(self.sent[i] for i in range(STREAMS))
        for i, rate in enumerate(rates):
            here = slot2 == i
            m.d.comb += [
                rate.arm.eq(arming2 & here),
                rate.tick.eq(~arming2 & here & ~self.start),
                rate.go.eq(go),
                rate.enable.eq(row.enable),
                rate.loop.eq(row.loop),
                rate.rate_mod.eq(row.rate_mod),
                rate.first_segment.eq(row.first_segment),
                rate.segment.eq(self.segment_row),
                rate.segment_index.eq(segment_index),
            ]
            with m.If(arming2 & here):
                m.d.sync += [count[i].eq(row.count), sent[i].eq(0)]

        # Backlog and arbitration.
        backlog = [Signal(range(BACKLOG + 1), name=f"backlog{i}") for i in range(STREAMS)]
        wants = Signal(STREAMS)
        m.d.comb += wants.eq(Cat(b != 0 for b in backlog) & self.active)
        previous = Signal(range(STREAMS), init=STREAMS - 1)
        rotated = Signal(STREAMS)
        m.d.comb += rotated.eq(Cat(wants, wants).bit_select(previous + 1, STREAMS))
        offset = Signal(range(STREAMS))
        for i in reversed(range(STREAMS)):
            with m.If(rotated[i]):
                m.d.comb += offset.eq(i)
        chosen = Signal(range(STREAMS))
        m.d.comb += chosen.eq(previous + 1 + offset)

        take = Signal(STREAMS)
        with m.If(self.grants.valid & self.grants.ready):
            m.d.sync += self.grants.valid.eq(0)
        with m.If(~self.grants.valid & (wants != 0) & ~self.stop):
            m.d.comb += take.eq(1 << chosen)
            chosen_count = count[chosen]
            chosen_sent = sent[chosen]
            is_last = (chosen_count != 0) & (chosen_sent + 1 == chosen_count)
            m.d.sync += [
                self.grants.valid.eq(1),
                self.grants.p.stream.eq(chosen),
                self.grants.p.seq.eq(chosen_sent[:32]),
                self.grants.p.last.eq(is_last),
                previous.eq(chosen),
                chosen_sent.eq(chosen_sent + 1),
            ]

        late = Signal(STREAMS)
        for i, rate in enumerate(rates):
            with m.If(self.stop | self.start | ~rate.active):
                m.d.sync += backlog[i].eq(0)
            with m.Elif(rate.credit & ~take[i]):
                with m.If(backlog[i] == BACKLOG):
                    m.d.comb += late[i].eq(1)
                with m.Else():
                    m.d.sync += backlog[i].eq(backlog[i] + 1)
            with m.Elif(~rate.credit & take[i]):
                m.d.sync += backlog[i].eq(backlog[i] - 1)
        with m.If(self.clear):
            m.d.sync += self.late.eq(0)
        with m.Else():
            m.d.sync += self.late.eq(self.late + sum(late))

        # A count-limited stream stops when its last packet is granted.
        for i, rate in enumerate(rates):
            m.d.comb += rate.halt.eq(self.stop | (take[i] & (count[i] != 0)
                                                  & (sent[i] + 1 == count[i])))

        m.d.comb += self.running.eq((self.active != 0) | arming | arming1 | arming2 | go
                                    | self.grants.valid)
        return m
