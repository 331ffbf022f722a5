"""The per-packet record FIFO towards the control link.

Each measured datagram (`Packet`, both stamps whole) becomes a 16-byte record
{stream, flags, length, seq, rx_ns low 32 bits, latency_ns} (`regmap.RECORD_FIELDS`). The RX
stamp's high 32 bits go in epoch marks (records with RECORD_EPOCH, the bits in `seq`): one
before the first record after `resync` (START), and one whenever they change, so the host
unrolls every stamp to 64 bits. A latency outside 32 bits is clipped and flagged.

With RECORD_SAMPLE = N, one datagram in N gets a record (0: none), for links slower than the
packet rate; epoch marks are never thinned. A record that finds the FIFO full is counted in
`overflow`, never lost silently; when its epoch mark is the one that does not fit, the record
is dropped with it (counted), and the next kept record tries the mark again.

    cycle 0  `record_valid`: kept or not (RECORD_SAMPLE)
    cycle 1  latency = rx − tx, and whether the epoch changed, registered
    cycle 2  the epoch mark written (if due), else the record
    cycle 3  the record written (after a mark)
The core holds `record` until the next, and they come at least 13 cycles apart (the tracker
takes that long over each), so one is through before the next arrives, and `record` needs no
copy here.
"""
from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ... import regmap
from .parser import Packet

__all__ = ["RecordFifo", "Record"]

DEPTH = 512
Record = data.StructLayout(dict(regmap.RECORD_FIELDS))
assert Record.size == 128, "16-byte records: the links' budget (regmap.RECORD_FIELDS)"


class RecordFifo(wiring.Component):
    record_valid: In(1)
    record: In(Packet)
    sample: In(32)
    resync: In(1)                   # the next record gets an epoch mark first
    records: Out(stream.Signature(Record))
    level: Out(range(DEPTH + 1))
    overflow: Out(64)
    clear: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=Record.size, depth=DEPTH)
        skipped = Signal(32)        # records passed over since the last one kept
        # Whether the next record is kept comes from a register: records are at least a
        # frame apart, and the parser holds each one until the next.
        due = Signal()
        m.d.sync += due.eq((self.sample != 0) & (skipped + 1 >= self.sample))
        keep = self.record_valid & due
        with m.If(self.record_valid & (self.sample != 0)):
            m.d.sync += skipped.eq(Mux(keep, 0, skipped + 1))

        packet, kept = self.record, Signal()                        # cycle 0
        m.d.sync += kept.eq(keep)

        latency = Signal(64)
        entry, with_mark, ready = Signal(Record), Signal(), Signal()
        epoch, epoch_next, epoch_known = Signal(32), Signal(32), Signal()
        # A mark is its record with other flags and `seq`: only those bits are multiplexed.
        mark = Signal(Record)
        m.d.comb += [mark.eq(entry), mark.flags.eq(regmap.RECORD_EPOCH),
                     mark.seq.eq(epoch_next)]
        m.d.comb += latency.eq(packet.rx_ns - packet.tx_ns)
        m.d.sync += ready.eq(kept)                                   # cycle 1
        with m.If(kept):
            clipped = latency[32:] != 0
            m.d.sync += [
                entry.stream.eq(packet.stream), entry.length.eq(packet.length),
                entry.seq.eq(packet.seq), entry.rx_ns.eq(packet.rx_ns[:32]),
                entry.flags.eq((packet.flags & regmap.RECORD_PACKET_FLAGS)
                               | Mux(clipped, regmap.RECORD_CLIPPED, 0)),
                entry.latency_ns.eq(Mux(clipped, (1 << 32) - 1, latency[:32])),
                with_mark.eq(~epoch_known | (packet.rx_ns[32:] != epoch)),
                epoch_next.eq(packet.rx_ns[32:]),
            ]

        after_mark = Signal()                                        # cycles 2 and 3
        write = ready | after_mark
        m.d.sync += after_mark.eq(0)
        m.d.comb += [fifo.w_data.eq(Mux(ready & with_mark, mark, entry)), fifo.w_en.eq(write)]
        with m.If(ready & with_mark & fifo.w_rdy):
            m.d.sync += [epoch.eq(epoch_next), epoch_known.eq(1), after_mark.eq(1)]
        # A record is lost when it, or the mark before it, finds the FIFO full.
        with m.If(write & ~fifo.w_rdy):
            m.d.sync += self.overflow.eq(self.overflow + 1)
        with m.If(self.clear):
            m.d.sync += self.overflow.eq(0)
        with m.If(self.resync):
            m.d.sync += epoch_known.eq(0)
        m.d.comb += [
            self.records.valid.eq(fifo.r_rdy), self.records.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.records.ready), self.level.eq(fifo.level),
        ]
        return m
