"""The frame generator: turns each grant of the scheduler into an Ethernet II / IPv4 (RFC 791) /
UDP (RFC 768) frame from the stream's header template, with the wirestamp signature first in
the payload and zeros after it. The MAC adds the FCS.

The IPv4 header checksum and the UDP checksum are computed here, word by word, while the MAC
sends the preamble and the first header bytes: the IPv4 checksum (frame byte 24) is ready 14
cycles after the frame is first offered, and the UDP checksum (byte 40) after the 4 words of
the TX timestamp, which is latched when the MAC puts this frame's SFD on the wire. So the
stamp in the payload is the SFD time itself, and the checksum covers it.

The invariant this rests on: the sink pauses at least one cycle within a frame's first 15
bytes (at full speed from the first byte, byte 24 would be fetched a cycle before the IPv4
checksum is final), and `sfd` comes before byte 40 is fetched. In the core the MAC's preamble
pauses it 8 cycles after the skid buffers' 4 bytes, with `sfd` at its end
(`tests/test_blocks.py` checks both, and the edge).
"""
from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...regmap import FCS_BYTES, ID, MAX_STREAMS, SIZES, SIZE_BITS
from ..fanout import copies, load_in_shares, pick
from ..mac.gmii import FrameByte
from ..net.checksum import OnesComplementSum
from ..net.headers import (ETHERTYPE_IPV4, IP_PROTO_UDP, PayloadSignature, UDPFrameHead,
                           UDPPseudoHeader, be_words, to_be)
from .profile import StreamRow
from .scheduler import Grant

__all__ = ["Generator", "FLAG_LAST"]

FLAG_LAST = 1 << 0          # signature flag: the last packet of a count-limited stream
IP_DONT_FRAGMENT = 0x4000
IP_HEADER_BYTES = 20
UDP_HEADER_BYTES = 8
ETH_HEADER_BYTES = 14


