"""The wirestamp core: everything a board or the virtual board wraps.

    register bus ─ bank ─ stream/segment tables ─ scheduler ─ generator ─┐
                                                       responder ─ TX mux ─ skid buffer ─ MAC TX ─ GMII TX
    GMII RX ─ crossing ─ MAC RX ─ parser ─┬─ tracker (statistics, histograms), jitter
                                          ├─ record FIFO
                                          └─ responder (ARP, ICMP echo)
    timebase: TX stamps at the SFD on txd, RX stamps at the SFD on rxd
    bank ─ MDIO master ─ MDC/MDIO (the PHYs' management registers: link state)

Three clock domains:
- `sync`, the 125 MHz GMII transmit clock, one byte per cycle: the datapath from the
  stream tables to the wire and back to the records;
- `rx`, the PHY's receive clock: the first stage of the receive path, which hands the bytes
  over through a small asynchronous FIFO;
- `ctl`, half of `sync` (62.5 MHz): the register bank, the statistics (tracker), the record
  FIFO and the control link. Settings, commands and counters cross in `ControlCrossing`
  rounds, records through an asynchronous FIFO; the bank writes the stream and segment tables
  from its side of dual-clock memories.
"""
from amaranth import Cat, Module, Mux, Signal
from amaranth.hdl import DomainRenamer
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect

from .. import regmap
from .buffer import CrossingFifo, SkidBuffer
from .ctl.bank import RegisterBank, RegisterBus
from .ctl.crossing import ControlCrossing
from .ctl.mdio import MdioMaster, MdioPins
from .fanout import copies
from .gen.generator import Generator
from .gen.profile import SegmentRow, StreamRow
from .gen.scheduler import Scheduler
from .mac.gmii import FrameByte, GmiiRx, GmiiTx
from .mac.mux import TxMux
from .mac.rx import GmiiRxCrossing, MacRx
from .mac.tx import MacTx
from .rx.jitter import Jitter
from .rx.parser import Packet, Parser
from .rx.records import Record, RecordFifo
from .rx.responder import Responder
from .rx.tracker import Tracker
from .time import Timebase

__all__ = ["Core", "CONTROL_HZ"]

CONTROL_HZ = regmap.CLOCK_HZ // 2       # the `ctl` clock

# Bank registers the core's `sync` side uses, carried over by the crossing.
SETTINGS = ("time_increment", "unit_mac", "unit_ip", "arp_target", "stream_tx_select")
# What the host starts on the `sync` side: STOP, CLEAR, the streams' start (after START has
# cleared the statistics), an ARP_CONTROL write (`arp_write`), a resolve request, and a
# SNAPSHOT write (`snapshot`: the counters are captured, and the streams' counts copied).
COMMANDS = ("stop", "clear", "go", "arp_write", "resolve", "snapshot")


def _table_memory(m, name, table, write, rows):
    """The first `rows` rows of `table`; writes to the others are dropped (they would alias)."""
    memory = Memory(shape=32 * table.row_words, depth=rows, init=[])
    m.submodules[name] = memory
    port = memory.write_port(granularity=32, domain="ctl")
    enable = write.en if rows == table.rows else Mux(write.addr < rows, write.en, 0)
    m.d.comb += [port.addr.eq(write.addr), port.data.eq(write.data), port.en.eq(enable)]
    return memory


