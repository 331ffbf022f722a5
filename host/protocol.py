"""The control-link wire protocol: the second half of the contract (plain Python, no amaranth
import). The gateware's UART bridge and the host's transports speak it.

A frame on the wire is SLIP-framed (RFC 1055): it ends with END (0xC0), and an END or ESC
(0xDB) inside is sent as ESC ESC_END (0xDB 0xDC) or ESC ESC_ESC (0xDB 0xDD). SLIP encodes and
decodes a byte at a time with no look-ahead, which keeps the gateware side small, and a lost
or corrupted byte costs at most the frames it touches: the receiver resynchronises at the next
END. Inside, before framing:

    tag (1) | op (1) | body (0..MAX_BODY) | CRC-16 (2, big-endian)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF; `binascii.crc_hqx`)
over tag, op and body. It detects every error burst of up to 16 bits, so any single corrupted
byte. A frame that fails it, or is malformed, is dropped by the device (which answers with
ERROR when the tag and op survived) and changes nothing.

Requests carry a tag chosen by the host; the reply repeats it. Reads are idempotent. A WRITE
carries its client's session too (one byte after its data), and the unit keeps, per session,
the tag of the last WRITE it executed: a WRITE whose tag equals that of its session's last is
acknowledged again but not executed again, so a client may retry any request whose reply was
lost or damaged without repeating its effect (e.g. a START), and two clients never take each
other's WRITEs for retries (contract 2.0; before it, one tag for all clients made one
client's new WRITE with the other's last tag be acknowledged and never executed). The host
moves to a new tag for each new request, picks its session at random per link, and reads
VERSION before its first WRITE, so a unit of another major version is named, not misread.

Bodies (addresses and data are little-endian, like the register map's word order):
    READ    addr (2) count (1)          -> READ_REPLY  data (4 × count)
    WRITE   addr (2) data (4 × count) session (1)  -> WRITE_REPLY (empty body)
    RECORDS_START / RECORDS_STOP        -> WRITE_REPLY
    device, unsolicited: RECORDS with tag RECORD_TAG, body = whole records (RECORD_BYTES each)
    device: ERROR  code (1)
A READ or WRITE of `count` words covers `count` consecutive word addresses (a burst).

Over USB (USB 2.0 chapter 9 descriptors, 5.8 bulk transfers; class `Usb` below): a vendor-
specific interface with bulk OUT 1 and bulk IN 1 carrying these same SLIP frames, and bulk
IN 2 carrying records raw, RECORD_BYTES each, back to back with no framing (USB's CRC-16 per
packet protects them): a record may straddle two packets. RECORDS_START and RECORDS_STOP,
sent on EP1, start and stop EP2. A short packet ends a transfer when records stop coming
(idle flush), so a trickle still arrives promptly.
"""
import binascii
import struct
from dataclasses import dataclass

from .regmap import RECORD_FIELDS

__all__ = ["Op", "ErrorCode", "Frame", "ProtocolError", "encode", "decode", "slip_encode",
           "slip_decode", "crc16", "Deframer", "MAX_BODY", "MAX_BURST", "RECORD_TAG", "SESSIONS",
           "RECORD_BYTES", "END", "Usb"]

MAX_BURST = 64                          # words in one READ or WRITE
MAX_BODY = 3 + 4 * MAX_BURST          # a READ's 3, a WRITE's address, data and session
SESSIONS = 256                          # the unit keeps a last WRITE tag for each
RECORD_TAG = 0xFF                       # the tag of unsolicited RECORDS frames
RECORD_BYTES = sum(w for _, w in RECORD_FIELDS) // 8


class Usb:
    """The USB device the gateware presents and the host looks for (docs/usb.md)."""
    VID = 0x1209            # pid.codes
    PID = 0x0001            # pid.codes' test PID, until wirestamp's own is granted
    MANUFACTURER = "wirestamp"
    PRODUCT = "wirestamp network tester"
    INTERFACE = 0
    CONTROL_OUT = 0x01      # bulk OUT 1: control frames to the unit
    CONTROL_IN = 0x81       # bulk IN 1: replies (and nothing else)
    RECORDS_IN = 0x82       # bulk IN 2: raw records
    MAX_PACKET = 512        # High Speed bulk
    VENDOR_CLASS = 0xFF


class Op:
    READ = 0x01
    WRITE = 0x02
    RECORDS_START = 0x03
    RECORDS_STOP = 0x04
    READ_REPLY = 0x81
    WRITE_REPLY = 0x82
    RECORDS = 0x90
    ERROR = 0xEE


class ErrorCode:
    CRC = 1             # the frame failed its CRC (sent only when tag and op are plausible)
    MALFORMED = 2       # wrong length for its op, or a burst too long
    UNKNOWN_OP = 3


class ProtocolError(ValueError):
    """A frame that must be dropped: bad SLIP, bad CRC, or malformed."""


