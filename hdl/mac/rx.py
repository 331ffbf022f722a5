"""MAC receive: IEEE 802.3 clause 35 GMII in, clause 4 framing checks, and the RX stamp.

`GmiiRxCrossing` moves the received bytes from the PHY's receive clock (`rx` domain) into the
core's clock through a small asynchronous FIFO: every byte while `rx_dv` is high, then one end
marker. The receive clock may run a little faster or slower than the core's (±100 ppm between
link partners); the 12-byte gap between frames absorbs the difference, so the FIFO never
fills while the core reads a byte every cycle. Should it fill anyway, the frame is marked as
an error and counted, never silently cut.

`MacRx` (core clock) finds the SFD, stamps it, strips preamble and SFD, checks the FCS with
CRC-32, and sorts every frame into exactly one counter: good, FCS error, `rx_er` (or lost in the
crossing), runt (< 64 bytes), giant (> 1518 bytes), or preamble error. The bytes of a frame are
passed on while it arrives (`RxFrame`: `byte`, `index`); `done` says at the end whether it
was good.

The RX stamp is the timebase when the SFD reaches `MacRx`, minus the constant delay of the
crossing (RX_CROSSING_CYCLES), so it marks the cycle the SFD was on `rxd`.
"""
from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.crc.catalog import CRC32_ETHERNET
from amaranth.lib.wiring import In, Out

from ..buffer import CrossingFifo
from ..fanout import copies, load_in_shares
from ...regmap import MAX_FRAME, MIN_FRAME, NS_PER_CYCLE, PREAMBLE, RX_COUNTER_BITS, SFD
from .gmii import GmiiRx

__all__ = ["GmiiRxCrossing", "MacRx", "RxByte", "RxFrame", "RX_CROSSING_CYCLES"]

# A frame on the wire: 7 bytes of PREAMBLE, the SFD, then the frame (IEEE 802.3 clause
# 35.2.3.2); both bytes are declared once, in `regmap`.
RxByte = data.StructLayout({"data": 8, "er": 1, "end": 1})
# Cycles from a byte on rxd to the same byte out of the crossing, when the receive clock is the
# core's clock (a loopback): measured by tests/test_rx.py::test_loopback_latency.
RX_CROSSING_CYCLES = 6


class RxFrame(wiring.Signature):
    """A received frame as `MacRx` hands it on, byte by byte while it arrives, to the parser
    and the responder (as the MAC drives it)."""
    def __init__(self):
        super().__init__({
            "start": Out(1),        # a frame begins
            "stamp": Out(64),       # its SFD time, a cycle after `start`, until the next's
            "byte_valid": Out(1),   # frame bytes after the SFD, FCS included
            "byte": Out(8),
            "index": Out(range(MAX_FRAME + 2)),
            "done": Out(1),         # the frame ended; `good` if it passed every check
            "good": Out(1),
            "length": Out(range(MAX_FRAME + 2)),    # with `done`: bytes, FCS included
        })                                          # (saturating)


class GmiiRxCrossing(wiring.Component):
    gmii: In(GmiiRx())          # in the `rx` domain
    valid: Out(1)               # core domain: `byte` holds a received byte or an end marker
    byte: Out(RxByte)
    is_sfd: Out(1)              # byte.data == SFD, decoded here (a register, not a compare)
    is_preamble: Out(1)         # byte.data == PREAMBLE

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = CrossingFifo(RxByte, depth=16, w_domain="rx")
        # Everything the FIFO's write side sees comes from flip-flops: the GMII inputs, then
        # the entry and its write enable (the FIFO's own pointer logic fills the cycle).
        dv, rxd, er = Signal(), Signal(8), Signal()
        m.d.rx += [dv.eq(self.gmii.rx_dv), rxd.eq(self.gmii.rxd), er.eq(self.gmii.rx_er)]
        in_frame = Signal()
        lost = Signal()       # a byte of this frame found the FIFO full
        write = Signal()
        entry = Signal(RxByte)
        dropped = write & ~fifo.i.ready           # the entry on offer now does not fit
        m.d.rx += [in_frame.eq(dv), write.eq(dv | in_frame), entry.eq(0)]
        with m.If(dropped):
            m.d.rx += lost.eq(1)
        with m.If(dv):
            m.d.rx += [entry.data.eq(rxd), entry.er.eq(er)]
        with m.Elif(in_frame):
            m.d.rx += [entry.end.eq(1), entry.er.eq(lost | dropped), lost.eq(0)]
        m.d.comb += [fifo.i.payload.eq(entry), fifo.i.valid.eq(write)]

        out = fifo.o
        m.d.comb += out.ready.eq(1)
        m.d.sync += [self.valid.eq(out.valid), self.byte.eq(out.payload),
                     self.is_sfd.eq(out.payload.data == SFD),
                     self.is_preamble.eq(out.payload.data == PREAMBLE)]
        return m


