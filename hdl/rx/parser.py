"""The receive parser: Ethernet II (IEEE 802.3 clause 3), IPv4 (RFC 791, header checksum
verified), UDP (RFC 768), ARP (RFC 826), ICMP echo (RFC 792).

It keeps the first 60 bytes of each frame as it arrives and decides when the MAC says the
frame was good. Every good frame lands in exactly one place: a measurement record (a UDP
datagram carrying the wirestamp signature), an ARP or ICMP action, or one of the drop counters
(other ethertype, IPv4 errors, other IPv4, foreign UDP). Bad frames never get this far.

Signature datagrams are recognised by their magic alone, whatever their addresses, so frames
looped back unchanged are measured as well as frames echoed by a device under test; one whose
stream number this image does not carry (`streams`) is foreign UDP, so it lands in no
stream's statistics.
"""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...regmap import ID, MAX_FRAME, MAX_STREAMS, PACKET_FIELDS, RX_COUNTER_BITS, SIGNATURE_BYTES
from ..fanout import copies
from ..mac.rx import RxFrame
from ..net.checksum import OnesComplementSum
from ..net.headers import (ARP_REPLY, ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4,
                           ICMP_ECHO_REQUEST, IP_PROTO_ICMP, IP_PROTO_UDP, ArpFrame,
                           IcmpFrameHead, UDPFrameHead, from_be)

__all__ = ["Parser", "Packet"]

Packet = data.StructLayout(dict(PACKET_FIELDS))     # a measured datagram
HEAD_BYTES = UDPFrameHead.size // 8
IP_START, IP_END = 14, 34
COUNTED = ["other", "ip_errors", "ip_other", "foreign_udp", "signed", "arp_rx", "icmp_rx"]
OUTCOMES = COUNTED + ["arp_request", "arp_answer", "icmp_echo"]