class Core(wiring.Component):
    """Two build options, both in CAPS: `streams` (one of `regmap.BUILD_STREAMS`), how many
    streams the image carries, and `jitter`, whether it has the jitter unit (`rx.jitter`;
    without it JITTER reads 0). Fewer streams make a smaller image: a rate accumulator,
    backlog and size-list place per stream, and a histogram's block RAM per two streams
    (docs/boards.md says what each board carries)."""
    bus: In(RegisterBus())                     # `ctl`
    gmii_tx: Out(GmiiTx())
    gmii_rx: In(GmiiRx())
    now: Out(64)
    records: Out(stream.Signature(Record))     # towards the control link, `ctl`
    mdio: Out(MdioPins())                      # `ctl`

    def __init__(self, streams=regmap.MAX_STREAMS, jitter=True):
        regmap.caps(streams, jitter)            # checks `streams`
        self._streams, self._jitter = streams, jitter
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = DomainRenamer("ctl")(RegisterBank())
        m.submodules.timebase = timebase = Timebase()
        streams_built = self._streams
        m.submodules.scheduler = scheduler = Scheduler(streams_built)
        m.submodules.generator = generator = Generator(streams_built)
        m.submodules.mac_tx = mac_tx = MacTx()
        m.submodules.tx_mux = tx_mux = TxMux()
        m.submodules.crossing = crossing = GmiiRxCrossing()
        m.submodules.mac_rx = mac_rx = MacRx()
        m.submodules.parser = parser = Parser(streams_built)
        m.submodules.tracker = tracker = DomainRenamer("ctl")(Tracker(streams_built))
        jitter = None
        if self._jitter:
            m.submodules.jitter = jitter = DomainRenamer("ctl")(Jitter(streams_built))
        m.d.comb += bank.caps.eq(regmap.caps(streams_built, self._jitter))
        m.submodules.record_fifo = record_fifo = DomainRenamer("ctl")(RecordFifo())
        m.submodules.responder = responder = Responder()
        m.submodules.mdio = mdio = DomainRenamer("ctl")(MdioMaster())
        connect(m, mdio.pins, wiring.flipped(self.mdio))
        m.d.comb += [mdio.command.payload.eq(bank.mdio_command),
                     mdio.command.valid.eq(bank.mdio_command_strobe),
                     bank.mdio_result.eq(mdio.result)]
        # The bank registers the `sync` side counts, and where from; carried over by the
        # crossing's snapshot, with `running` (for STATUS) and ARP_RESULT (made below).
        counters = {
            "active": scheduler.active, "time": timebase.now,
            "tx_frames": mac_tx.frames_sent, "tx_bytes": mac_tx.bytes_sent,
            "sched_late": scheduler.late, "stream_tx": scheduler.sent,
            "rx_frames": mac_rx.frames, "rx_bytes": mac_rx.bytes,
            "rx_fcs_errors": mac_rx.fcs_errors, "rx_errors": mac_rx.rx_errors,
            "rx_runts": mac_rx.runts, "rx_giants": mac_rx.giants,
            "rx_preamble_errors": mac_rx.preamble_errors, "rx_other": parser.other,
            "rx_ip_errors": parser.ip_errors, "rx_ip_other": parser.ip_other,
            "rx_foreign_udp": parser.foreign_udp, "rx_signed": parser.signed,
            "arp_rx": parser.arp_rx, "arp_tx": responder.arp_tx,
            "icmp_rx": parser.icmp_rx, "icmp_tx": responder.icmp_tx,
            "reply_dropped": responder.dropped,
        }
        registers = [*counters, "arp_result"]
        members = bank.signature.members
        # SNAPSHOT: while the host holds one (`hold`), the crossing's rounds capture only
        # STREAM_TX (the scheduler holds its copy of the counts still), and the tracker holds
        # its copy of the statistics; writing it captures all of them anew (the tracker's at
        # once, the rest a round later). The jitter unit's figures are not counts and not
        # held: a copy of its rows did not fit the 25F (docs/timing.md).
        hold = Signal()
        m.d.comb += hold.eq(bank.snapshot[regmap.field_bits(regmap.SNAPSHOT_FIELDS, "hold")])
        m.submodules.control = control = ControlCrossing(
            {"freeze": 1, **{name: members[name].shape for name in SETTINGS}}, COMMANDS,
            {"running": 1, **{name: members[name].shape for name in registers}},
            always=("stream_tx",), capturing=("snapshot",))
        settings, fired = control.applied, control.fired
        m.d.comb += [control.settings.freeze.eq(hold), control.freeze.eq(hold),
                     tracker.freeze.eq(hold), tracker.capture.eq(bank.snapshot_strobe)]
        # (Reads wait until the tracker's copy is taken: `_bus`.)

        streams = _table_memory(m, "stream_table", regmap.STREAM_TABLE, bank.stream_table,
                                streams_built)
        segments = _table_memory(m, "segment_table", regmap.SEGMENT_TABLE, bank.segment_table,
                                 regmap.SEGMENTS)
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

        # The tracker's histogram bucket the host reads (HIST_COUNTS, `_bus`).
        hist_bucket = Signal(range(streams_built * regmap.HIST_BUCKETS))
        self._bus(m, bank, control, hist_bucket, tracker.capturing)

        def command(bit):
            return bank.control_strobe & ((bank.control & bit) != 0)

        # The commands, registered. START first clears the receive statistics (the tracker
        # sweeps its memories), then starts the streams, so no measurement straddles the
        # clearing; STOP and CLEAR are for the `sync` side.
        start, clearing, streams_go = Signal(), Signal(), Signal()
        m.d.ctl += [start.eq(command(regmap.CONTROL_START)),
                    control.commands.stop.eq(command(regmap.CONTROL_STOP)),
                    control.commands.clear.eq(command(regmap.CONTROL_CLEAR)),
                    control.commands.arp_write.eq(bank.arp_control_strobe),
                    control.commands.resolve.eq(bank.arp_control_strobe & bank.arp_control[0]),
                    control.commands.snapshot.eq(bank.snapshot_strobe),
                    clearing.eq(tracker.busy), streams_go.eq(clearing & ~tracker.busy)]
        m.d.comb += control.commands.go.eq(streams_go)
        for name in SETTINGS:
            m.d.comb += getattr(control.settings, name).eq(getattr(bank, name))
        for name in registers:
            m.d.comb += getattr(bank, name).eq(getattr(control.snapshot, name))
        for name, counter in counters.items():
            m.d.comb += getattr(control.live, name).eq(counter)
        # Running from START until the streams end, with no gap while `go` crosses over.
        m.d.comb += bank.status.eq(control.snapshot.running | tracker.busy | clearing |
                                   control.in_flight.go)
        # CLEAR, once per block it resets: it fans out widely.
        clears = copies(1, 4, "clear")
        m.d.sync += [copy.eq(fired.clear) for copy in clears]
        m.d.comb += [
            timebase.increment.eq(settings.time_increment),
            self.now.eq(timebase.now),
            scheduler.start.eq(fired.go),
            scheduler.stop.eq(fired.stop),
            scheduler.clear.eq(clears[0]),
            mac_tx.clear.eq(clears[0]),
            generator.start.eq(fired.go),
            generator.now.eq(timebase.now),
            tx_mux.sfd.eq(mac_tx.sfd),
            generator.sfd.eq(tx_mux.generated_sfd),
            control.live.running.eq(scheduler.running),
            scheduler.sent_select.eq(settings.stream_tx_select),
            scheduler.freeze.eq(settings.freeze), scheduler.capture.eq(fired.snapshot),
        ]
        connect(m, scheduler.grants, generator.grants)
        # Skid buffers between the MAC and the mux, and between the mux and each source: the
        # sources and the mux see a `ready` from a flip-flop, not through the mux's or the
        # MAC's state (a path into every wide register they shift).
        for name, source, sink in [("generated_buffer", generator.frames, tx_mux.generated),
                                   ("reply_buffer", responder.frames, tx_mux.replies),
                                   ("tx_buffer", tx_mux.out, mac_tx.frames)]:
            buffer = m.submodules[name] = SkidBuffer(FrameByte)
            connect(m, source, buffer.i)
            connect(m, buffer.o, sink)
        connect(m, mac_tx.gmii, wiring.flipped(self.gmii_tx))

        # Receive path.
        connect(m, wiring.flipped(self.gmii_rx), crossing.gmii)
        m.d.comb += [
            mac_rx.valid.eq(crossing.valid), mac_rx.wire.eq(crossing.byte),
            mac_rx.is_sfd.eq(crossing.is_sfd), mac_rx.is_preamble.eq(crossing.is_preamble),
            mac_rx.now.eq(timebase.now), mac_rx.clear.eq(clears[1]),
        ]
        connect(m, mac_rx.frame, parser.frame, responder.frame)
        m.d.comb += [
            parser.unit_ip.eq(settings.unit_ip), parser.arp_target.eq(settings.arp_target),
            parser.clear.eq(clears[2]),
            responder.head.eq(parser.head), responder.frame_length.eq(parser.frame_length),
            responder.arp_request.eq(parser.arp_request),
            responder.icmp_echo.eq(parser.icmp_echo),
            responder.resolve.eq(fired.resolve),
            responder.unit_mac.eq(settings.unit_mac), responder.unit_ip.eq(settings.unit_ip),
            responder.arp_target.eq(settings.arp_target), responder.clear.eq(clears[3]),
        ]

        # ARP resolution: the answer to the last request.
        answered = Signal()
        with m.If(fired.arp_write):
            m.d.sync += answered.eq(0)
        with m.Elif(parser.arp_answer):
            m.d.sync += [answered.eq(1), control.live.arp_result[
                regmap.field_bits(regmap.ARP_RESULT_FIELDS, "mac")].eq(parser.answer_mac)]
        m.d.comb += control.live.arp_result[
            regmap.field_bits(regmap.ARP_RESULT_FIELDS, "answered")].eq(answered)

        self._records(m, parser, tracker, jitter, record_fifo, bank, start=start,
                      clear=control.commands.clear, hist_bucket=hist_bucket)
        return m

    def _bus(self, m, bank, control, hist_bucket, capturing):
        """Writes go straight to the bank, then a round carries the settings over. A read
        first has a round bring the counters over, then reads the bank (holding the next
        round off until the word is out). A read of HIST_COUNTS element i first points the
        tracker at bucket HIST_SELECT + i (`hist_bucket`) and waits until its count is out,
        so one READ burst takes HIST_BURST buckets."""
        bus = self.bus
        m.d.comb += [bank.bus.addr.eq(bus.addr), bank.bus.w_data.eq(bus.w_data),
                     bank.bus.w_en.eq(bus.w_en), bus.r_data.eq(bank.bus.r_data),
                     bus.r_valid.eq(bank.bus.r_valid)]
        written = Signal(RegisterBus.WRITE_LATENCY + 2)     # commands are registered twice
        m.d.ctl += written.eq(Cat(bus.w_en, written[:-1]))
        # The bucket follows the address and HIST_SELECT (a write just before may still be
        # on its way into the bank); the count is waited for from the last change on.
        counts = regmap.register("HIST_COUNTS")
        offset = Signal(16)
        m.d.comb += offset.eq(bus.addr - counts.addr)
        waiting = Signal(range(regmap.HIST_COUNT_CYCLES + 2))
        bucket = Signal.like(hist_bucket)
        m.d.ctl += bucket.eq(bank.hist_select[:len(hist_bucket)] + offset[1:])
        in_counts = offset < counts.count * counts.words
        with m.If(in_counts):
            m.d.ctl += hist_bucket.eq(bucket)
        with m.If((bucket != hist_bucket) | written.any()):
            m.d.ctl += waiting.eq(regmap.HIST_COUNT_CYCLES + 1)
        with m.Elif(waiting != 0):
            m.d.ctl += waiting.eq(waiting - 1)
        with m.FSM(domain="ctl", name="bus_read"):
            with m.State("IDLE"):
                m.d.comb += control.refresh.eq(bus.r_en | written[-1])
                with m.If(bus.r_en):
                    m.next = "ROUND"
            with m.State("ROUND"):
                m.d.comb += control.refresh.eq(written[-1])
                with m.If(control.settled & ~capturing & ((waiting == 0) | ~in_counts)):
                    m.d.comb += [bank.bus.r_en.eq(1), control.hold.eq(1)]
                    m.next = "READ"
            with m.State("READ"):
                m.d.comb += [control.refresh.eq(written[-1]), control.hold.eq(1)]
                with m.If(bank.bus.r_valid):
                    m.next = "IDLE"

    def _records(self, m, parser, tracker, jitter, record_fifo, bank, start, clear,
                 hist_bucket):
        """Records cross to `ctl` in a small asynchronous FIFO: they come at most one per
        minimal frame (84 `sync` cycles) and leave in at most 14 `ctl` cycles, so it never
        fills. Each is held in a register for the tracker, the jitter and the record FIFO.
        START is held for the tracker until it has begun clearing: it takes START only
        between records."""
        m.submodules.record_crossing = fifo = CrossingFifo(Packet, depth=4, w_domain="sync",
                                                           r_domain="ctl")
        m.d.comb += [fifo.i.payload.eq(parser.record), fifo.i.valid.eq(parser.record_valid)]
        record, record_valid = Signal(Packet), Signal()
        take = fifo.o.valid & tracker.ready & ~record_valid
        if jitter is not None:
            take &= jitter.ready
        m.d.comb += fifo.o.ready.eq(take)
        m.d.ctl += record_valid.eq(take)
        with m.If(take):
            m.d.ctl += record.eq(fifo.o.payload)
        start_held = Signal()
        with m.If(start):
            m.d.ctl += start_held.eq(1)
        with m.Elif(tracker.busy):
            m.d.ctl += start_held.eq(0)
        m.d.comb += [
            tracker.start.eq(start | start_held),
            tracker.record_valid.eq(record_valid), tracker.record.eq(record),
            tracker.stats_select.eq(bank.stats_select), bank.stats.eq(tracker.stats),
            tracker.hist_select.eq(hist_bucket), bank.hist_counts.eq(tracker.hist_count),
            record_fifo.record_valid.eq(record_valid & ~tracker.busy),
            record_fifo.record.eq(record),
            record_fifo.sample.eq(bank.record_sample), record_fifo.clear.eq(clear),
            record_fifo.resync.eq(start),
            bank.record_level.eq(record_fifo.level),
            bank.record_overflow.eq(record_fifo.overflow),
            record_fifo.records.ready.eq(bank.record_strobe | self.records.ready),
            self.records.valid.eq(record_fifo.records.valid),
            self.records.payload.eq(record_fifo.records.payload),
        ]
        if jitter is not None:
            m.d.comb += [jitter.start.eq(start),
                         jitter.record_valid.eq(record_valid & ~tracker.busy),
                         jitter.record.eq(record), jitter.stats_select.eq(bank.stats_select),
                         bank.jitter.eq(jitter.stats)]
        # The oldest record as the RECORD register shows it, registered: the FIFO's output
        # comes straight from a block RAM, too slow to feed the bank's multiplexers.
        record_head = Signal.like(bank.record)
        m.d.ctl += record_head.eq(Mux(record_fifo.records.valid,
                                      record_fifo.records.payload, 0))
        m.d.comb += bank.record.eq(record_head)
