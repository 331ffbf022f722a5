"""Per-stream receive statistics, loss/reorder/duplicate counting, and latency histograms.

For each record (one signature datagram): latency = RX stamp - TX stamp (ns, saturating at
2**40 - 1). The stream's row in a small memory is read, updated and written back: packets,
bytes, latency min / max / sum / sum of squares, and the sequence counters. One record takes
ten cycles; records come at most one per 84 cycles.

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
START clears all of it (8192 cycles); records arriving meanwhile are not counted.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...regmap import (HIST_BUCKETS, HIST_COUNT_BITS, SEQ_WINDOW, STATS_FIELDS, STATS_SIGNED,
                       STREAMS)
from .histogram import LATENCY_BITS, HistogramBucket
from .parser import Record

__all__ = ["Tracker", "Stats"]

Stats = data.StructLayout({name: signed(w) if name in STATS_SIGNED else w
                           for name, w in STATS_FIELDS})
SQUARE_BITS = 36            # latencies up to 68 s are squared exactly; longer ones saturate
SEEN_TAG_BITS = 8
HALF = 64                   # the latency sums are added in two halves: bits below, then above
Seen = data.StructLayout({"valid": 1, "tag": SEEN_TAG_BITS})


class Tracker(wiring.Component):
    start: In(1)                    # clear every stream's statistics and histogram
    record_valid: In(1)
    record: In(Record)
    busy: Out(1)                    # clearing
    dropped: Out(32)                # records that came while clearing

    stats_select: In(range(STREAMS))
    stats: Out(Stats)               # of `stats_select`, one cycle later
    hist_select: In(range(STREAMS * HIST_BUCKETS))
    hist_count: Out(HIST_COUNT_BITS)    # of `hist_select`, at most 10 cycles later

    def elaborate(self, platform):
        m = Module()
        window_bits = (SEQ_WINDOW - 1).bit_length()
        m.submodules.stats_mem = stats_mem = Memory(shape=Stats, depth=STREAMS, init=[])
        m.submodules.seen_mem = seen_mem = Memory(shape=Seen, depth=STREAMS * SEQ_WINDOW,
                                                  init=[])
        m.submodules.hist_mem = hist_mem = Memory(shape=HIST_COUNT_BITS,
                                                  depth=STREAMS * HIST_BUCKETS, init=[])
        stats_rd, stats_wr = stats_mem.read_port(), stats_mem.write_port()
        host_stats = stats_mem.read_port()
        seen_rd, seen_wr = seen_mem.read_port(), seen_mem.write_port()
        # One read port for the histograms (so the block RAMs need not be doubled): between
        # records it reads the bucket the host selected, into `hist_count`.
        hist_rd, hist_wr = hist_mem.read_port(), hist_mem.write_port()
        m.d.comb += [host_stats.addr.eq(self.stats_select), self.stats.eq(host_stats.data)]
        host_read = Signal()
        with m.If(host_read):
            m.d.sync += self.hist_count.eq(hist_rd.data)

        record = Signal(Record)
        latency = Signal(LATENCY_BITS)
        m.submodules.bucketing = bucketing = HistogramBucket()
        m.d.comb += bucketing.latency.eq(latency)
        row = Signal(Stats)
        seen = Signal(Seen)
        squares = Signal(3 * 36)              # a*a, a*b, b*b of the latency's 18-bit halves
        square = Signal(2 * SQUARE_BITS)
        hist_addr = Signal(range(STREAMS * HIST_BUCKETS))
        seen_addr = Signal(range(STREAMS * SEQ_WINDOW))
        sweep = Signal(range(STREAMS * HIST_BUCKETS + 1))
        partial = Signal(Stats)               # the row with its sums updated
        in_order = Signal()                   # seq >= next_seq, modulo 2**32
        within = Signal()                     # next_seq - seq <= SEQ_WINDOW
        seen_before = Signal()
        lost_plus, lost_minus = Signal(signed(48)), Signal(signed(48))
        reordered_plus, duplicates_plus = Signal(48), Signal(48)
        next_after = Signal(32)
        difference = Signal(signed(65))
        sum_carry, sumsq_carry = Signal(), Signal()
        short = Signal(SQUARE_BITS)
        ahead, behind = Signal(32), Signal(32)    # seq - next_seq, next_seq - seq (mod 2**32)
        hist_plus = Signal(HIST_COUNT_BITS)
        tag = record.seq[window_bits:window_bits + SEEN_TAG_BITS]

        m.d.comb += [stats_rd.addr.eq(record.stream), stats_wr.addr.eq(record.stream),
                     seen_rd.addr.eq(seen_addr), seen_wr.addr.eq(seen_addr),
                     hist_rd.addr.eq(hist_addr), hist_wr.addr.eq(hist_addr)]
        m.d.sync += host_read.eq(0)

        with m.If(self.record_valid & self.busy):
            m.d.sync += self.dropped.eq(self.dropped + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += hist_rd.addr.eq(self.hist_select)
                m.d.sync += host_read.eq(1)
                with m.If(self.start):
                    m.d.sync += [sweep.eq(0), hist_addr.eq(0), seen_addr.eq(0),
                                 record.stream.eq(0), self.busy.eq(1)]
                    m.next = "CLEAR"
                with m.Elif(self.record_valid):
                    m.d.sync += [record.eq(self.record),
                                 seen_addr.eq(Cat(self.record.seq[:window_bits],
                                                  self.record.stream))]
                    m.next = "LATENCY"
            with m.State("CLEAR"):
                # The memories' own address registers walk through them, so each memory
                # keeps a single address for reading and writing (one block RAM port).
                blank = Signal(Stats)
                m.d.comb += [
                    blank.latency_min.eq(-1),
                    hist_wr.data.eq(0), hist_wr.en.eq(1),
                    seen_wr.data.eq(0), seen_wr.en.eq(sweep < STREAMS * SEQ_WINDOW),
                    stats_wr.data.eq(blank), stats_wr.en.eq(sweep < STREAMS),
                ]
                m.d.sync += [sweep.eq(sweep + 1), hist_addr.eq(sweep + 1),
                             seen_addr.eq(sweep + 1), record.stream.eq(sweep + 1)]
                with m.If(sweep == STREAMS * HIST_BUCKETS - 1):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
            with m.State("LATENCY"):
                m.d.sync += difference.eq(record.rx_ns - record.tx_ns)
                m.next = "CLAMP"
            with m.State("CLAMP"):
                with m.If(difference < 0):
                    m.d.sync += latency.eq(0)
                with m.Elif(difference >= (1 << LATENCY_BITS)):
                    m.d.sync += latency.eq((1 << LATENCY_BITS) - 1)
                with m.Else():
                    m.d.sync += latency.eq(difference)
                m.next = "SHORT"
            with m.State("SHORT"):
                # The stats row and the seen slot (addressed since IDLE) are here.
                m.d.sync += [row.eq(stats_rd.data), seen.eq(seen_rd.data),
                             short.eq(Mux(latency >= (1 << SQUARE_BITS),
                                          (1 << SQUARE_BITS) - 1, latency))]
                m.next = "SQUARE"
            with m.State("SQUARE"):     # the multipliers, register to register
                a, b = short[18:36], short[:18]
                m.d.sync += [squares.eq(Cat(a * a, a * b, b * b)),
                             ahead.eq(record.seq - row.next_seq),
                             behind.eq(row.next_seq - record.seq)]
                m.next = "SUM_SQUARES"
            with m.State("SUM_SQUARES"):    # the bucket of `latency` is out at the end
                aa, ab, bb = squares[:36], squares[36:72], squares[72:]
                m.d.sync += square.eq(Cat(bb, aa) + (ab << 19))
                m.next = "ADDRESS"
            with m.State("ADDRESS"):
                m.d.sync += hist_addr.eq(Cat(bucketing.bucket, record.stream))
                m.next = "READ"
            with m.State("READ"):
                # The histogram count is on its way; do the wide arithmetic now, registered
                # (the long sums in two halves: low words here, carries next), so the update
                # below is only choices.
                m.d.sync += [
                    partial.eq(row),
                    partial.rx_packets.eq(row.rx_packets + 1),
                    partial.rx_bytes.eq(row.rx_bytes + record.length),
                    partial.latency_min.eq(Mux(latency < row.latency_min, latency,
                                               row.latency_min)),
                    partial.latency_max.eq(Mux(latency > row.latency_max, latency,
                                               row.latency_max)),
                    Cat(partial.latency_sum[:HALF], sum_carry).eq(
                        row.latency_sum[:HALF] + latency),
                    Cat(partial.latency_sumsq[:HALF], sumsq_carry).eq(
                        row.latency_sumsq[:HALF] + square),
                    in_order.eq(~ahead[31]),
                    within.eq(behind <= SEQ_WINDOW),
                    seen_before.eq(seen.valid & (seen.tag == tag)),
                    lost_plus.eq(row.lost + ahead.as_signed()),
                    lost_minus.eq(row.lost - 1),
                    reordered_plus.eq(row.reordered + 1),
                    duplicates_plus.eq(row.duplicates + 1),
                    next_after.eq(record.seq + 1),
                ]
                m.next = "CARRY"
            with m.State("CARRY"):     # the histogram count is here
                m.d.sync += [
                    hist_plus.eq(hist_rd.data + 1),
                    partial.latency_sum[HALF:].eq(row.latency_sum[HALF:] + sum_carry),
                    partial.latency_sumsq[HALF:].eq(row.latency_sumsq[HALF:] + sumsq_carry),
                ]
                m.next = "UPDATE"
            with m.State("UPDATE"):
                new = Signal(Stats)
                m.d.comb += new.eq(partial)
                mark = Signal()
                with m.If(in_order):
                    m.d.comb += [new.lost.eq(lost_plus), new.next_seq.eq(next_after),
                                 mark.eq(1)]
                with m.Elif(within & seen_before):
                    m.d.comb += new.duplicates.eq(duplicates_plus)
                with m.Else():
                    m.d.comb += [new.reordered.eq(reordered_plus), new.lost.eq(lost_minus),
                                 mark.eq(within)]
                m.d.comb += [
                    stats_wr.en.eq(1), stats_wr.data.eq(new),
                    seen_wr.en.eq(mark), seen_wr.data.eq(Cat(Const(1, 1), tag)),
                    hist_wr.en.eq(1), hist_wr.data.eq(hist_plus),
                ]
                m.next = "IDLE"
        return m
