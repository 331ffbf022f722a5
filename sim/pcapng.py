"""A minimal pcapng writer (draft-ietf-opsawg-pcapng) with nanosecond timestamps.

One Ethernet interface (LINKTYPE_ETHERNET) with `if_tsresol` = 9 (nanoseconds) and
`if_fcslen` = 4 (frames carry their FCS); each frame is an Enhanced Packet Block whose
`epb_flags` say its direction. (scapy's writer keeps microseconds, which would fold the
672 ns between minimum-size frames.)
"""
import struct

__all__ = ["PcapNgWriter"]

_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_LINKTYPE_ETHERNET = 1
_IF_TSRESOL, _IF_FCSLEN, _EPB_FLAGS = 9, 13, 2
_INBOUND, _OUTBOUND = 1, 2


def _option(code, value):
    padding = b"\0" * (-len(value) % 4)
    return struct.pack("<HH", code, len(value)) + value + padding


def _block(kind, body):
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


class PcapNgWriter:
    def __init__(self, path):
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close)
        self._file.write(_block(_SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        options = (_option(_IF_TSRESOL, bytes([9])) + _option(_IF_FCSLEN, bytes([4]))
                   + _option(0, b""))
        self._file.write(_block(_IDB, struct.pack("<HHI", _LINKTYPE_ETHERNET, 0, 0) + options))

    def write(self, ns, frame, inbound):
        """`frame` (FCS included) seen at `ns` nanoseconds; `inbound` towards the unit."""
        padding = b"\0" * (-len(frame) % 4)
        flags = _option(_EPB_FLAGS, struct.pack("<I", _INBOUND if inbound else _OUTBOUND))
        body = (struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFF_FFFF, len(frame), len(frame))
                + frame + padding + flags + _option(0, b""))
        self._file.write(_block(_EPB, body))

    def close(self):
        self._file.close()
