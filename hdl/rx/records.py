"""The per-packet record FIFO towards the control link.

Each measured datagram yields a record {stream, flags, length, seq, tx_ns, rx_ns} (192 bits).
With RECORD_SAMPLE = N, one record in N enters the FIFO (0: none), for links slower than the
packet rate. A record that finds the FIFO full is counted in `overflow`, never lost silently.
"""
from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .parser import Record

__all__ = ["RecordFifo"]

DEPTH = 512


class RecordFifo(wiring.Component):
    record_valid: In(1)
    record: In(Record)
    sample: In(32)
    records: Out(stream.Signature(Record))
    level: Out(range(DEPTH + 1))
    overflow: Out(64)
    clear: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=Record.size, depth=DEPTH)
        skipped = Signal(32)        # records passed over since the last one kept
        # Whether the next record is kept, and the write, come from registers: records are at
        # least a frame apart, and the parser holds each one until the next.
        due, write = Signal(), Signal()
        m.d.sync += due.eq((self.sample != 0) & (skipped + 1 >= self.sample))
        keep = self.record_valid & due
        with m.If(self.record_valid & (self.sample != 0)):
            m.d.sync += skipped.eq(Mux(keep, 0, skipped + 1))
        m.d.sync += write.eq(keep)
        m.d.comb += [fifo.w_data.eq(self.record), fifo.w_en.eq(write)]
        with m.If(write & ~fifo.w_rdy):
            m.d.sync += self.overflow.eq(self.overflow + 1)
        with m.If(self.clear):
            m.d.sync += self.overflow.eq(0)
        m.d.comb += [
            self.records.valid.eq(fifo.r_rdy), self.records.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.records.ready), self.level.eq(fifo.level),
        ]
        return m
