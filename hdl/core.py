"""The wirestamp core: everything a board or the virtual board wraps.

    register bus ─ bank ─ stream/segment tables ─ scheduler ─ generator ─ MAC TX ─ GMII TX
                                     timebase ─────────────────┘ (TX stamp at the SFD)

All of it runs in the `sync` domain: the 125 MHz GMII transmit clock, one byte per cycle.
The receive side (`gmii_rx`) is a port already, so boards and benches need no rework when the
receive path lands.
"""
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect

from .. import regmap
from .ctl.bank import RegisterBank, RegisterBus
from .gen.generator import Generator
from .gen.profile import SegmentRow, StreamRow
from .gen.scheduler import Scheduler
from .mac.gmii import GmiiRx, GmiiTx
from .mac.tx import MacTx
from .time import Timebase

__all__ = ["Core"]


def _table_memory(m, name, table, write):
    memory = Memory(shape=32 * table.row_words, depth=table.rows, init=[])
    m.submodules[name] = memory
    port = memory.write_port(granularity=32)
    m.d.comb += [port.addr.eq(write.addr), port.data.eq(write.data), port.en.eq(write.en)]
    return memory


class Core(wiring.Component):
    bus: In(RegisterBus())
    gmii_tx: Out(GmiiTx())
    gmii_rx: In(GmiiRx())
    now: Out(64)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = RegisterBank()
        m.submodules.timebase = timebase = Timebase()
        m.submodules.scheduler = scheduler = Scheduler()
        m.submodules.generator = generator = Generator()
        m.submodules.mac_tx = mac_tx = MacTx()
        connect(m, wiring.flipped(self.bus), bank.bus)

        streams = _table_memory(m, "stream_table", regmap.STREAM_TABLE, bank.stream_table)
        segments = _table_memory(m, "segment_table", regmap.SEGMENT_TABLE, bank.segment_table)
        for reader, rows, row_layout, prefix in [
            (scheduler, streams, StreamRow, "stream"),
            (generator, streams, StreamRow, "stream"),
            (scheduler, segments, SegmentRow, "segment"),
        ]:
            port = rows.read_port()
            m.d.comb += [
                port.addr.eq(getattr(reader, prefix + "_addr")),
                getattr(reader, prefix + "_row").eq(port.data[:row_layout.size]),
            ]

        def command(bit):
            return bank.control_strobe & ((bank.control & bit) != 0)

        start, clear = command(regmap.CONTROL_START), command(regmap.CONTROL_CLEAR)
        m.d.comb += [
            timebase.increment.eq(bank.time_increment),
            self.now.eq(timebase.now),
            scheduler.start.eq(start),
            scheduler.stop.eq(command(regmap.CONTROL_STOP)),
            scheduler.clear.eq(clear),
            mac_tx.clear.eq(clear),
            generator.start.eq(start),
            generator.now.eq(timebase.now),
            generator.sfd.eq(mac_tx.sfd),
            bank.status.eq(scheduler.running),
            bank.active.eq(scheduler.active),
            bank.time.eq(timebase.now),
            bank.tx_frames.eq(mac_tx.frames_sent),
            bank.tx_bytes.eq(mac_tx.bytes_sent),
            bank.sched_late.eq(scheduler.late),
        ]
        for i in range(regmap.STREAMS):
            m.d.comb += bank.stream_tx[i].eq(scheduler.sent[i])
        connect(m, scheduler.grants, generator.grants)
        connect(m, generator.frames, mac_tx.frames)
        connect(m, mac_tx.gmii, wiring.flipped(self.gmii_tx))
        return m
