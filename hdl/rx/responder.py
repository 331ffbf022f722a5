"""What lets the unit live on a real LAN: ARP (RFC 826) replies for its own address, ARP
requests to resolve a device's MAC, and ICMP echo replies (RFC 792), all sent by `Responder`
(the MAC is shared with the generator by `mac.mux.TxMux`).

The echo reply is the request with addresses swapped (the IPv4 checksum does not change) and
the ICMP type set to 0, its checksum updated incrementally (RFC 1624, eqn. 3). The request is
kept in a 2 KiB frame buffer; while its reply waits, no other frame is buffered, and an echo
request arriving meanwhile is counted in `dropped`, as is an ARP request arriving while the
previous reply still waits.

The invariant the echo reply rests on: its sink may pause only within a reply's first 41
bytes. The buffer is read two bytes ahead of the byte on offer, through two registers that
move every cycle, so a pause from byte 41 on would repeat payload bytes. The MAC pauses a
reply only for its preamble, before the skid buffers' first 4 bytes are taken, then takes a
byte every cycle (`tests/test_blocks.py` checks it at the edge).
"""
from amaranth import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...regmap import MAX_FRAME, RX_COUNTER_BITS
from ..fanout import copies, load_in_shares
from ..mac.gmii import FrameByte
from ..mac.rx import RxFrame
from ..net.headers import (ARP_REPLY, ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4,
                           ICMP_ECHO_REPLY, ArpFrame, IcmpFrameHead, UDPFrameHead, from_be,
                           to_be)

__all__ = ["Responder"]

BUFFER_BYTES = 2048
ICMP_ECHO_WORD = 0x0800          # type 8, code 0: the word the reply changes to 0x0000


