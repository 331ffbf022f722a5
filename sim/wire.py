"""Decoding of frames captured on the simulated wire, with scapy, checking every layer:
FCS (IEEE 802.3 clause 3.2.9), IPv4 header checksum (RFC 791), UDP checksum (RFC 768), and the
wirestamp payload signature. A frame that breaks any rule raises `WireError`."""
import zlib

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from .. import regmap

__all__ = ["WireError", "WireFrame", "internet_checksum"]


class WireError(ValueError):
    pass


def internet_checksum(data):
    """RFC 1071: the ones' complement of the ones' complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _check(condition, what):
    if not condition:
        raise WireError(what)


class WireFrame:
    """One captured generator frame: `packet` (scapy), `size` (with FCS), `sfd_ns` (timebase
    time its SFD was on the wire), and the signature's `stream`, `flags`, `seq`, `tx_ns`."""

    def __init__(self, record):
        raw = bytes.fromhex(record["data"])
        _check(not record["error"], "GMII error during the frame")
        _check(record["preamble"].endswith("55d5"), "preamble does not end in 55 D5")
        _check(raw[-4:] == zlib.crc32(raw[:-4]).to_bytes(4, "little"), "bad FCS")
        self.size = len(raw)
        self.sfd_ns = record["sfd_ns"]
        self.packet = Ether(raw[:-4])
        _check(IP in self.packet and UDP in self.packet, "not IPv4/UDP")
        ip, udp = self.packet[IP], self.packet[UDP]
        _check(ip.version == 4 and ip.ihl == 5, "IPv4 header with options")
        _check(ip.len == self.size - 18, "IPv4 total length does not match the frame")
        _check(internet_checksum(bytes(ip)[:20]) == 0, "bad IPv4 header checksum")
        _check(udp.len == self.size - 38, "UDP length does not match the frame")
        pseudo = bytes(ip)[12:20] + bytes([0, 17]) + udp.len.to_bytes(2, "big")
        _check(udp.chksum != 0 and internet_checksum(pseudo + bytes(udp)) == 0,
               "bad UDP checksum")
        payload = bytes(udp.payload)
        signature = regmap.unpack_signature(payload)
        _check(signature is not None, "no wirestamp signature")
        self.stream, self.flags = signature["stream"], signature["flags"]
        self.seq, self.tx_ns = signature["seq"], signature["tx_ns"]
        rest = payload[regmap.SIGNATURE_BYTES:]
        _check(rest == bytes(len(rest)), "payload fill is not zero")