def crc16(data):
    return binascii.crc_hqx(bytes(data), 0xFFFF)


END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def slip_encode(data):
    """`data` escaped for SLIP (without the END delimiter)."""
    return bytes(data).replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(
        bytes([END]), bytes([ESC, ESC_END]))


_END, _ESC = bytes([END]), bytes([ESC])
_ESCAPED_END, _ESCAPED_ESC = bytes([ESC, ESC_END]), bytes([ESC, ESC_ESC])


def slip_decode(data):
    """The bytes SLIP-escaped in `data` (without its END); ProtocolError if malformed.

    No per-byte Python: in a valid frame every ESC starts a pair ESC ESC_END or ESC ESC_ESC.
    A pair's second byte is never ESC, so the pairs cannot overlap: counting ESCs against
    counted pairs checks the frame, and two replacements decode it."""
    data = bytes(data)
    if _END in data:
        raise ProtocolError("END inside a frame")
    escapes = data.count(_ESC)
    if not escapes:
        return data
    if escapes != data.count(_ESCAPED_END) + data.count(_ESCAPED_ESC):
        raise ProtocolError("frame ends in an escape" if data.endswith(_ESC)
                            else "bad SLIP escape")
    return data.replace(_ESCAPED_END, _END).replace(_ESCAPED_ESC, _ESC)


@dataclass(frozen=True)
class Frame:
    tag: int
    op: int
    body: bytes = b""

    @classmethod
    def read(cls, tag, addr, count=1):
        return cls(tag, Op.READ, struct.pack("<HB", addr, count))

    @classmethod
    def write(cls, tag, addr, words, session=0):
        return cls(tag, Op.WRITE, struct.pack("<H", addr) +
                   b"".join(struct.pack("<I", w) for w in words) + bytes([session]))

    def words(self):
        """The 32-bit words of a READ_REPLY."""
        return list(struct.unpack(f"<{len(self.body) // 4}I", self.body))


def encode(frame):
    """The bytes on the wire for `frame`, delimiter included."""
    if not (0 <= frame.tag <= 0xFF and 0 <= frame.op <= 0xFF):
        raise ValueError("tag and op are bytes")
    if len(frame.body) > max(MAX_BODY, RECORD_BYTES * 10):
        raise ValueError(f"body of {len(frame.body)} bytes is too long")
    inner = bytes([frame.tag, frame.op]) + frame.body
    return slip_encode(inner + crc16(inner).to_bytes(2, "big")) + bytes([END])


def decode(encoded):
    """The frame in `encoded` (without its END), or ProtocolError."""
    inner = slip_decode(encoded)
    if len(inner) < 4:
        raise ProtocolError("frame too short")
    if crc16(inner[:-2]) != int.from_bytes(inner[-2:], "big"):
        raise ProtocolError("CRC mismatch")
    frame = Frame(inner[0], inner[1], inner[2:-2])
    _check_shape(frame)
    return frame


def _check_shape(frame):
    n = len(frame.body)
    if frame.op == Op.READ and (n != 3 or not 1 <= frame.body[2] <= MAX_BURST):
        raise ProtocolError("malformed READ")
    if frame.op == Op.WRITE and (n < 7 or (n - 3) % 4 or (n - 3) // 4 > MAX_BURST):
        raise ProtocolError("malformed WRITE")
    if frame.op == Op.READ_REPLY and n % 4:
        raise ProtocolError("malformed READ_REPLY")
    if frame.op == Op.RECORDS and n % RECORD_BYTES:
        raise ProtocolError("malformed RECORDS")


class Deframer:
    """Splits a byte stream at END delimiters and decodes each frame. Bounded: a frame longer
    than any legal one is discarded as it grows, so garbage cannot use up memory."""
    LIMIT = 2 * (RECORD_BYTES * 10 + 8)      # every byte escaped

    def __init__(self):
        self._buffer = bytearray()
        self._overlong = False
        self.errors = 0

    def feed(self, data):
        """Frames completed by `data`; damaged frames are counted in `errors` and skipped.
        The bytes are split at END by `bytes.split` and each piece decoded whole."""
        frames = []
        pieces = bytes(data).split(_END)
        for i, piece in enumerate(pieces):
            if i == len(pieces) - 1:                 # no END yet: keep it for the next call
                room = self.LIMIT - len(self._buffer)
                self._buffer += piece[:max(room, 0)]
                self._overlong |= len(piece) > room
                break
            if self._buffer:
                room = self.LIMIT - len(self._buffer)
                self._overlong |= len(piece) > room
                piece = bytes(self._buffer) + piece[:max(room, 0)]
                self._buffer.clear()
            elif len(piece) > self.LIMIT:
                self._overlong = True
            if piece or self._overlong:
                try:
                    if self._overlong:
                        raise ProtocolError("frame too long")
                    frames.append(decode(piece))
                except ProtocolError:
                    self.errors += 1
            self._overlong = False
        return frames
