"""The scheduler: a rate accumulator per stream, the shared profile engine that drives them,
and a round-robin arbiter that hands due packets to the generator.

On `start` the profile engine sweeps the stream table once, arming each stream with its
modulus, packet count and first segment, then every enabled stream starts in the same cycle.

Credits wait in a per-stream backlog until the generator is free (255 covers a 64-byte stream
waiting behind a full-size frame of every other stream); a credit that finds the backlog full
is dropped and counted in `late`: the packet it stood for is never sent. The arbiter serves the
streams with credit round-robin, so they share the line fairly.
"""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...regmap import COUNT_BITS, MAX_STREAMS, SEGMENTS
from ..fanout import copies, shares
from .profile import ProfileEngine, RateAccumulator, SegmentRow, StreamRow

__all__ = ["Scheduler", "Grant"]

Grant = data.StructLayout({"stream": range(MAX_STREAMS), "seq": 32, "last": 1})
BACKLOG = 255


class Scheduler(wiring.Component):
    start: In(1)
    stop: In(1)
    clear: In(1)                       # zero `late` (`sent` restarts at each start)
    stream_addr: Out(range(MAX_STREAMS))
    stream_row: In(StreamRow)          # the row at the previous cycle's stream_addr
    segment_addr: Out(range(SEGMENTS))
    segment_row: In(SegmentRow)        # the row at the previous cycle's segment_addr
    grants: Out(stream.Signature(Grant))
    active: Out(MAX_STREAMS)
    running: Out(1)
    sent_select: In(range(MAX_STREAMS))
    sent: Out(COUNT_BITS)              # packets sent by stream `sent_select` (host's copy)
    freeze: In(1)                      # the host holds a snapshot: its copy holds still
    capture: In(1)                     # copy every stream's count, from this instant on
    late: Out(32)

    def __init__(self, streams=MAX_STREAMS):
        assert streams % 4 == 0, "`late` is counted by fours"
        self._streams = streams
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        streams = self._streams
        m.submodules.engine = engine = ProfileEngine(streams)
        m.d.comb += [
            engine.start.eq(self.start),
            self.stream_addr.eq(engine.stream_addr),
            engine.stream_row.eq(self.stream_row),
            self.segment_addr.eq(engine.segment_addr),
            engine.segment_row.eq(self.segment_row),
        ]

        limited = Signal(streams)
        # Per stream, in small memories (LUT RAM): packets sent, and a count-limited stream's
        # last sequence number (count - 1: a comparison, no adder, decides whether a grant is
        # its last).
        m.submodules.sent = sent = Memory(shape=COUNT_BITS, depth=streams, init=[])
        m.submodules.last_seq = last_seq = Memory(shape=COUNT_BITS, depth=streams, init=[])
        sent_write, last_write = sent.write_port(), last_seq.write_port()
        sent_read, last_read = sent.read_port(domain="comb"), last_seq.read_port(domain="comb")
        m.d.comb += [last_write.addr.eq(engine.slot), last_write.data.eq(engine.count - 1),
                     last_write.en.eq(engine.arm)]
        # The host reads a copy of `sent`, which a read port of its own refreshes a row a
        # cycle (every row within `streams` cycles of any instant), unless frozen; a capture
        # sweeps it once more from row 0, then `freeze` holds it. The counts go on meanwhile
        # (a grant is not held up), so a snapshot's rows are of one instant within `streams`
        # cycles: at most one frame of any stream.
        m.submodules.sent_copy = sent_copy = Memory(shape=COUNT_BITS, depth=streams, init=[])
        sweep_read, copy_write = sent.read_port(domain="comb"), sent_copy.write_port()
        host_read = sent_copy.read_port(domain="comb")
        sweep, sweeping = Signal(range(streams)), Signal()
        m.d.comb += [sweep_read.addr.eq(sweep), copy_write.addr.eq(sweep),
                     copy_write.data.eq(sweep_read.data), copy_write.en.eq(~self.freeze | sweeping),
                     host_read.addr.eq(self.sent_select), self.sent.eq(host_read.data)]
        with m.If(self.capture):
            m.d.sync += [sweep.eq(0), sweeping.eq(1)]
        with m.Elif(copy_write.en):
            m.d.sync += sweep.eq(sweep + 1)
            with m.If(sweep == streams - 1):
                m.d.sync += sweeping.eq(0)

        accumulators = []
        for i in range(streams):
            acc = RateAccumulator()
            m.submodules[f"rate{i}"] = acc
            accumulators.append(acc)
            with m.If(engine.arm_onehot[i]):
                m.d.sync += limited[i].eq(engine.limited)
            m.d.comb += [
                acc.arm.eq(engine.arm_onehot[i]),
                acc.load.eq(engine.slot_onehot[i]), acc.rate.eq(engine.rate),
                acc.rate_less_mod.eq(engine.rate_less_mod),
                acc.go.eq(engine.starting[i]), acc.active.eq(self.active[i]),
            ]

        # Arbitration, round-robin over the streams holding credit, in registered steps (find,
        # pick, fetch, check, join, grant, then three while the backlogs count the grant) so no
        # long path remains; the latency is the same always.
        backlog = [Signal(range(BACKLOG + 1), name=f"backlog{i}") for i in range(streams)]
        wants = Signal(streams)
        m.d.sync += wants.eq(Cat(b != 0 for b in backlog) & self.active)
        # Round robin: the lowest stream with credit above the one served last, else the
        # lowest with credit. `above` (the streams above the last one) is set at each grant.
        above = Signal(streams, init=(1 << streams) - 1)
        upper = Signal(streams)
        m.d.comb += upper.eq(wants & above)
        # FIND: the two candidates, registered every cycle, for PICK to choose between.
        first_upper, first_any = Signal(range(streams)), Signal(range(streams))
        for i in reversed(range(streams)):
            with m.If(upper[i]):
                m.d.sync += first_upper.eq(i)
            with m.If(wants[i]):
                m.d.sync += first_any.eq(i)
        any_upper, any_wants = Signal(), Signal()
        m.d.sync += [any_upper.eq(upper != 0), any_wants.eq(wants != 0)]
        chosen = Signal(range(streams))
        # The LUT RAMs (read in FETCH) are addressed by copies of `chosen`, apart from the
        # logic that `chosen` steers.
        addresses = copies(range(streams), 2, "chosen")
        m.d.comb += [sent_read.addr.eq(addresses[0]), last_read.addr.eq(addresses[1])]
        chosen_sent = Signal(COUNT_BITS)
        chosen_last = Signal(COUNT_BITS)
        chosen_limited = Signal()
        equal_parts = Signal(3)         # chosen_sent == chosen_last, by thirds, registered
        is_last = Signal()
        chosen_onehot = Signal(streams)
        chosen_active = Signal()
        take = Signal(streams)          # a cycle after the grant
        finished = Signal(streams)      # the same, if it is its count-limited stream's last
        m.d.sync += [take.eq(0), finished.eq(0)]
        # `sent` is written from registers, a cycle after the arm or the grant (read again no
        # sooner than FETCH, two cycles after a grant). Arming wins (it restarts the count).
        granting = Signal()
        sent_addr, sent_data, sent_en = Signal(range(streams)), Signal(COUNT_BITS), Signal()
        m.d.comb += [sent_write.addr.eq(sent_addr), sent_write.data.eq(sent_data),
                     sent_write.en.eq(sent_en)]
        m.d.sync += sent_en.eq(0)
        with m.If(engine.arm):
            m.d.sync += [sent_addr.eq(engine.slot), sent_data.eq(0), sent_en.eq(1)]
        with m.Elif(granting):
            m.d.sync += [sent_addr.eq(chosen), sent_data.eq(chosen_sent + 1), sent_en.eq(1)]

        with m.If(self.grants.valid & self.grants.ready):
            m.d.sync += self.grants.valid.eq(0)
        with m.FSM(name="arbiter"):
            with m.State("PICK"):
                with m.If(~self.grants.valid & any_wants & ~self.stop & ~self.start):
                    pick = Mux(any_upper, first_upper, first_any)
                    m.d.sync += [register.eq(pick) for register in [chosen, *addresses]]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.sync += [chosen_sent.eq(sent_read.data), chosen_last.eq(last_read.data),
                             chosen_limited.eq(limited.bit_select(chosen, 1))]
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += [
                    equal_parts.eq(Cat(chosen_sent[bits] == chosen_last[bits]
                                       for bits in shares(COUNT_BITS, 3))),
                    chosen_onehot.eq(1 << chosen),
                ]
                m.next = "JOIN"
            with m.State("JOIN"):
                m.d.sync += [
                    is_last.eq(chosen_limited & equal_parts.all()),
                    # Whether it is still active in GRANT (streams only turn on at `go`); high
                    # in GRANT only, so the grant's condition needs no decode of the state.
                    chosen_active.eq(self.active.bit_select(chosen, 1) & ~self.start &
                                     ~self.stop & ~(engine.end & (engine.slot == chosen))),
                ]
                m.next = "GRANT"
            with m.State("GRANT"):          # see below
                m.d.sync += chosen_active.eq(0)
                m.next = "TAKE"
            # `take` (registered, it reaches every backlog) counts the grant in its
            # backlog now, `wants` follows a cycle later and FIND's candidates one more: then
            # the next pick may look.
            with m.State("TAKE"):
                m.next = "SETTLE"
            with m.State("SETTLE"):
                m.next = "FIND"
            with m.State("FIND"):
                m.next = "PICK"
        # GRANT (`chosen_active` is high in GRANT only).
        with m.If(chosen_active & ~self.stop & ~self.start):
            m.d.sync += [
                take.eq(chosen_onehot), finished.eq(Mux(is_last, chosen_onehot, 0)),
                self.grants.valid.eq(1),
                self.grants.p.stream.eq(chosen),
                self.grants.p.seq.eq(chosen_sent[:32]),
                self.grants.p.last.eq(is_last),
                above.eq(Cat(chosen < i for i in range(streams))),
            ]
            m.d.comb += granting.eq(1)

        # A stream runs from `go` until its profile ends, its count is reached, or STOP.
        ended = Signal(streams)
        m.d.comb += ended.eq((engine.slot_onehot & engine.end.replicate(streams)) | finished)
        with m.If(self.start | self.stop):
            m.d.sync += self.active.eq(0)
        with m.Elif(engine.go):
            m.d.sync += self.active.eq(engine.starting)
        with m.Else():
            m.d.sync += self.active.eq(self.active & ~ended)

        late = Signal(streams)
        for i, acc in enumerate(accumulators):
            with m.If(self.stop | self.start | ~self.active[i]):
                m.d.sync += backlog[i].eq(0)
            with m.Elif(acc.credit & ~take[i]):
                with m.If(backlog[i] == BACKLOG):
                    m.d.comb += late[i].eq(1)
                with m.Else():
                    m.d.sync += backlog[i].eq(backlog[i] + 1)
            with m.Elif(~acc.credit & take[i]):
                m.d.sync += backlog[i].eq(backlog[i] - 1)
        # Registered, counted by fours, summed, then added: keeps the paths short.
        late_r = Signal(streams)
        m.d.sync += late_r.eq(late)
        fours = [Signal(3, name=f"late_four{index}") for index in range(streams // 4)]
        for index, four in enumerate(fours):
            m.d.sync += four.eq(sum(late_r[4 * index:4 * index + 4]))
        late_count = Signal(range(streams + 1))
        m.d.sync += late_count.eq(sum(fours))
        with m.If(self.clear):
            m.d.sync += self.late.eq(0)
        with m.Else():
            m.d.sync += self.late.eq(self.late + late_count)

        arming = Signal()
        with m.If(self.start):
            m.d.sync += arming.eq(1)
        with m.Elif(engine.go):
            m.d.sync += arming.eq(0)
        m.d.comb += self.running.eq((self.active != 0) | arming | self.grants.valid)
        return m