class Responder(wiring.Component):
    # The received frame, byte by byte (from MacRx), and the parser's verdicts.
    frame: In(RxFrame())
    head: In(UDPFrameHead.size)
    frame_length: In(range(MAX_FRAME + 2))
    arp_request: In(1)
    icmp_echo: In(1)
    resolve: In(1)                   # send an ARP request for `arp_target`

    unit_mac: In(48)
    unit_ip: In(32)
    arp_target: In(32)

    frames: Out(stream.Signature(FrameByte))
    clear: In(1)
    arp_tx: Out(RX_COUNTER_BITS)
    icmp_tx: Out(RX_COUNTER_BITS)
    dropped: Out(RX_COUNTER_BITS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = Memory(shape=8, depth=BUFFER_BYTES, init=[])
        write, read = buffer.write_port(), buffer.read_port()

        arp_pending, query_pending, echo_pending = Signal(), Signal(), Signal()
        buffering = Signal()         # this frame is going into the buffer
        frame = self.frame
        with m.If(frame.start):
            m.d.sync += buffering.eq(~echo_pending)
        m.d.comb += [write.addr.eq(frame.index), write.data.eq(frame.byte),
                     write.en.eq(frame.byte_valid & buffering & (frame.index < BUFFER_BYTES))]

        arp_in = data.View(ArpFrame, self.head[:ArpFrame.size])
        icmp_in = data.View(IcmpFrameHead, self.head[:IcmpFrameHead.size])

        # What each reply needs, captured when it is asked for.
        peer_mac, peer_ip = Signal(48), Signal(32)
        echo = Signal(IcmpFrameHead)
        echo_length = Signal(range(MAX_FRAME + 2))

        def count(counter):
            m.d.sync += counter.eq(counter + 1)

        with m.If(self.arp_request):
            with m.If(arp_pending):
                count(self.dropped)
            with m.Else():
                m.d.sync += [arp_pending.eq(1), peer_mac.eq(from_be(arp_in.arp.sha)),
                             peer_ip.eq(from_be(arp_in.arp.spa))]
        with m.If(self.resolve):
            m.d.sync += query_pending.eq(1)
        # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), with m = 0x0800 and m' = 0. Summed and
        # folded in registered steps all the time: the head holds still from its 38th byte,
        # long before `icmp_echo`.
        step, folded = Signal(17), Signal(16)
        m.d.sync += [step.eq(~from_be(icmp_in.icmp.checksum) + (~Const(ICMP_ECHO_WORD, 16))),
                     folded.eq(step[:16] + step[16])]
        with m.If(self.icmp_echo):
            with m.If(echo_pending | ~buffering):
                count(self.dropped)
            with m.Else():
                m.d.sync += [
                    echo_pending.eq(1), echo_length.eq(self.frame_length),
                    echo.eq(icmp_in),
                    echo.eth.dst.eq(icmp_in.eth.src),
                    echo.eth.src.eq(to_be(self.unit_mac, 6)),
                    echo.ip.src.eq(icmp_in.ip.dst),
                    echo.ip.dst.eq(icmp_in.ip.src),
                    echo.icmp.type.eq(ICMP_ECHO_REPLY),
                    echo.icmp.checksum.eq(to_be(~folded, 2)),
                ]

        arp_out = Signal(ArpFrame)
        is_reply = Signal()
        m.d.comb += [
            arp_out.eth.dst.eq(Mux(is_reply, to_be(peer_mac, 6), to_be(Const(-1, 48), 6))),
            arp_out.eth.src.eq(to_be(self.unit_mac, 6)),
            arp_out.eth.ethertype.eq(to_be(Const(ETHERTYPE_ARP, 16), 2)),
            arp_out.arp.htype.eq(to_be(Const(1, 16), 2)),
            arp_out.arp.ptype.eq(to_be(Const(ETHERTYPE_IPV4, 16), 2)),
            arp_out.arp.hlen.eq(6), arp_out.arp.plen.eq(4),
            arp_out.arp.op.eq(to_be(Mux(is_reply, ARP_REPLY, ARP_REQUEST), 2)),
            arp_out.arp.sha.eq(to_be(self.unit_mac, 6)),
            arp_out.arp.spa.eq(to_be(self.unit_ip, 4)),
            arp_out.arp.tha.eq(Mux(is_reply, to_be(peer_mac, 6), 0)),
            arp_out.arp.tpa.eq(to_be(Mux(is_reply, peer_ip, self.arp_target), 4)),
        ]
        arp_bytes = ArpFrame.size // 8
        echo_bytes = IcmpFrameHead.size // 8

        # The bytes go out of `out`, a shift register loaded with the frame's head (the ARP
        # frame, or the echo reply's headers), then, for an echo, out of `payload_byte`, the
        # buffer's output registered (nothing slower may follow a block RAM). The buffer is
        # read at `fetch`, two bytes ahead of the byte on offer: right once bytes go every
        # cycle, as they do from well before the payload (the skid buffers may take the first
        # bytes early, then the MAC takes one per cycle through the frame).
        out = Signal(max(arp_bytes, echo_bytes) * 8)
        fetch = Signal(range(MAX_FRAME + 2), init=2)
        payload_byte = Signal(8, reset_less=True)
        in_payload = Signal()
        # `out` loads and shifts in eighths, each under its own copies of the flags that steer
        # it: one flip-flop cannot reach 336 in a cycle.
        sending = copies(1, 8, "sending")       # in ARP or ECHO: `valid` from a flip-flop
        load_arp = copies(1, 8, "load_arp")     # in ARP_FIRST
        load_echo = copies(1, 8, "load_echo")   # in ECHO_FIRST
        m.d.comb += self.frames.valid.eq(sending[0])
        advance = sending[0] & self.frames.ready
        load_in_shares(m, out, [(load_arp, arp_out), (load_echo, echo),
                                ([copy & self.frames.ready for copy in sending], out[8:])])
        m.d.sync += payload_byte.eq(read.data)
        m.d.comb += [read.addr.eq(fetch),
                     self.frames.p.data.eq(Mux(in_payload, payload_byte, out[:8]))]
        # The frame's end from a down-counter: `last` is a register.
        remaining = Signal.like(fetch)          # bytes after the one on offer
        last = Signal()
        m.d.comb += self.frames.p.last.eq(last)
        with m.If(advance):
            m.d.sync += [fetch.eq(fetch + 1),
                         remaining.eq(remaining - 1), last.eq(remaining == 1)]
            with m.If(fetch == echo_bytes + 1):     # the last head byte goes now
                m.d.sync += in_payload.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += [fetch.eq(2), in_payload.eq(0), last.eq(0)]
                with m.If(arp_pending):
                    m.d.sync += [is_reply.eq(1), [copy.eq(1) for copy in load_arp]]
                    m.next = "ARP_FIRST"
                with m.Elif(query_pending):
                    m.d.sync += [is_reply.eq(0), [copy.eq(1) for copy in load_arp]]
                    m.next = "ARP_FIRST"
                with m.Elif(echo_pending):
                    m.d.sync += [copy.eq(1) for copy in load_echo]
                    m.next = "ECHO_FIRST"
            with m.State("ARP_FIRST"):         # `out` loads the ARP frame
                m.d.sync += [remaining.eq(arp_bytes - 1), [copy.eq(0) for copy in load_arp],
                             [copy.eq(1) for copy in sending]]
                m.next = "ARP"
            with m.State("ECHO_FIRST"):        # `out` loads the echo reply's headers
                m.d.sync += [remaining.eq(echo_length - 5),     # less the FCS and this byte
                             [copy.eq(0) for copy in load_echo], [copy.eq(1) for copy in sending]]
                m.next = "ECHO"
            with m.State("ARP"):
                with m.If(advance & last):
                    m.d.sync += [copy.eq(0) for copy in sending]
                    count(self.arp_tx)
                    with m.If(is_reply):
                        m.d.sync += arp_pending.eq(0)
                    with m.Else():
                        m.d.sync += query_pending.eq(0)
                    m.next = "IDLE"
            with m.State("ECHO"):
                with m.If(advance & last):
                    m.d.sync += [copy.eq(0) for copy in sending]
                    count(self.icmp_tx)
                    m.d.sync += echo_pending.eq(0)
                    m.next = "IDLE"

        with m.If(self.clear):
            m.d.sync += [self.arp_tx.eq(0), self.icmp_tx.eq(0), self.dropped.eq(0)]
        return m