class Parser(wiring.Component):
    frame: In(RxFrame())    # from MacRx; its stamp holds until after the frame's decision
    # Configuration.
    unit_ip: In(32)
    arp_target: In(32)

    record_valid: Out(1)
    record: Out(Packet)
    arp_request: Out(1)         # an ARP request for the unit's IP: `head` holds it
    arp_answer: Out(1)          # ARP_TARGET answered: `answer_mac`
    answer_mac: Out(48)
    icmp_echo: Out(1)           # an echo request to the unit: the frame is in the buffer
    head: Out(HEAD_BYTES * 8)   # the first bytes of the last frame
    frame_length: Out(range(MAX_FRAME + 2))

    clear: In(1)
    other: Out(RX_COUNTER_BITS)
    ip_errors: Out(RX_COUNTER_BITS)
    ip_other: Out(RX_COUNTER_BITS)
    foreign_udp: Out(RX_COUNTER_BITS)
    signed: Out(RX_COUNTER_BITS)
    arp_rx: Out(RX_COUNTER_BITS)
    icmp_rx: Out(RX_COUNTER_BITS)

    def __init__(self, streams=MAX_STREAMS):
        self._streams = streams
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        head, frame = self.head, self.frame
        # Each byte of the head is stored a cycle after it comes, under a registered one-hot of
        # its place (a decode of `index` would sit in front of every byte's enable).
        # The byte in eight copies, each stored into an eighth of the head (one register reached
        # 480 flip-flops; with four, the routing to 120 still took 5 ns).
        place, placed_bytes = Signal(HEAD_BYTES), copies(8, 8, "placed_byte")
        m.d.sync += [place.eq(Mux(frame.byte_valid & (frame.index < HEAD_BYTES),
                                  1 << frame.index[:6], 0)),
                     [copy.eq(frame.byte) for copy in placed_bytes]]
        for index in range(HEAD_BYTES):
            with m.If(place[index]):
                m.d.sync += head[8 * index:8 * (index + 1)].eq(
                    placed_bytes[index * len(placed_bytes) // HEAD_BYTES])

        # IPv4 header checksum over bytes 14..33, one word per byte pair, added a cycle after
        # its second byte (the sum has until the decision, 26 bytes later at least).
        m.submodules.ip_sum = ip_sum = OnesComplementSum()
        high = Signal(8)
        in_header = (frame.index >= IP_START) & (frame.index < IP_END)
        m.d.sync += [ip_sum.add.eq(0), ip_sum.clear.eq(0)]
        with m.If(frame.byte_valid & in_header):
            with m.If(~frame.index[0]):
                m.d.sync += high.eq(frame.byte)
            with m.Else():
                m.d.sync += [ip_sum.add.eq(1), ip_sum.word.eq(Cat(frame.byte, high)),
                             ip_sum.clear.eq(frame.index == IP_START + 1)]

        udp = data.View(UDPFrameHead, head)
        arp = data.View(ArpFrame, head[:ArpFrame.size])
        icmp = data.View(IcmpFrameHead, head[:IcmpFrameHead.size])
        ethertype = from_be(udp.eth.ethertype)
        ip = udp.ip
        ip_length = from_be(ip.total_length)
        fragmented = from_be(ip.flags_fragment)[:14] != 0   # MF or an offset
        udp_length = from_be(udp.udp.length)

        # Every test the decision needs is registered on its own from `head`, in two steps: its
        # parts (a 32-bit compare in 16-bit halves), then their AND. The fields tested end at
        # byte 45, so both steps are done long before the decision, one cycle after `done`,
        # which is then a small tree over flip-flops. Its result lands in `outcome`; the
        # counters and pulses act on that a cycle later.
        def equal(a, b):
            b = Const(b, 32) if isinstance(b, int) else b
            return [a[:16] == b[:16], a[16:] == b[16:]]

        flag = {}
        for name, parts in [
            ("is_arp", [ethertype == ETHERTYPE_ARP]),
            ("is_ipv4", [ethertype == ETHERTYPE_IPV4]),
            ("arp_ipv4", [(from_be(arp.arp.htype) == 1) &
                          (from_be(arp.arp.ptype) == ETHERTYPE_IPV4),
                          (arp.arp.hlen == 6) & (arp.arp.plen == 4)]),
            ("arp_req", [from_be(arp.arp.op) == ARP_REQUEST]),
            ("arp_rep", [from_be(arp.arp.op) == ARP_REPLY]),
            ("arp_for_unit", equal(from_be(arp.arp.tpa), self.unit_ip)),
            ("arp_from_target", equal(from_be(arp.arp.spa), self.arp_target)),
            ("version4", [ip.version_ihl[4:] == 4]),
            ("ihl5", [ip.version_ihl[:4] == 5]),
            ("header_good", [ip_sum.checksum[:8] == 0, ip_sum.checksum[8:] == 0,
                             ip_length >= 20]),
            ("fragmented", [fragmented]),
            ("udp", [ip.protocol == IP_PROTO_UDP]),
            ("echo_request", [ip.protocol == IP_PROTO_ICMP,
                              icmp.icmp.type == ICMP_ECHO_REQUEST]),
            ("ip_for_unit", equal(from_be(ip.dst), self.unit_ip)),
            ("magic", equal(from_be(udp.sig.magic), ID)),
            ("udp_long", [udp_length >= 8 + SIGNATURE_BYTES]),
            ("stream_known", [udp.sig.stream.as_value() < self._streams]),
        ]:
            registered = Signal(len(parts), name=f"{name}_parts")
            m.d.sync += registered.eq(Cat(*parts))
            flag[name] = Signal(name=name)
            m.d.sync += flag[name].eq(registered.all())
        ip_frame_length = Signal.like(frame.length)
        m.d.sync += ip_frame_length.eq(ip_length + 18)
        truncated = Signal()        # the IP datagram claims more than the frame holds

        outcome = Signal(data.StructLayout({name: 1 for name in OUTCOMES}))
        m.d.sync += outcome.eq(0)

        def mark(name):
            m.d.sync += getattr(outcome, name).eq(1)

        # `decide` in copies: the first steers the outcome, the others load about 250 flip-flops
        # (whatever the outcome: they only count where the outcome says so).
        decide, *loads = copies(1, 4, "decide")
        m.d.sync += [copy.eq(frame.done & frame.good) for copy in (decide, *loads)]
        with m.If(frame.done):
            m.d.sync += [self.frame_length.eq(frame.length),
                         truncated.eq(ip_frame_length > frame.length)]
        for load, targets in zip(loads, [
                [self.answer_mac.eq(from_be(arp.arp.sha)), self.record.stream.eq(udp.sig.stream),
                 self.record.flags.eq(udp.sig.flags), self.record.length.eq(self.frame_length),
                 self.record.seq.eq(from_be(udp.sig.seq))],
                [self.record.tx_ns.eq(from_be(udp.sig.tx_ns))],
                [self.record.rx_ns.eq(frame.stamp)]]):
            with m.If(load):
                m.d.sync += targets
        with m.If(decide):
            with m.If(flag["is_arp"]):
                mark("arp_rx")
                with m.If(flag["arp_ipv4"] & flag["arp_req"] & flag["arp_for_unit"]):
                    mark("arp_request")
                with m.If(flag["arp_ipv4"] & flag["arp_rep"] & flag["arp_from_target"]):
                    mark("arp_answer")
            with m.Elif(flag["is_ipv4"]):
                with m.If(~flag["version4"]):
                    mark("ip_errors")
                with m.Elif(~flag["ihl5"]):
                    mark("ip_other")           # options
                with m.Elif(~flag["header_good"] | truncated):
                    mark("ip_errors")
                with m.Elif(flag["fragmented"]):
                    mark("ip_other")
                with m.Elif(flag["udp"]):
                    with m.If(flag["magic"] & flag["udp_long"] & flag["stream_known"]):
                        mark("signed")
                    with m.Else():
                        mark("foreign_udp")
                with m.Elif(flag["echo_request"] & flag["ip_for_unit"]):
                    mark("icmp_rx")
                    mark("icmp_echo")
                with m.Else():
                    mark("ip_other")
            with m.Else():
                mark("other")

        m.d.sync += [self.record_valid.eq(outcome.signed),
                     self.arp_request.eq(outcome.arp_request),
                     self.arp_answer.eq(outcome.arp_answer),
                     self.icmp_echo.eq(outcome.icmp_echo)]
        for name in COUNTED:
            with m.If(getattr(outcome, name)):
                m.d.sync += getattr(self, name).eq(getattr(self, name) + 1)
        with m.If(self.clear):
            m.d.sync += [c.eq(0) for c in (self.other, self.ip_errors, self.ip_other,
                                           self.foreign_udp, self.signed, self.arp_rx,
                                           self.icmp_rx)]
        return m
