"""The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
words. Used for IPv4 headers (RFC 791), UDP (RFC 768) and ICMP (RFC 792)."""
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["OnesComplementSum"]


class OnesComplementSum(wiring.Component):
    """Adds one 16-bit word per cycle while `add`; `clear` restarts (and adds `word` if `add`).

    `checksum` is the ones' complement of the folded sum, valid `LATENCY` cycles after the
    last word. The sum is kept unfolded in 32 bits (room for 65537 words) and folded twice,
    one registered step each.
    """
    LATENCY = 3
    clear: In(1)
    add: In(1)
    word: In(16)
    checksum: Out(16)

    def elaborate(self, platform):
        m = Module()
        total = Signal(32)
        with m.If(self.clear):
            m.d.sync += total.eq(Mux(self.add, self.word, 0))
        with m.Elif(self.add):
            m.d.sync += total.eq(total + self.word)
        once = Signal(17)
        m.d.sync += [
            once.eq(total[:16] + total[16:]),
            self.checksum.eq(~(once[:16] + once[16])[:16]),
        ]
        return m
