"""Header layouts as data: Ethernet II (IEEE 802.3 clause 3), IPv4 (RFC 791), UDP (RFC 768),
ARP (RFC 826), and the wirestamp payload signature.

Multi-byte fields are arrays of bytes in wire order (byte 0 first on the wire), so a layout's
bits 8*i..8*i+7 are its i-th byte on the wire; `to_be` and `from_be` convert to integers, and
`be_words` gives the 16-bit words a checksum (RFC 1071) sums.
"""
from amaranth import Cat, Const, Value
from amaranth.lib import data

from ...regmap import SIGNATURE_FIELDS

__all__ = ["EthernetHeader", "IPv4Header", "UDPHeader", "PayloadSignature", "UDPFrameHead",
           "ArpPacket", "IcmpHeader", "ArpFrame", "IcmpFrameHead", "UDPPseudoHeader",
           "to_be", "from_be", "be_words", "ETHERTYPE_IPV4", "ETHERTYPE_ARP", "IP_PROTO_UDP",
           "IP_PROTO_ICMP", "ARP_REQUEST", "ARP_REPLY", "ICMP_ECHO_REPLY", "ICMP_ECHO_REQUEST"]

ETHERTYPE_IPV4 = 0x0800
ARP_REQUEST = 1
ARP_REPLY = 2
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ETHERTYPE_ARP = 0x0806
IP_PROTO_ICMP = 1
IP_PROTO_UDP = 17


def _bytes(n):
    return data.ArrayLayout(8, n)


EthernetHeader = data.StructLayout({"dst": _bytes(6), "src": _bytes(6), "ethertype": _bytes(2)})

IPv4Header = data.StructLayout({
    "version_ihl": 8, "tos": 8, "total_length": _bytes(2), "ident": _bytes(2),
    "flags_fragment": _bytes(2), "ttl": 8, "protocol": 8, "checksum": _bytes(2),
    "src": _bytes(4), "dst": _bytes(4),
})

UDPHeader = data.StructLayout({
    "src_port": _bytes(2), "dst_port": _bytes(2), "length": _bytes(2), "checksum": _bytes(2),
})

# What the UDP checksum covers besides the datagram (RFC 768): taken from the IPv4 header.
UDPPseudoHeader = data.StructLayout({
    "src": _bytes(4), "dst": _bytes(4), "zero": 8, "protocol": 8, "length": _bytes(2),
})

PayloadSignature = data.StructLayout({name: _bytes(width // 8) for name, width in SIGNATURE_FIELDS})

ArpPacket = data.StructLayout({   # RFC 826, for IPv4 over Ethernet
    "htype": _bytes(2), "ptype": _bytes(2), "hlen": 8, "plen": 8, "op": _bytes(2),
    "sha": _bytes(6), "spa": _bytes(4), "tha": _bytes(6), "tpa": _bytes(4),
})

IcmpHeader = data.StructLayout({  # RFC 792, echo request and reply
    "type": 8, "code": 8, "checksum": _bytes(2), "ident": _bytes(2), "seq": _bytes(2),
})

ArpFrame = data.StructLayout({"eth": EthernetHeader, "arp": ArpPacket})
IcmpFrameHead = data.StructLayout({"eth": EthernetHeader, "ip": IPv4Header, "icmp": IcmpHeader})

# The first 60 bytes of every generated frame: all a 64-byte frame holds before its FCS.
UDPFrameHead = data.StructLayout({
    "eth": EthernetHeader, "ip": IPv4Header, "udp": UDPHeader, "sig": PayloadSignature,
})


def to_be(value, n_bytes):
    """The bytes of `value`, most significant first: assign to an n-byte wire field."""
    value = Value.cast(value)
    if len(value) > 8 * n_bytes:
        raise ValueError(f"{len(value)}-bit value does not fit in {n_bytes} bytes")
    value = value.as_unsigned()
    value = Cat(value, Const(0, 8 * n_bytes - len(value)))
    return Cat(*(value[8 * (n_bytes - 1 - i):8 * (n_bytes - i)] for i in range(n_bytes)))


def from_be(field):
    """The integer a wire-order byte array holds."""
    n_bytes = len(field.as_value()) // 8
    return Cat(*(field[n_bytes - 1 - i] for i in range(n_bytes)))


def be_words(header, skip=()):
    """The 16-bit words of a header in wire order, first byte high, as a ones' complement sum
    takes them; less the fields named in `skip` (the checksum a sum makes, say), each of
    whole words."""
    value = Value.cast(header)
    assert len(value) % 16 == 0, "a header of whole words"
    skipped = set()
    for name in skip:
        field = header.shape()[name]
        assert field.offset % 16 == 0 and field.width % 16 == 0, f"{name}: not whole words"
        skipped.update(range(field.offset // 16, (field.offset + field.width) // 16))
    return [Cat(value[16 * i + 8:16 * i + 16], value[16 * i:16 * i + 8])
            for i in range(len(value) // 16) if i not in skipped]