class MacRx(wiring.Component):
    valid: In(1)
    wire: In(RxByte)
    is_sfd: In(1)               # wire.data == SFD
    is_preamble: In(1)          # wire.data == PREAMBLE
    now: In(64)
    frame: Out(RxFrame())

    clear: In(1)
    frames: Out(RX_COUNTER_BITS)
    bytes: Out(RX_COUNTER_BITS)
    fcs_errors: Out(RX_COUNTER_BITS)
    rx_errors: Out(RX_COUNTER_BITS)
    runts: Out(RX_COUNTER_BITS)
    giants: Out(RX_COUNTER_BITS)
    preamble_errors: Out(RX_COUNTER_BITS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = CRC32_ETHERNET(8).create()
        errored = Signal()
        length = Signal(range(MAX_FRAME + 2))   # bytes so far, saturating past the maximum
        short, long = Signal(), Signal()        # length < MIN_FRAME, length > MAX_FRAME
        # The verdict is registered with `done`; the counters count it a cycle later.
        ended = Signal()
        verdict = Signal(data.StructLayout({"error": 1, "runt": 1, "giant": 1, "fcs": 1}))
        byte, valid, out = self.wire, self.valid, self.frame

        m.d.sync += [out.start.eq(0), out.byte_valid.eq(0), out.done.eq(0), ended.eq(0)]
        # The stamp is taken a cycle late, from a register that holds `now` a cycle late, under
        # registered enables in copies (a decode of the SFD in front of 64 enables was late).
        now_then = Signal(64)
        take_stamp = copies(1, 4, "take_stamp")
        m.d.sync += [now_then.eq(self.now - RX_CROSSING_CYCLES * NS_PER_CYCLE),
                     [copy.eq(0) for copy in take_stamp]]
        load_in_shares(m, out.stamp, [(take_stamp, now_then)])
        m.d.comb += crc.data.eq(byte.data)

        def count(counter):
            m.d.sync += counter.eq(counter + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(valid & ~byte.end):
                    with m.If(self.is_sfd):
                        m.d.sync += [out.start.eq(1), length.eq(0), errored.eq(byte.er),
                                     short.eq(1), long.eq(0),
                                     [copy.eq(1) for copy in take_stamp]]
                        m.d.comb += crc.start.eq(1)
                        m.next = "DATA"
                    with m.Elif(~self.is_preamble):
                        count(self.preamble_errors)
                        m.next = "DISCARD"
            with m.State("DISCARD"):
                with m.If(valid & byte.end):
                    m.next = "IDLE"
            with m.State("DATA"):
                with m.If(valid & byte.end):
                    error = errored | byte.er
                    m.d.sync += [out.done.eq(1), out.length.eq(length), ended.eq(1),
                                 verdict.error.eq(error), verdict.runt.eq(short),
                                 verdict.giant.eq(long), verdict.fcs.eq(~crc.match_detected),
                                 out.good.eq(~error & ~short & ~long & crc.match_detected)]
                    m.next = "IDLE"
                with m.Elif(valid):
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += [out.byte_valid.eq(1), out.byte.eq(byte.data),
                                 out.index.eq(length)]
                    with m.If(~long):           # length <= MAX_FRAME, from a register
                        m.d.sync += [length.eq(length + 1),
                                     short.eq(length < MIN_FRAME - 1),     # length + 1 < MIN
                                     long.eq(length >= MAX_FRAME)]
                    with m.If(byte.er):
                        m.d.sync += errored.eq(1)
        with m.If(out.start):
            m.d.sync += out.good.eq(0)
        with m.If(ended):           # each frame counted in exactly one place
            with m.If(verdict.error):
                count(self.rx_errors)
            with m.Elif(verdict.runt):
                count(self.runts)
            with m.Elif(verdict.giant):
                count(self.giants)
            with m.Elif(verdict.fcs):
                count(self.fcs_errors)
            with m.Else():
                m.d.sync += self.bytes.eq(self.bytes + out.length)
                count(self.frames)

        with m.If(self.clear):
            m.d.sync += [counter.eq(0) for counter in (
                self.frames, self.bytes, self.fcs_errors, self.rx_errors, self.runts,
                self.giants, self.preamble_errors)]
        return m
