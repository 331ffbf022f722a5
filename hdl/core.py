"""The wirestamp core: everything a board or the virtual board wraps.

    register bus ─ bank ─ stream/segment tables ─ scheduler ─ generator ─┐
                                                       responder ─ TX mux ─ FIFO ─ MAC TX ─ GMII TX
    GMII RX ─ crossing ─ MAC RX ─ parser ─┬─ tracker (statistics, histograms)
                                          ├─ record FIFO
                                          └─ responder (ARP, ICMP echo)
    timebase: TX stamps at the SFD on txd, RX stamps at the SFD on rxd

Everything runs in the `sync` domain, the 125 MHz GMII transmit clock, one byte per cycle,
except the first stage of the receive path, which runs on the PHY's receive clock (`rx`)
and hands the bytes over through a small asynchronous FIFO.
"""
from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect

from .. import regmap
from .buffer import buffered
from .ctl.bank import RegisterBank, RegisterBus
from .fanout import copies
from .gen.generator import Generator
from .gen.profile import SegmentRow, StreamRow
from .gen.scheduler import Scheduler
from .mac.gmii import GmiiRx, GmiiTx
from .mac.rx import GmiiRxCrossing, MacRx
from .mac.tx import MacTx
from .rx.parser import Parser, Record
from .rx.records import RecordFifo
from .rx.responder import Responder, TxMux
from .rx.tracker import Tracker
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
    records: Out(stream.Signature(Record))     # towards the control link

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = RegisterBank()
        m.submodules.timebase = timebase = Timebase()
        m.submodules.scheduler = scheduler = Scheduler()
        m.submodules.generator = generator = Generator()
        m.submodules.mac_tx = mac_tx = MacTx()
        m.submodules.tx_mux = tx_mux = TxMux()
        m.submodules.crossing = crossing = GmiiRxCrossing()
        m.submodules.mac_rx = mac_rx = MacRx()
        m.submodules.parser = parser = Parser()
        m.submodules.tracker = tracker = Tracker()
        m.submodules.record_fifo = record_fifo = RecordFifo()
        m.submodules.responder = responder = Responder()
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

        # The commands, registered (CLEAR once per block it resets): they fan out widely.
        start, stop = Signal(), Signal()
        clears = copies(1, 6, "clear")
        m.d.sync += [start.eq(command(regmap.CONTROL_START)),
                     stop.eq(command(regmap.CONTROL_STOP)),
                     *(copy.eq(command(regmap.CONTROL_CLEAR)) for copy in clears)]
        # START first clears the receive statistics (the tracker sweeps its memories), then
        # starts the streams, so no measurement straddles the clearing.
        clearing, streams_go = Signal(), Signal()      # registered: it fans out widely
        m.d.sync += [clearing.eq(tracker.busy), streams_go.eq(clearing & ~tracker.busy)]
        m.d.comb += [
            timebase.increment.eq(bank.time_increment),
            self.now.eq(timebase.now),
            scheduler.start.eq(streams_go),
            scheduler.stop.eq(stop),
            scheduler.clear.eq(clears[0]),
            mac_tx.clear.eq(clears[1]),
            generator.start.eq(streams_go),
            generator.now.eq(timebase.now),
            tx_mux.sfd.eq(mac_tx.sfd),
            generator.sfd.eq(tx_mux.generated_sfd),
            bank.status.eq(scheduler.running | tracker.busy),
            bank.active.eq(scheduler.active),
            bank.time.eq(timebase.now),
            bank.tx_frames.eq(mac_tx.frames_sent),
            bank.tx_bytes.eq(mac_tx.bytes_sent),
            bank.sched_late.eq(scheduler.late),
        ]
        m.d.comb += [scheduler.sent_select.eq(bank.stream_tx_select),
                     bank.stream_tx.eq(scheduler.sent)]
        connect(m, scheduler.grants, generator.grants)
        connect(m, generator.frames, tx_mux.generated)
        connect(m, responder.frames, tx_mux.replies)
        # A two-byte FIFO between the sources and the MAC: the sources see a `ready` that
        # comes from a flip-flop, not through the MAC's state (a path into every wide
        # register the sources shift).
        buffered(m, "tx_buffer", tx_mux.out, mac_tx.frames)
        connect(m, mac_tx.gmii, wiring.flipped(self.gmii_tx))

        # Receive path.
        connect(m, wiring.flipped(self.gmii_rx), crossing.gmii)
        m.d.comb += [
            mac_rx.valid.eq(crossing.valid), mac_rx.wire.eq(crossing.byte),
            mac_rx.is_sfd.eq(crossing.is_sfd), mac_rx.is_preamble.eq(crossing.is_preamble),
            mac_rx.now.eq(timebase.now), mac_rx.clear.eq(clears[2]),
        ]
        for name in ("start", "stamp", "byte_valid", "byte", "index", "done", "good",
                     "length"):
            m.d.comb += getattr(parser, name).eq(getattr(mac_rx, name))
        m.d.comb += [
            parser.unit_ip.eq(bank.unit_ip), parser.arp_target.eq(bank.arp_target),
            parser.clear.eq(clears[3]),
            tracker.start.eq(start),
            tracker.record_valid.eq(parser.record_valid), tracker.record.eq(parser.record),
            tracker.stats_select.eq(bank.stats_select), bank.stats.eq(tracker.stats),
            tracker.hist_select.eq(bank.hist_select), bank.hist_count.eq(tracker.hist_count),
            record_fifo.record_valid.eq(parser.record_valid & ~tracker.busy),
            record_fifo.record.eq(parser.record),
            record_fifo.sample.eq(bank.record_sample), record_fifo.clear.eq(clears[4]),
            bank.record_level.eq(record_fifo.level),
            bank.record_overflow.eq(record_fifo.overflow),
            record_fifo.records.ready.eq(bank.record_strobe | self.records.ready),
            self.records.valid.eq(record_fifo.records.valid),
            self.records.payload.eq(record_fifo.records.payload),
            responder.frame_start.eq(mac_rx.start), responder.byte_valid.eq(mac_rx.byte_valid),
            responder.byte.eq(mac_rx.byte), responder.index.eq(mac_rx.index),
            responder.head.eq(parser.head), responder.frame_length.eq(parser.frame_length),
            responder.arp_request.eq(parser.arp_request),
            responder.icmp_echo.eq(parser.icmp_echo),
            responder.resolve.eq(bank.arp_control_strobe & bank.arp_control[0]),
            responder.unit_mac.eq(bank.unit_mac), responder.unit_ip.eq(bank.unit_ip),
            responder.arp_target.eq(bank.arp_target), responder.clear.eq(clears[5]),
        ]
        for register, counter in [
            ("rx_frames", mac_rx.frames), ("rx_bytes", mac_rx.bytes),
            ("rx_fcs_errors", mac_rx.fcs_errors), ("rx_errors", mac_rx.rx_errors),
            ("rx_runts", mac_rx.runts), ("rx_giants", mac_rx.giants),
            ("rx_preamble_errors", mac_rx.preamble_errors), ("rx_other", parser.other),
            ("rx_ip_errors", parser.ip_errors), ("rx_ip_other", parser.ip_other),
            ("rx_foreign_udp", parser.foreign_udp), ("rx_signed", parser.signed),
            ("arp_rx", parser.arp_rx), ("arp_tx", responder.arp_tx),
            ("icmp_rx", parser.icmp_rx), ("icmp_tx", responder.icmp_tx),
            ("reply_dropped", responder.dropped),
        ]:
            m.d.comb += getattr(bank, register).eq(counter)

        # The oldest record as the RECORD register shows it, registered: the FIFO's output comes
        # straight from a block RAM, too slow to feed the bank's multiplexers in the same cycle.
        record_head = Signal.like(bank.record)
        m.d.sync += record_head.eq(Mux(record_fifo.records.valid, record_fifo.records.payload, 0))
        m.d.comb += bank.record.eq(record_head)

        # ARP resolution: the answer to the last request.
        answered = Signal()
        with m.If(bank.arp_control_strobe):
            m.d.sync += answered.eq(0)
        with m.Elif(parser.arp_answer):
            m.d.sync += [answered.eq(1), bank.arp_result[:48].eq(parser.answer_mac)]
        m.d.comb += bank.arp_result[48].eq(answered)
        return m
