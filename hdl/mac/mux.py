"""The transmit multiplexer: the generator's frames and the responder's replies (ARP, RFC 826;
ICMP echo, RFC 792) share one MAC (IEEE 802.3 clause 4: one frame at a time).

`TxMux` chooses at frame boundaries only. When a reply and a generated frame both wait, the
reply goes first, so a stream at line rate cannot starve ARP. The generated frame then leaves
one reply later (at most 1518 + 20 byte times for a maximal echo). Its TX stamp is taken at
its real SFD (`generated_sfd`), so its latency is still exact, and the scheduler's rate
accumulators never stop, so only that frame moves: the ones after it leave at their own times.
"""
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .gmii import FrameByte

__all__ = ["TxMux"]


class TxMux(wiring.Component):
    """Shares the MAC between generated frames and replies, a whole frame at a time."""
    generated: In(stream.Signature(FrameByte))
    replies: In(stream.Signature(FrameByte))
    out: Out(stream.Signature(FrameByte))
    sfd: In(1)                      # from the MAC
    generated_sfd: Out(1)           # the MAC's SFD, when it belongs to a generated frame

    def elaborate(self, platform):
        m = Module()
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.replies.valid):
                    m.next = "REPLY"
                with m.Elif(self.generated.valid):
                    m.next = "GENERATED"
            for name, source in (("REPLY", self.replies), ("GENERATED", self.generated)):
                with m.State(name):
                    m.d.comb += [self.out.valid.eq(source.valid),
                                 self.out.payload.eq(source.payload),
                                 source.ready.eq(self.out.ready)]
                    if name == "GENERATED":
                        m.d.comb += self.generated_sfd.eq(self.sfd)
                    with m.If(source.valid & self.out.ready & source.payload.last):
                        m.next = "IDLE"
        return m
