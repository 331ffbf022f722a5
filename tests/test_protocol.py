"""The control-link protocol: round trips, and damage that is always detected, never a
wrong frame (hypothesis, derandomised so CI runs the same cases every time)."""
# A frame damaged by one flipped, dropped or inserted byte, or cut short, must never decode as
# another frame: every frame that comes out is one that was sent.
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wirestamp.protocol import (END, MAX_BURST, Deframer, Frame, Op, ProtocolError, crc16,
                                decode, encode, slip_decode, slip_encode)

SETTINGS = settings(max_examples=300, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

words = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=MAX_BURST)
frames = st.one_of(
    st.builds(Frame.read, st.integers(0, 254), st.integers(0, 0xFFFF), st.integers(1, MAX_BURST)),
    st.builds(Frame.write, st.integers(0, 254), st.integers(0, 0xFFFF), words,
              st.integers(0, 255)),
    st.builds(lambda t, ws: Frame(t, Op.READ_REPLY, b"".join(w.to_bytes(4, "little") for w in ws)),
              st.integers(0, 254), words),
)


def test_crc_is_ccitt_false():
    assert crc16(b"123456789") == 0x29B1       # the catalogue's check value


@given(st.binary(max_size=1000))
@SETTINGS
def test_slip_round_trip_has_no_end(data):
    encoded = slip_encode(data)
    assert END not in encoded and slip_decode(encoded) == data


@given(frames)
@SETTINGS
def test_frames_round_trip(frame):
    wire = encode(frame)
    assert wire[-1] == END and END not in wire[:-1]
    assert decode(wire[:-1]) == frame
    if frame.op == Op.WRITE:            # address, words, then the session
        assert Frame.write(frame.tag, int.from_bytes(frame.body[:2], "little"),
                           [int.from_bytes(frame.body[i:i + 4], "little")
                            for i in range(2, len(frame.body) - 1, 4)],
                           frame.body[-1]) == frame


def damage(stream, kind, where, value):
    where %= len(stream)
    if kind == "flip":
        changed = stream[where] ^ (value % 255 + 1)          # a different byte
        return stream[:where] + bytes([changed]) + stream[where + 1:]
    if kind == "drop":
        return stream[:where] + stream[where + 1:]
    if kind == "insert":
        return stream[:where] + bytes([value % 256]) + stream[where:]
    return stream[:where]                                     # truncate


@given(st.lists(frames, min_size=1, max_size=5), st.sampled_from(["flip", "drop", "insert",
       "truncate"]), st.integers(0, 10**6), st.integers(0, 255))
@SETTINGS
def test_damage_never_yields_a_wrong_frame(sent, kind, where, value):
    stream = b"".join(encode(f) for f in sent)
    deframer = Deframer()
    got = deframer.feed(damage(stream, kind, where, value) + bytes([END]))
    # Every frame that comes out is one that was sent, in order; the damaged one is counted.
    position = 0
    for frame in got:
        assert frame in sent[position:]
        position = sent.index(frame, position) + 1
    assert len(got) + deframer.errors >= len(sent) - 1 or kind == "truncate"
    if kind == "flip" and len(got) < len(sent):
        assert deframer.errors >= 1


@pytest.mark.parametrize("op, body", [(Op.READ, b"\x00\x01"), (Op.READ, b"\x00\x01\x00\x00"),
                                      (Op.READ, b"\x00\x00\x00"), (Op.WRITE, bytes(5)),
                                      (Op.WRITE, bytes(2 + 4 * 65)), (Op.READ_REPLY, bytes(5))])
def test_malformed_bodies_are_refused(op, body):
    inner = bytes([1, op]) + body
    with pytest.raises(ProtocolError):
        decode(slip_encode(inner + crc16(inner).to_bytes(2, "big")))


def test_the_deframer_is_bounded():
    deframer = Deframer()
    assert deframer.feed(b"\x05" * 100_000) == []
    assert len(deframer._buffer) <= Deframer.LIMIT
    assert deframer.feed(bytes([END])) == [] and deframer.errors == 1
    assert deframer.feed(encode(Frame.read(3, 0x10))) == [Frame.read(3, 0x10)]


def test_slip_decoding_agrees_with_a_byte_by_byte_reference():
    """The decoder works on whole frames (counts and replacements); this reference reads one
    byte at a time, as RFC 1055 describes. Both must agree on every input, valid or not."""
    import random
    from wirestamp.protocol import slip_decode, slip_encode

    def reference(data):
        out, escaped = bytearray(), False
        for byte in data:
            if escaped:
                if byte not in (0xDC, 0xDD):
                    return None
                out.append(0xC0 if byte == 0xDC else 0xDB)
                escaped = False
            elif byte == 0xDB:
                escaped = True
            elif byte == 0xC0:
                return None
            else:
                out.append(byte)
        return None if escaped else bytes(out)

    draw = random.Random(3)
    for _ in range(20_000):
        data = bytes(draw.choice([0xC0, 0xDB, 0xDC, 0xDD, 0x01]) for _ in range(draw.randrange(9)))
        assert slip_decode(slip_encode(data)) == data
        try:
            got = slip_decode(data)
        except ProtocolError:
            got = None
        assert got == reference(data), data