class Generator(wiring.Component):
    start: In(1)             # restart every stream's size list
    grants: In(stream.Signature(Grant))
    stream_addr: Out(range(MAX_STREAMS))
    stream_row: In(StreamRow)           # the row at the previous cycle's stream_addr
    frames: Out(stream.Signature(FrameByte))
    sfd: In(1)
    now: In(64)

    def __init__(self, streams=MAX_STREAMS):
        assert streams % 4 == 0, "a stream's size-list place is picked from fours"
        self._streams = streams
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        streams = self._streams
        grant = Signal(Grant)
        dst_mac, src_mac = Signal(48), Signal(48)
        src_ip, dst_ip = Signal(32), Signal(32)
        src_port, dst_port = Signal(16), Signal(16)
        ttl, dscp = Signal(8), Signal(6)
        size = Signal(SIZE_BITS)
        size_count = Signal(4)                  # the stream's size list, and where it stands
        index = Signal(range(SIZES))
        tx_ns = Signal(64)
        stamped = Signal()
        in_group = Signal(3)                # the byte on offer within `word_now`

        ip_length = Signal(16)     # both set with `size`
        udp_length = Signal(16)
        flags = Cat(grant.last, Const(0, 7))

        # The checksums, one word per cycle from `step` 0; the UDP sum waits for the stamp.
        # Their words are the header's own (`head`, below), less the checksums they make; the
        # stamp's are the UDP sum's last.
        m.submodules.ip_sum = ip_sum = OnesComplementSum()
        m.submodules.udp_sum = udp_sum = OnesComplementSum()
        head, pseudo = Signal(UDPFrameHead), Signal(UDPPseudoHeader)
        m.d.comb += [pseudo.src.eq(head.ip.src), pseudo.dst.eq(head.ip.dst),
                     pseudo.protocol.eq(IP_PROTO_UDP), pseudo.length.eq(head.udp.length)]
        ip_words = be_words(head.ip, skip=["checksum"])
        udp_words = [*be_words(pseudo), *be_words(head.udp, skip=["checksum"]),
                     *be_words(head.sig)]
        stamp_step = len(udp_words) - PayloadSignature["tx_ns"].width // 16
        assert PayloadSignature["tx_ns"].offset + PayloadSignature["tx_ns"].width == \
            PayloadSignature.size, "the stamp ends the signature: its words are summed last"
        # A step's words are picked by a one-hot of `step` and OR-ed in two registered stages
        # (a wide multiplexer behind a binary `step` does not fit in a cycle); the flags follow.
        step = Signal(range(len(udp_words) + 1), init=len(udp_words))
        picked = Signal(len(udp_words))
        flags_picked = Signal(3)            # first word, an IPv4 word, a UDP word
        m.d.sync += [picked.eq(0), flags_picked.eq(0)]
        with m.If((step < len(udp_words)) & ((step < stamp_step) | stamped)):
            m.d.sync += [step.eq(step + 1), picked.eq(1 << step),
                         flags_picked.eq(Cat(step == 0, step < len(ip_words), 1))]
        ip_word = pick(m, ip_words, picked[:len(ip_words)], "ip_word")
        udp_word = pick(m, udp_words, picked, "udp_word")
        flags_paired, flags_added = Signal(3), Signal(3)
        m.d.sync += [flags_paired.eq(flags_picked), flags_added.eq(flags_paired)]
        first, ip_add, udp_add = flags_added
        m.d.comb += [
            ip_sum.clear.eq(first & ip_add), ip_sum.add.eq(ip_add), ip_sum.word.eq(ip_word),
            udp_sum.clear.eq(first & udp_add), udp_sum.add.eq(udp_add),
            udp_sum.word.eq(udp_word),
        ]
        udp_checksum = Mux(udp_sum.checksum == 0, 0xFFFF, udp_sum.checksum)  # RFC 768

        m.d.comb += [
            head.eth.dst.eq(to_be(dst_mac, 6)),
            head.eth.src.eq(to_be(src_mac, 6)),
            head.eth.ethertype.eq(to_be(Const(ETHERTYPE_IPV4, 16), 2)),
            head.ip.version_ihl.eq(0x45),
            head.ip.tos.eq(dscp << 2),
            head.ip.total_length.eq(to_be(ip_length, 2)),
            head.ip.ident.eq(to_be(grant.seq[:16], 2)),
            head.ip.flags_fragment.eq(to_be(Const(IP_DONT_FRAGMENT, 16), 2)),
            head.ip.ttl.eq(ttl),
            head.ip.protocol.eq(IP_PROTO_UDP),
            head.ip.checksum.eq(to_be(ip_sum.checksum, 2)),
            head.ip.src.eq(to_be(src_ip, 4)),
            head.ip.dst.eq(to_be(dst_ip, 4)),
            head.udp.src_port.eq(to_be(src_port, 2)),
            head.udp.dst_port.eq(to_be(dst_port, 2)),
            head.udp.length.eq(to_be(udp_length, 2)),
            head.udp.checksum.eq(to_be(udp_checksum, 2)),
            head.sig.magic.eq(to_be(Const(ID, 32), 4)),
            head.sig.stream.eq(grant.stream),
            head.sig.flags.eq(flags),
            head.sig.seq.eq(to_be(grant.seq, 4)),
            head.sig.tx_ns.eq(to_be(tx_ns, 8)),
        ]
        # The bytes go out of `word_now`, a 64-bit shift register; `word_next` holds the next
        # 8 bytes of the head (zeros past it), fetched a group ahead. Fields filled in late
        # (checksums, the stamp) are in place well before their group is fetched.
        groups = -(-len(head.as_value()) // 64)
        head_words = [head.as_value()[64 * i:64 * (i + 1)] for i in range(groups)]
        word_now, word_next = Signal(64), Signal(64)
        group = Signal(range(groups + 1))       # the group `word_next` loads next
        remaining = Signal(SIZE_BITS)           # bytes after the one on offer
        last = Signal()
        sending = copies(1, 4, "sending")       # in SEND
        group_end = copies(1, 4, "group_end")   # the byte on offer is its group's last

        # The group after `word_next`, fetched in three registered steps (a one-hot of `group`,
        # pairs of words, the word): `group` moves once in eight bytes, so the word is ready
        # long before it is needed.
        selected = Signal(groups)           # no bit past the head
        m.d.sync += selected.eq(Cat(group == word for word in range(groups)))
        fetched = pick(m, head_words, selected, "fetched")

        size_index = Array(Signal(range(SIZES), name=f"size_index{i}") for i in range(streams))
        fours = [Signal(range(SIZES), name=f"size_index_four{q}") for q in range(streams // 4)]
        # The stream's next place is written back from registers: the place, and a one-hot of
        # the stream, high for one cycle.
        next_place, place_onehot, place_write = Signal(range(SIZES)), Signal(streams), \
            Signal(streams)
        m.d.sync += place_write.eq(0)
        for i in range(streams):
            with m.If(self.start):
                m.d.sync += size_index[i].eq(0)
            with m.Elif(place_write[i]):
                m.d.sync += size_index[i].eq(next_place)

        # The stream table's address comes from a register of its own: it reaches every LUT RAM
        # of the row (a wide table), and a copy keeps it apart from `grant`.
        table_address, = copies(range(MAX_STREAMS), 1, "table_address")
        m.d.comb += self.stream_addr.eq(table_address)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.grants.ready.eq(1)
                with m.If(self.grants.valid):
                    m.d.sync += [grant.eq(self.grants.p), table_address.eq(self.grants.p.stream)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                # The stream's place in its size list, picked from each four streams' now.
                m.d.sync += [four.eq(size_index[4 * q + grant.stream[:2]])
                             for q, four in enumerate(fours)]
                m.d.sync += place_onehot.eq(1 << grant.stream)
                m.next = "LOAD"
            with m.State("LOAD"):
                row = self.stream_row
                m.d.sync += [
                    dst_mac.eq(row.dst_mac), src_mac.eq(row.src_mac),
                    src_ip.eq(row.src_ip), dst_ip.eq(row.dst_ip),
                    src_port.eq(row.src_port), dst_port.eq(row.dst_port),
                    ttl.eq(row.ttl), dscp.eq(row.dscp),
                    size_count.eq(row.size_count),
                    index.eq(Array(fours)[grant.stream[2:(streams - 1).bit_length()]]),
                    stamped.eq(0), in_group.eq(0),
                ]
                m.next = "SIZE"
            with m.State("SIZE"):
                # The size straight from the row (its flip-flops hold it: the address has
                # not moved since LOAD).
                m.d.sync += [
                    size.eq(self.stream_row.sizes.word_select(index, SIZE_BITS)),
                    next_place.eq(Mux(index + 1 >= size_count, 0, index + 1)),
                    place_write.eq(place_onehot),
                ]
                m.next = "LENGTHS"
            with m.State("LENGTHS"):
                m.d.sync += [
                    word_now.eq(head_words[0]), word_next.eq(head_words[1]), group.eq(2),
                    remaining.eq(size - (FCS_BYTES + 1)), last.eq(0),
                    ip_length.eq(size - (FCS_BYTES + ETH_HEADER_BYTES)),
                    udp_length.eq(size - (FCS_BYTES + ETH_HEADER_BYTES + IP_HEADER_BYTES)),
                    step.eq(0), [copy.eq(1) for copy in sending],
                    [copy.eq(0) for copy in group_end],
                ]
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [
                    self.frames.valid.eq(1),
                    self.frames.p.data.eq(word_now[:8]),
                    self.frames.p.last.eq(last),
                ]
                with m.If(self.sfd):
                    m.d.sync += [tx_ns.eq(self.now), stamped.eq(1)]
                with m.If(self.frames.ready):
                    m.d.sync += [in_group.eq(in_group + 1), remaining.eq(remaining - 1),
                                 last.eq(remaining == 1),
                                 [copy.eq(in_group == 6) for copy in group_end]]
                    with m.If((in_group == 7) & (group != groups)):
                        m.d.sync += group.eq(group + 1)
                    with m.If(last):
                        m.d.sync += [copy.eq(0) for copy in sending]
                        m.next = "IDLE"
        # The two words shift and load in quarters, each under its own copies of the enables:
        # together they are 128 flip-flops, too many for one register to reach in a cycle.
        moving = [copy & self.frames.ready for copy in sending]
        load_in_shares(m, word_now, [(moving, lambda i: Mux(group_end[i], word_next,
                                                             word_now >> 8))])
        load_in_shares(m, word_next, [([copy & end for copy, end in zip(moving, group_end)],
                                       fetched)])
        return m

