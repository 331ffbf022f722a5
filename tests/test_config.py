"""The configuration layer refuses bad input with a clear error, before anything is written,
and what it writes is exact."""
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirestamp import regmap
from wirestamp.rates import Burst, Constant, Ramp, Segments, Steps, UpDown, compile_profile
from wirestamp.streams import Stream, compile_streams, line_rate_pps


@pytest.mark.parametrize("stream, message", [
    (Stream("10.0.0.1", frame_size=63), "frame_size"),
    (Stream("10.0.0.1", frame_size=1519), "frame_size"),
    (Stream("10.0.0.1", frame_size=[64] * 9), "frame_size"),
    (Stream("10.0.0.1", frame_size=[]), "frame_size"),
    (Stream("10.0.0.1", rate=1_488_096), "above line rate"),
    (Stream("10.0.0.1", frame_size=1518, rate=81_275), "above line rate"),
    (Stream("10.0.0.1", rate=UpDown(2_000_000, 1)), "above line rate"),
    (Stream("10.0.0.1", rate=-5), "negative"),
    (Stream("10.0.0.1", rate="fast"), "packets per second"),
    (Stream("10.0.0.300"), "dst_ip"),
    (Stream("10.0.0.1", src_ip="10.0.0"), "src_ip"),
    (Stream("10.0.0.1", dst_mac="02:00:00:00:00"), "dst_mac"),
    (Stream("10.0.0.1", src_mac="02:00:00:00:00:zz"), "src_mac"),
    (Stream("10.0.0.1", dst_port=70000), "dst_port"),
    (Stream("10.0.0.1", ttl=0), "ttl"),
    (Stream("10.0.0.1", dscp=64), "dscp"),
    (Stream("10.0.0.1", count=-1), "count"),
    (Stream("10.0.0.1", count=1 << 48), "count"),
    (Stream("10.0.0.1", rate=Ramp(0, 10, 1), duration=3), "duration"),
])
def test_bad_stream_is_refused(stream, message):
    with pytest.raises(ValueError, match=message):
        compile_streams([stream])


@pytest.mark.parametrize("make, message", [
    (lambda: Steps([], 1), "empty"),
    (lambda: Segments([]), "no segments"),
    (lambda: Ramp(0, 100, 0), "positive"),
    (lambda: Burst(100, 1, -1), "positive"),
])
def test_bad_profile_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_segment_shorter_than_a_tick_is_refused():
    with pytest.raises(ValueError, match="shorter than one tick"):
        compile_profile(Ramp(0, 100, 1e-8))


def test_aggregate_above_line_rate_is_refused():
    half = line_rate_pps([64]) / 2
    compile_streams([Stream("10.0.0.1", rate=half), Stream("10.0.0.2", rate=half)])
    with pytest.raises(ValueError, match="together"):
        compile_streams([Stream("10.0.0.1", rate=half), Stream("10.0.0.2", rate=half + 1)])


def test_too_many_streams_or_segments():
    with pytest.raises(ValueError, match="streams"):
        compile_streams([Stream("10.0.0.1", rate=10)] * (regmap.MAX_STREAMS + 1))
    with pytest.raises(ValueError, match="segments"):
        compile_streams([Stream("10.0.0.1", rate=Steps([1] * 40, 1))] * 2)


def test_line_rate_of_64_byte_frames():
    assert line_rate_pps([64]) == Fraction(125_000_000, 84)      # 1 488 095.24 pps
    assert round(line_rate_pps([64])) == 1_488_095


@given(pps=st.fractions(min_value=Fraction(1, 100), max_value=line_rate_pps([64]),
                        max_denominator=1000))
@settings(max_examples=200, deadline=None)
def test_constant_rates_with_small_denominators_are_exact(pps):
    modulus, (segment,) = compile_profile(Constant(pps))
    assert Fraction(segment.rate, modulus) * regmap.CLOCK_HZ == pps
    assert modulus < 1 << regmap.PHASE_BITS and segment.ticks == 0


@given(start=st.integers(0, 1_000_000), end=st.integers(0, 1_000_000),
       micros=st.integers(1, 10_000_000))
@settings(max_examples=200, deadline=None)
def test_ramps_never_overshoot_their_end(start, end, micros):
    modulus, (segment,) = compile_profile(Ramp(start, end, Fraction(micros, 10**6)))
    final = segment.rate + segment.slope * segment.ticks / (1 << regmap.RATE_FRAC_BITS)
    final_pps = final / modulus * regmap.CLOCK_HZ
    assert min(start, end) - 1e-6 <= final_pps <= max(start, end) + 1e-6
    assert abs(final_pps - end) <= max(1e-3, abs(end - start) * 1e-6)


@given(st.lists(st.tuples(st.sampled_from([f for f, _ in regmap.STREAM_TABLE.fields]),
                          st.integers(0, 1 << 64)), max_size=6))
def test_table_rows_pack_and_unpack(pairs):
    widths = dict(regmap.STREAM_TABLE.fields)
    values = {name: value % (1 << widths[name]) for name, value in pairs}
    words = regmap.STREAM_TABLE.pack(**values)
    assert len(words) == regmap.STREAM_TABLE.row_words
    unpacked = regmap.STREAM_TABLE.unpack(words)
    assert {k: unpacked[k] for k in values} == values


def test_compiled_row_holds_the_stream():
    stream = Stream("10.1.2.3", dst_port=9, src_ip="192.168.7.1", src_port=40000,
                    dst_mac="02:00:00:00:00:aa", frame_size=[64, 1518], rate=Burst(1000, 0.1, 0.2),
                    count=77, ttl=3, dscp=10)
    writes = dict(compile_streams([stream]))
    table = regmap.STREAM_TABLE
    row = table.unpack([writes[table.addr(0, w)] for w in range(table.row_words)])
    assert row["dst_ip"] == 0x0A010203 and row["src_ip"] == 0xC0A80701
    assert row["dst_mac"] == 0x0200000000AA and row["src_port"] == 40000 and row["dst_port"] == 9
    assert row["sizes"] == 64 | 1518 << regmap.SIZE_BITS and row["size_count"] == 2
    assert row["count"] == 77 and row["ttl"] == 3 and row["dscp"] == 10
    assert row["enable"] == 1 and row["loop"] == 1 and row["first_segment"] == 0
    for unused in range(1, regmap.MAX_STREAMS):
        assert writes[table.addr(unused, 0)] == 0 and "enable" in dict(table.fields)
        assert table.unpack([writes[table.addr(unused, w)] for w in range(table.row_words)]) \
            == table.unpack([0] * table.row_words)
    segments = regmap.SEGMENT_TABLE
    on = segments.unpack([writes[segments.addr(0, w)] for w in range(segments.row_words)])
    off = segments.unpack([writes[segments.addr(1, w)] for w in range(segments.row_words)])
    assert on["last"] == 0 and off["last"] == 1 and off["rate"] == 0
    assert on["ticks"] == round(0.1 * regmap.CLOCK_HZ / regmap.TICK_CYCLES)
