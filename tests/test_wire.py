"""The wire decoder accepts a correct frame and catches each kind of damage."""
import zlib

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from wirestamp import regmap
from wirestamp.sim.wire import WireError, WireFrame


def record(frame_bytes, **changes):
    data = frame_bytes + zlib.crc32(frame_bytes).to_bytes(4, "little")
    rec = {"data": data.hex(), "preamble": "55555555555555d5", "sfd_ns": 1000, "error": False}
    rec.update(changes)
    return rec


def good_frame():
    signature = b"WSTP" + bytes([3, 1]) + (77).to_bytes(4, "big") + (123456).to_bytes(8, "big")
    packet = Ether(dst="02:00:00:00:00:01") / IP(src="10.0.0.2", dst="10.0.0.1", flags="DF") / \
        UDP(sport=5000, dport=5001) / signature
    return bytes(packet)


def test_the_signature_is_packed_and_unpacked_as_declared():
    """`regmap.pack_signature`/`unpack_signature`, the one codec of the payload signature
    (host/reflect.py, sim/linux.py, sim/wire.py and the tests use it), against bytes
    written out by hand."""
    signature = b"WSTP" + bytes([3, 1]) + (77).to_bytes(4, "big") + (123456).to_bytes(8, "big")
    assert regmap.pack_signature(3, 77, 123456, flags=1) == signature
    assert regmap.unpack_signature(signature + bytes(4)) == {
        "magic": regmap.ID, "stream": 3, "flags": 1, "seq": 77, "tx_ns": 123456}
    assert regmap.unpack_signature(signature[:-1]) is None
    assert regmap.unpack_signature(b"WSTQ" + signature[4:]) is None


def test_a_good_frame_decodes():
    frame = WireFrame(record(good_frame()))
    assert (frame.stream, frame.flags, frame.seq, frame.tx_ns, frame.size) == (3, 1, 77, 123456, 64)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:22] + bytes([b[22] ^ 1]) + b[23:], "IPv4 header checksum"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0x80]), "UDP checksum"),
])
def test_damage_is_caught(damage, message):
    with pytest.raises(WireError, match=message):
        WireFrame(record(damage(good_frame())))


def test_bad_fcs_and_gmii_error_are_caught():
    rec = record(good_frame())
    rec["data"] = rec["data"][:-2] + "00"
    with pytest.raises(WireError, match="FCS"):
        WireFrame(rec)
    with pytest.raises(WireError, match="GMII error"):
        WireFrame(record(good_frame(), error=True))
