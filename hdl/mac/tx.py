"""MAC transmit: IEEE 802.3 clause 4 framing on a clause 35 GMII.

Takes a frame without FCS as a byte stream and puts on the wire: 7 preamble bytes, the SFD, the
frame padded with zeros to 60 bytes, the FCS (CRC-32, clause 3.2.9), then at least 12 idle byte
times (the inter-frame gap). A waiting frame starts the cycle the gap has elapsed, so frames
follow each other with byte-exact pacing: size + 20 byte times each.

`sfd` is high in the cycle the SFD byte is on `txd`: that is the instant a TX stamp marks.
The source must not stall inside a frame; if it does, the frame is ended with `tx_er` and
counted in `underruns`.
"""
from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.crc.catalog import CRC32_ETHERNET
from amaranth.lib.wiring import In, Out

from ...regmap import FCS_BYTES, IFG_BYTES, MIN_FRAME, PREAMBLE, SFD
from .gmii import FrameByte, GmiiTx

__all__ = ["MacTx"]

# 7 bytes of PREAMBLE, the SFD, the frame, its FCS (IEEE 802.3 clause 35.2.3.2); the bytes
# are declared once, in `regmap`.


class MacTx(wiring.Component):
    frames: In(stream.Signature(FrameByte))
    gmii: Out(GmiiTx())
    sfd: Out(1)
    frames_sent: Out(64)
    bytes_sent: Out(64)      # FCS included
    underruns: Out(32)
    clear: In(1)             # zero the counters

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = CRC32_ETHERNET(8).create()
        txd, tx_en, tx_er = self.gmii.txd, self.gmii.tx_en, self.gmii.tx_er
        count = Signal(range(16))
        length = Signal(range(MIN_FRAME + 1))   # bytes of the frame so far, saturating at 64
        last_unpadded = MIN_FRAME - FCS_BYTES - 1  # `length` before the 60th byte is sent

        def send_byte(value):
            m.d.sync += [txd.eq(value), self.bytes_sent.eq(self.bytes_sent + 1)]
            m.d.comb += [crc.data.eq(value), crc.valid.eq(1)]
            with m.If(length != MIN_FRAME):
                m.d.sync += length.eq(length + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.frames.valid):
                    m.d.sync += [txd.eq(PREAMBLE), tx_en.eq(1), count.eq(0)]
                    m.next = "PREAMBLE"
            with m.State("PREAMBLE"):
                with m.If(count == 6):
                    m.d.sync += [txd.eq(SFD), self.sfd.eq(1), length.eq(0), count.eq(0)]
                    m.d.comb += crc.start.eq(1)
                    m.next = "DATA"
                with m.Else():
                    m.d.sync += [txd.eq(PREAMBLE), count.eq(count + 1)]
            with m.State("DATA"):
                m.d.sync += self.sfd.eq(0)
                m.d.comb += self.frames.ready.eq(1)
                with m.If(self.frames.valid):
                    send_byte(self.frames.p.data)
                    with m.If(self.frames.p.last):
                        with m.If(length >= last_unpadded):
                            m.next = "FCS"
                        with m.Else():
                            m.next = "PAD"
                with m.Else():
                    m.d.sync += [tx_er.eq(1), self.underruns.eq(self.underruns + 1)]
                    m.next = "ABORT"
            with m.State("PAD"):
                send_byte(0)
                with m.If(length == last_unpadded):
                    m.next = "FCS"
            with m.State("FCS"):
                m.d.sync += [txd.eq(crc.crc.word_select(count[:2], 8)), count.eq(count + 1),
                             self.bytes_sent.eq(self.bytes_sent + 1)]
                with m.If(count == FCS_BYTES - 1):
                    m.d.sync += [count.eq(0), self.frames_sent.eq(self.frames_sent + 1)]
                    m.next = "GAP"
            with m.State("ABORT"):
                # Drain the rest of the frame from the source; the wire shows it as an error.
                m.d.comb += self.frames.ready.eq(1)
                with m.If(self.frames.valid & self.frames.p.last):
                    m.d.sync += count.eq(0)
                    m.next = "GAP"
            with m.State("GAP"):
                # The last FCS byte is on txd in the first cycle here; then 11 idle cycles here
                # and one in IDLE make the 12-byte gap before the next preamble.
                m.d.sync += [tx_en.eq(0), tx_er.eq(0), txd.eq(0), count.eq(count + 1)]
                with m.If(count == IFG_BYTES - 1):
                    m.next = "IDLE"

        with m.If(self.clear):
            m.d.sync += [self.frames_sent.eq(0), self.bytes_sent.eq(0), self.underruns.eq(0)]
        return m
