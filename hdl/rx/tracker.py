"""Per-stream receive statistics, loss/reorder/duplicate counting, and latency histograms.

For each record (one signature datagram): latency = RX stamp - TX stamp (ns, saturating at
2**40 - 1). The stream's row in a small memory is read, updated and written back: packets,
bytes, latency min / max / sum / sum of squares, and the sequence counters.

The pipeline. A record is taken in IDLE, and then goes through one state per stage (`STAGES`,
control-clock cycles). The arithmetic runs every cycle, register to register; a stage's
result is right by the time the state that uses it comes:

    cycle  state        what is ready at its end
      0    IDLE         the record, its row's address, its seen slot's address
      1    LATENCY      rx_ns - tx_ns; seq - next_seq, next_seq - seq (the row's read is async)
      2    CLAMP        the latency, clamped to 0 .. 2**40 - 1
      3    SHORT        the latency for squaring (clamped to 36 bits); the seen slot
      4    OPERANDS     a copy of it per multiplier
      5    SQUARE       the three partial products
      6    MOVE         the products, nearer the adder
      7    SUM_SQUARES  the square; the histogram bucket's address
      8    READ         the row's low sums, min, max, counts
      9    CARRY        the high sums; the histogram count out of its block RAM
     10    COUNT        the count in `hist_data`; the count + 1
     11    UPDATE       the updated row (`updated`), its write enables
     12    WRITE        row, slot and count written: the next record may read them

The invariants it rests on (asserted below): a record's row holds still from IDLE to its
write-back, so the pipeline must be done before the next record can come: records come at
most one per minimal frame (84 byte times of the core clock, RECORD_SPACING = 42 control
cycles), and the 13 cycles are well inside it. And a record's row is read only after the
previous record's write-back (WRITE), since it is taken in IDLE after it: no row is read
while it is being updated, so no forwarding is needed.

Sequence numbers (in the spirit of RFC 4737): `next_seq` is one past the highest sequence
number seen (0 at START). A datagram with seq >= next_seq is in order; the numbers it skips
are counted lost, and next_seq = seq + 1. A datagram with seq < next_seq is late: if it was
seen before (within the last SEQ_WINDOW numbers) it is a duplicate; otherwise it is reordered,
and one number counted lost is taken back. Late arrivals older than the window are counted
as reordered. Comparisons are modulo 2**32, so the 32-bit sequence number may wrap.

Which numbers were seen is kept per stream in a memory of SEQ_WINDOW slots (slot = seq mod
SEQ_WINDOW) holding the next 8 bits of the number. It can be fooled only if a stream loses
every number of one slot for 65280 numbers in a row.

The histogram of each stream lives in block RAM: log-linear buckets (`regmap.hist_bucket`).
START clears all of it (512 cycles a stream); records arriving meanwhile are not counted.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...regmap import (FRAME_OVERHEAD, HIST_BUCKETS, HIST_COUNT_BITS, MIN_FRAME, SEQ_WINDOW,
                       STATS_FIELDS, STATS_SIGNED, MAX_STREAMS)
from ..blockram import BlockMemory
from ..fanout import copies
from .histogram import LATENCY_BITS, HistogramBucket
from .parser import Packet

__all__ = ["Tracker", "Stats"]

Stats = data.StructLayout({name: signed(w) if name in STATS_SIGNED else w
                           for name, w in STATS_FIELDS})
SQUARE_BITS = 36            # latencies up to 68 s are squared exactly; longer ones saturate
SEEN_TAG_BITS = 8
HALF = 64                   # the latency sums are added in two halves: bits below, then above
Seen = data.StructLayout({"valid": 1, "tag": SEEN_TAG_BITS})
# The states a record goes through after IDLE, in order (the module's cycle table).
STAGES = ("LATENCY", "CLAMP", "SHORT", "OPERANDS", "SQUARE", "MOVE", "SUM_SQUARES", "READ",
          "CARRY", "COUNT", "UPDATE", "WRITE")
# Control-clock cycles between records at most: a minimal frame's byte times on the wire, at
# half the core clock.
RECORD_SPACING = (MIN_FRAME + FRAME_OVERHEAD) // 2
assert 1 + len(STAGES) <= RECORD_SPACING, "a record's pipeline ends before the next can come"


class Tracker(wiring.Component):
    start: In(1)                    # clear every stream's statistics and histogram
    record_valid: In(1)
    record: In(Packet)
    ready: Out(1)                   # a record may come next cycle (idle, or clearing)
    busy: Out(1)                    # clearing
    dropped: Out(32)                # records that came while clearing

    stats_select: In(range(MAX_STREAMS))
    stats: Out(Stats)               # of `stats_select` in the host's copy, a cycle later
    freeze: In(1)                   # the host holds a snapshot: its copy holds still
    capture: In(1)                  # copy every row at this instant (then `freeze` holds it)
    capturing: Out(1)               # a capture is asked for or under way
    hist_select: In(range(MAX_STREAMS * HIST_BUCKETS))
    hist_count: Out(HIST_COUNT_BITS)    # of `hist_select`, at most 17 cycles later

    def __init__(self, streams=MAX_STREAMS):
        self._streams = streams
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        streams = self._streams
        window_bits = (SEQ_WINDOW - 1).bit_length()
        m.submodules.seen_mem = seen_mem = BlockMemory(width=Seen.size,
                                                       depth=streams * SEQ_WINDOW)
        m.submodules.hist_mem = hist_mem = BlockMemory(width=HIST_COUNT_BITS,
                                                       depth=streams * HIST_BUCKETS)
        seen_rd, seen_wr = seen_mem.read_port(), seen_mem.write_port()
        # One read port for the histograms (so the block RAMs need not be doubled): between
        # records it reads the bucket the host selected, into `hist_count`. Reads and writes
        # share one address register, so each block RAM serves both on one port (a read
        # port apart from the write port costs logic that guards against collisions).
        hist_rd, hist_wr = hist_mem.read_port(), hist_mem.write_port()
        # The block RAMs' outputs go straight into registers (see `BlockMemory`).
        hist_data = Signal(HIST_COUNT_BITS, reset_less=True)
        m.d.sync += hist_data.eq(hist_rd.data)
        host_read = Signal(3)       # the host's bucket: addressed, read, then in `hist_data`
        with m.If(host_read[2]):
            m.d.sync += self.hist_count.eq(hist_data)

        record = Signal(Packet)
        latency = Signal(LATENCY_BITS)
        m.submodules.bucketing = bucketing = HistogramBucket()
        m.d.comb += bucketing.latency.eq(latency)
        row = Signal(Stats)
        seen = Signal(Seen, reset_less=True)
        products = Signal(3 * 36)             # a*a, a*b, b*b of the latency's 18-bit halves
        squares = Signal(3 * 36)              # the same, a cycle later
        square = Signal(2 * SQUARE_BITS)
        hist_addr = Signal(range(streams * HIST_BUCKETS))
        seen_addr = Signal(range(streams * SEQ_WINDOW))
        sweep = Signal(range(streams * HIST_BUCKETS + 1))
        partial = Signal(Stats)               # the row with its sums updated
        in_order = Signal()                   # seq >= next_seq, modulo 2**32
        within = Signal()                     # next_seq - seq <= SEQ_WINDOW
        seen_before = Signal()
        lost_plus, lost_minus = Signal(signed(48)), Signal(signed(48))
        reordered_plus, duplicates_plus = Signal(48), Signal(48)
        next_after = Signal(32)
        difference = Signal(signed(65))
        sum_carry, sumsq_carry = Signal(), Signal()
        lower, higher = Signal(), Signal()     # than the row's minimum, maximum
        # The clamped latency, then a copy per multiplier: each block's inputs come from
        # flip-flops of their own, and its outputs go to a register before the adder, so only
        # register-to-register wires are long (the blocks sit in their own rows).
        short = Signal(SQUARE_BITS)
        operands = copies(SQUARE_BITS, 3, "operand")
        ahead, behind = Signal(32), Signal(32)    # seq - next_seq, next_seq - seq (mod 2**32)
        hist_plus = Signal(HIST_COUNT_BITS)
        # What the memories are written with, and their write enables, come from registers
        # (the clearing sweep's blanks, or the updated row, slot and count).
        stats_next, updated, seen_next = Signal(Stats), Signal(Stats), Signal(Seen)
        seen_we, hist_we = Signal(), Signal()
        m.d.comb += [seen_wr.data.eq(seen_next), hist_wr.data.eq(hist_plus),
                     seen_wr.en.eq(seen_we), hist_wr.en.eq(hist_we)]
        tag = record.seq[window_bits:window_bits + SEEN_TAG_BITS]

        # The stats rows live in LUT RAM, one memory per field; each field has its own copy
        # of the controls (`fanout`): one register cannot reach all 584 bits in a cycle. The
        # host reads a copy of them (the host's copy, `copy`), which the tracker's own read
        # port refreshes a row a cycle whenever it is not frozen: from `row_addr`, which
        # walks the rows while idle, so every row is at most a sweep (`streams` cycles) old.
        # A capture sweeps all rows with no record in between, then `freeze` holds the copy:
        # a snapshot of one instant. (A memory with a second read port is built twice over,
        # so this costs the same LUT RAM as the host's own port on the live rows did.) Both
        # reads are asynchronous, from registered addresses: the row holds still from IDLE
        # to its write-back, and the host's row while STATS_SELECT does; registering them
        # would take 1,168 flip-flops.
        fields = len(STATS_FIELDS)
        row_addr = copies(range(streams), fields, "row_addr")       # the row's stream
        host_addr = copies(range(streams), fields, "host_addr")     # = stats_select
        stats_we = copies(1, fields, "stats_we")
        copy_we = copies(1, fields, "copy_we")      # the host's copy takes the row now
        updating = copies(1, fields, "updating")    # load the updated row, else a blank one
        blank = Signal(Stats)
        m.d.comb += blank.latency_min.eq(-1)
        for index, (name, width) in enumerate(STATS_FIELDS):
            memory = Memory(shape=width, depth=streams, init=[])
            copy = Memory(shape=width, depth=streams, init=[])
            m.submodules[f"stats_{name}"], m.submodules[f"copy_{name}"] = memory, copy
            tracker_rd, write = memory.read_port(domain="comb"), memory.write_port()
            host_rd, copy_write = copy.read_port(domain="comb"), copy.write_port()
            m.d.sync += [
                host_addr[index].eq(self.stats_select),
                getattr(stats_next, name).eq(Mux(updating[index], getattr(updated, name),
                                                 getattr(blank, name))),
            ]
            m.d.comb += [
                tracker_rd.addr.eq(row_addr[index]), write.addr.eq(row_addr[index]),
                write.data.eq(getattr(stats_next, name)), write.en.eq(stats_we[index]),
                copy_write.addr.eq(row_addr[index]), copy_write.data.eq(tracker_rd.data),
                copy_write.en.eq(copy_we[index]),
                host_rd.addr.eq(host_addr[index]),
                getattr(row, name).eq(tracker_rd.data),
                getattr(self.stats, name).eq(host_rd.data),
            ]
        m.d.comb += [seen_rd.addr.eq(seen_addr), seen_wr.addr.eq(seen_addr),
                     hist_rd.addr.eq(hist_addr), hist_wr.addr.eq(hist_addr)]
        m.d.sync += host_read.eq(host_read << 1)

        with m.If(self.record_valid & self.busy):
            m.d.sync += self.dropped.eq(self.dropped + 1)

        # The arithmetic runs every cycle, register to register: a record's fields, its row
        # and its seen slot hold still from IDLE until it is written back, so each stage is
        # right by the time the state that uses it comes (no wide enables to fan out).
        m.d.sync += [
            difference.eq(record.rx_ns - record.tx_ns),                          # LATENCY
            latency.eq(Mux(difference < 0, 0,                                    # CLAMP
                           Mux(difference >= (1 << LATENCY_BITS),
                               (1 << LATENCY_BITS) - 1, difference))),
            seen.eq(seen_rd.data),                                               # SHORT
            short.eq(Mux(latency >= (1 << SQUARE_BITS), (1 << SQUARE_BITS) - 1, latency)),
            *(operand.eq(short) for operand in operands),                        # OPERANDS
            products.eq(Cat(operands[0][18:] * operands[0][18:],                # SQUARE
                            operands[1][18:] * operands[1][:18],
                            operands[2][:18] * operands[2][:18])),
            squares.eq(products),                                                # MOVE
            ahead.eq(record.seq - row.next_seq),
            behind.eq(row.next_seq - record.seq),
            square.eq(Cat(squares[72:], squares[:36]) + (squares[36:72] << 19)),  # SUM_SQUARES
            # READ: the low halves of the long sums (their carries are added in CARRY).
            partial.eq(row),
            partial.rx_packets.eq(row.rx_packets + 1),
            partial.rx_bytes.eq(row.rx_bytes + record.length),
            lower.eq(latency < row.latency_min), higher.eq(latency > row.latency_max),
            partial.latency_min.eq(Mux(lower, latency, row.latency_min)),
            partial.latency_max.eq(Mux(higher, latency, row.latency_max)),
            Cat(partial.latency_sum[:HALF], sum_carry).eq(row.latency_sum[:HALF] + latency),
            Cat(partial.latency_sumsq[:HALF], sumsq_carry).eq(
                row.latency_sumsq[:HALF] + square),
            partial.latency_sum[HALF:].eq(row.latency_sum[HALF:] + sum_carry),   # CARRY
            partial.latency_sumsq[HALF:].eq(row.latency_sumsq[HALF:] + sumsq_carry),
            in_order.eq(~ahead[31]),
            within.eq(behind <= SEQ_WINDOW),
            seen_before.eq(seen.valid & (seen.tag == tag)),
            lost_plus.eq(row.lost + ahead.as_signed()),
            lost_minus.eq(row.lost - 1),
            reordered_plus.eq(row.reordered + 1),
            duplicates_plus.eq(row.duplicates + 1),
            next_after.eq(record.seq + 1),
        ]
        # The row written back: `updated` (computed every cycle, right in UPDATE), or blank
        # (what CLEAR writes); the slot and the count likewise.
        m.d.comb += updated.eq(partial)
        with m.If(in_order):
            m.d.comb += [updated.lost.eq(lost_plus), updated.next_seq.eq(next_after)]
        with m.Elif(within & seen_before):
            m.d.comb += updated.duplicates.eq(duplicates_plus)
        with m.Else():
            m.d.comb += [updated.reordered.eq(reordered_plus), updated.lost.eq(lost_minus)]
        update = Signal()           # the cycle before UPDATE
        m.d.sync += [*(u.eq(update) for u in updating), *(we.eq(0) for we in stats_we),
                     seen_we.eq(0), hist_we.eq(0), seen_next.eq(0)]
        with m.If(updating[0]):
            m.d.sync += [*(we.eq(1) for we in stats_we), hist_we.eq(1),
                         seen_next.eq(Cat(Const(1, 1), tag)),
                         seen_we.eq(in_order | (within & ~seen_before))]

        # The host's copy takes a row each cycle unless frozen, and through a capture's sweep
        # (SNAP) whatever `freeze` says. Any row it takes is whole and of one instant: the
        # write-back of a record's row is one cycle, for all fields. Its enables are
        # registered, a cycle behind what they follow; so the first row of a sweep is taken
        # in SNAP's first cycle, and a row taken a cycle after the sweep (or after `freeze`
        # rises) is still the row of that instant (the FSM changes no row meanwhile).
        pending = Signal()          # a capture asked for, not yet begun
        snapping = Signal()         # in SNAP, or entering it
        with m.If(self.capture):
            m.d.sync += pending.eq(1)
        m.d.sync += [we.eq(~self.freeze | snapping) for we in copy_we]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.sync += [hist_addr.eq(self.hist_select), host_read[0].eq(1)]
                with m.If(self.start):
                    m.d.sync += [sweep.eq(0), hist_addr.eq(0), seen_addr.eq(0),
                                 *(a.eq(0) for a in row_addr), self.busy.eq(1), hist_plus.eq(0),
                                 *(we.eq(1) for we in stats_we), seen_we.eq(1), hist_we.eq(1)]
                    m.next = "CLEAR"
                with m.Elif(self.record_valid):
                    m.d.sync += [record.eq(self.record),
                                 *(a.eq(self.record.stream) for a in row_addr),
                                 seen_addr.eq(Cat(self.record.seq[:window_bits],
                                                  self.record.stream))]
                    m.next = "LATENCY"
                with m.Elif(pending):
                    m.d.sync += [pending.eq(0), *(a.eq(0) for a in row_addr)]
                    m.d.comb += snapping.eq(1)
                    m.next = "SNAP"
                with m.Else():      # the host's copy walks the rows
                    m.d.sync += [a.eq(a + 1) for a in row_addr]
            with m.State("SNAP"):   # no record is taken meanwhile (`ready` is low)
                m.d.sync += [a.eq(a + 1) for a in row_addr]
                with m.If(row_addr[0] != streams - 1):
                    m.d.comb += snapping.eq(1)
                with m.Else():
                    m.next = "IDLE"
            with m.State("CLEAR"):
                # The memories' own address registers walk through them, so each memory
                # keeps a single address for reading and writing (one block RAM port).
                after = sweep + 1       # the enables compare `sweep` (not `after`: shorter)
                m.d.sync += [sweep.eq(after), hist_addr.eq(after),
                             seen_addr.eq(after), *(a.eq(after) for a in row_addr),
                             *(we.eq(sweep < streams - 1) for we in stats_we),
                             seen_we.eq(sweep < streams * SEQ_WINDOW - 1),
                             hist_we.eq(sweep < streams * HIST_BUCKETS - 1)]
                with m.If(sweep == streams * HIST_BUCKETS - 1):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
            # The stages (`STAGES`, the module's cycle table), one state each; the arithmetic
            # above runs every cycle, so most of them only move on.
            for state, following in zip(STAGES, (*STAGES[1:], "IDLE")):
                with m.State(state):
                    m.next = following
                    if state == "SUM_SQUARES":      # the bucket of `latency` is out now
                        m.d.sync += hist_addr.eq(Cat(bucketing.bucket, record.stream))
                    elif state == "COUNT":          # the count is in `hist_data`
                        m.d.comb += update.eq(1)
                        m.d.sync += hist_plus.eq(hist_data + 1)
        m.d.comb += [self.ready.eq((fsm.ongoing("IDLE") & ~pending) | fsm.ongoing("CLEAR")),
                     self.capturing.eq(pending | fsm.ongoing("SNAP"))]
        return m
