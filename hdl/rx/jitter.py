"""Jitter per stream, of every measured packet: RFC 3550 §6.4.1's interarrival jitter and
RFC 3393's IP packet delay variation, in the control clock's domain beside the tracker.

For each record in arrival order, its latency L (RX − TX stamp, ns, clamped to 0..2**40 − 1
as the tracker clamps it) and the stream's previous packet's give D = L − L_prev, which is
RFC 3550's D(i−1, i) = (R_i − R_{i−1}) − (S_i − S_{i−1}). The stream's row then takes

    J   += (|D| − J) / 16        kept in 1/16 ns (JITTER_FRAC_BITS), the division rounding
                                 down: J_q += (16·|D| − J_q) >> 4, exactly as RFC 3550's
                                 reference code does it in its own units
    ipdv_min, ipdv_max           the extremes of D (RFC 3393's IPDV of consecutive packets)
    ipdv_abs_sum, ipdv_pairs     Σ|D| and the number of D: their mean (the mean of the
                                 signed D is (L_last − L_first)/(n − 1), about 0)

A stream's first packet after START only sets L_prev. The rows live in LUT RAM (STREAMS
deep); START clears them (STREAMS cycles, well inside the tracker's 8192), and a
START that comes while a record is under way is kept until it is done. One record takes six
cycles (the stages below, one state each); records come at most one per 42 cycles.

    IDLE     take the record and its stream (the row's address)
    LATENCY  RX − TX; the row is out
    CLAMP    0 ≤ L < 2**40
    DIFF     D = L − L_prev
    ABS      |D|, and the comparisons with min and max
    UPDATE   the new row, written back
"""
from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...regmap import JITTER_FIELDS, JITTER_FRAC_BITS, JITTER_SIGNED, MAX_STREAMS
from .histogram import LATENCY_BITS
from .parser import Packet

__all__ = ["Jitter", "JitterStats"]

JitterStats = data.StructLayout({name: signed(w) if name in JITTER_SIGNED else w
                                 for name, w in JITTER_FIELDS})
Row = data.StructLayout({"stats": JitterStats, "previous": LATENCY_BITS, "started": 1})


class Jitter(wiring.Component):
    start: In(1)                    # clear every stream's row (taken when idle, held till then)
    record_valid: In(1)
    record: In(Packet)
    ready: Out(1)                   # a record may come next cycle
    stats_select: In(range(MAX_STREAMS))
    stats: Out(JitterStats)         # of `stats_select`, a cycle later (at most 7 while a
                                    # record is under way)

    def __init__(self, streams=MAX_STREAMS):
        self._streams = streams
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        # LUT RAM with one asynchronous read port: the record's row while one is under way,
        # else the host's, copied into `stats` (a second read port would double the LUT RAM,
        # and registering it the flip-flops; the 25F has room for neither).
        m.submodules.rows = rows = Memory(shape=Row, depth=self._streams, init=[])
        read, write = rows.read_port(domain="comb"), rows.write_port()

        blank = Signal(Row)
        width = JitterStats["ipdv_min"].shape.width
        m.d.comb += [blank.stats.ipdv_min.eq((1 << (width - 1)) - 1),   # above any D
                     blank.stats.ipdv_max.eq(-(1 << (width - 1)))]       # below any D
        record = Signal(Packet)
        stream = Signal(range(self._streams))   # the row read and written
        difference = Signal(signed(65))
        latency = Signal(LATENCY_BITS)
        d = Signal(signed(LATENCY_BITS + 1))
        magnitude = Signal(LATENCY_BITS)
        lower, higher = Signal(), Signal()
        row = data.View(Row, read.data)
        stats = row.stats
        host = Signal()                     # idle: the port reads the host's row
        m.d.comb += [read.addr.eq(Mux(host, self.stats_select, stream)), write.addr.eq(stream)]
        with m.If(host):
            m.d.sync += self.stats.eq(stats)

        # Each stage is computed every cycle from registers that hold still from IDLE on.
        m.d.sync += [
            difference.eq(record.rx_ns - record.tx_ns),                          # LATENCY
            latency.eq(Mux(difference < 0, 0, Mux(difference >= (1 << LATENCY_BITS),  # CLAMP
                                                  (1 << LATENCY_BITS) - 1, difference))),
            d.eq(latency - row.previous),                                        # DIFF
            magnitude.eq(Mux(d < 0, -d, d)),                                     # ABS
            lower.eq(d < stats.ipdv_min), higher.eq(d > stats.ipdv_max),
        ]
        # J_q += (16·|D| − J_q) >> 4, in signed arithmetic (the shift rounds down).
        target, current = Signal(signed(50)), Signal(signed(50))
        m.d.comb += [target.eq(magnitude << JITTER_FRAC_BITS), current.eq(stats.jitter_q4)]
        # The row written back, in one assignment: its parts assigned apart (some under a
        # condition) became separate `always @*` blocks in Verilog, which Verilator ran wrong.
        step = Signal(JitterStats)
        m.d.comb += [
            step.jitter_q4.eq(current + ((target - current) >> JITTER_FRAC_BITS)),
            step.ipdv_min.eq(Mux(lower, d, stats.ipdv_min)),
            step.ipdv_max.eq(Mux(higher, d, stats.ipdv_max)),
            step.ipdv_abs_sum.eq(stats.ipdv_abs_sum + magnitude),
            step.ipdv_pairs.eq(stats.ipdv_pairs + 1),
        ]
        updated = Signal(Row)
        m.d.comb += updated.eq(Cat(Mux(row.started, step.as_value(), stats.as_value()),
                                   latency, 1))

        clear = Signal()                    # START seen, not yet done
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start | clear):
                    m.d.sync += [stream.eq(0), clear.eq(0)]
                    m.next = "CLEAR"
                with m.Elif(self.record_valid):
                    m.d.sync += [record.eq(self.record), stream.eq(self.record.stream)]
                    m.next = "LATENCY"
            with m.State("CLEAR"):
                m.d.comb += [write.data.eq(blank), write.en.eq(1)]
                m.d.sync += stream.eq(stream + 1)
                with m.If(stream == self._streams - 1):
                    m.next = "IDLE"
            for state, following in [("LATENCY", "CLAMP"), ("CLAMP", "DIFF"), ("DIFF", "ABS"),
                                     ("ABS", "UPDATE")]:
                with m.State(state):
                    with m.If(self.start):
                        m.d.sync += clear.eq(1)
                    m.next = following
            with m.State("UPDATE"):
                with m.If(self.start):
                    m.d.sync += clear.eq(1)
                m.d.comb += [write.data.eq(updated), write.en.eq(1)]
                m.next = "IDLE"
        m.d.comb += [host.eq(fsm.ongoing("IDLE")), self.ready.eq(fsm.ongoing("IDLE") & ~clear)]
        return m
