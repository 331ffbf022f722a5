"""The control link under damage (hypothesis): the host's real `Device` against the gateware's
bridge (the virtual board in Verilator), through a link that drops, corrupts, duplicates and
delays bytes both ways (`sim.faults.FaultyLink`). Every request either returns the right value
or raises LinkError; a value is never wrong, and a WRITE is never executed twice. Then frames
whose CRC is right but whose op, length or tag is not. `benchmarks/link_fuzz.py` runs the same
for 100,000 exchanges and more."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wirestamp.device import Device
from wirestamp.protocol import Deframer, ErrorCode, Frame, Op, encode
from wirestamp.sim.faults import ARP_TARGET as TARGET, FaultyLink, session
from wirestamp.sim.virtual import SimTransport


@pytest.fixture(scope="module")
def link():
    link = FaultyLink(SimTransport())
    yield link
    link.close()


op = st.one_of(st.tuples(st.sampled_from(["read_id", "read_ip", "arp"]), st.none()),
               st.tuples(st.just("write_ip"), st.integers(2, 0x0A000000)))
chance = st.sampled_from([0.0, 0.02, 0.1, 0.25])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), drop=chance, corrupt=chance, duplicate=chance,
       delay=chance, ops=st.lists(op, min_size=1, max_size=25))
def test_every_request_is_right_or_a_link_error(link, seed, drop, corrupt, duplicate, delay, ops):
    session(link, seed, dict(drop=drop, corrupt=corrupt, duplicate=duplicate, delay=delay), ops)


def raw(link, frame_bytes, timeout=0.5):
    """The frames the bridge answers `frame_bytes` with (until `timeout` passes quietly)."""
    link.inner.write(frame_bytes)
    deframer, replies = Deframer(), []
    while data := link.inner.read(timeout):
        replies += deframer.feed(data)
    return replies


@pytest.mark.parametrize("frame, answer", [
    (Frame(7, 0x55, b"\x00\x00"), ErrorCode.UNKNOWN_OP),                  # no such op
    (Frame(7, Op.READ, struct.pack("<HB", 0x233, 0)), ErrorCode.MALFORMED),   # 0 words
    (Frame(7, Op.READ, struct.pack("<HB", 0x233, 65)), ErrorCode.MALFORMED),  # past a burst
    (Frame(7, Op.READ, struct.pack("<H", 0x233)), ErrorCode.MALFORMED),       # short
    (Frame(7, Op.WRITE, struct.pack("<HI", 0x233, 5) + b"\x01\x02"), ErrorCode.MALFORMED),
    (Frame(7, Op.WRITE, struct.pack("<H", 0x233)), ErrorCode.MALFORMED),      # no data
    (Frame(7, Op.READ_REPLY, b"\x00" * 4), ErrorCode.UNKNOWN_OP),         # a device's op
])
def test_frames_with_a_good_crc_but_a_bad_shape_change_nothing(link, frame, answer):
    link.settle(0.01)
    dev = Device(link)
    dev.write_register("ARP_TARGET", TARGET)            # 0x233
    replies = raw(link, encode(frame))
    assert [(r.tag, r.op, r.body) for r in replies] == [(7, Op.ERROR, bytes([answer]))]
    assert dev.read_register("ARP_TARGET") == TARGET, "nothing was written"


def test_a_request_tagged_as_records_is_answered_as_a_request(link):
    """The host never tags a request RECORD_TAG (it is the unit's, for RECORDS frames); the
    bridge answers one like any other, once, and never as records."""
    link.settle(0.01)
    dev = Device(link)
    dev.write_register("ARP_TARGET", TARGET)
    replies = raw(link, encode(Frame.write(0xFF, 0x233, [TARGET + 1])))
    assert [(r.tag, r.op, r.body) for r in replies] == [(0xFF, Op.WRITE_REPLY, b"")]
    assert dev.read_register("ARP_TARGET") == TARGET + 1
