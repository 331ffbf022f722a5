"""The transmit path of the whole core in Verilator (or Icarus), seen by cocotbext-eth's
GmiiSink and decoded with scapy (`WireFrame` checks FCS, both checksums and the signature of
every frame): stamps, sequence numbers, line rate, rate accuracy, profiles, shared line."""
from collections import defaultdict
from fractions import Fraction

import pytest
from scapy.layers.inet import IP, UDP

from wirestamp import regmap
from wirestamp.rates import Burst, Constant, Steps, UpDown
from wirestamp.sim.runner import run_bench
from wirestamp.sim.wire import WireFrame
from wirestamp.streams import Stream, compile_streams

NS = regmap.NS_PER_CYCLE


def capture(streams, frames, timeout_us=2000, registers=("TX_FRAMES", "STREAM_TX", "SCHED_LATE"),
            **params):
    result = run_bench("capture", {"writes": compile_streams(streams), "frames": frames,
                                   "timeout_us": timeout_us, "registers": list(registers),
                                   **params})
    frames = [WireFrame(r) for r in result["frames"]]
    assert all(f.tx_ns == f.sfd_ns for f in frames), "every TX stamp is its frame's SFD time"
    return frames, result


def test_frames_are_valid_and_stamped_at_the_sfd():
    streams = [
        Stream("10.0.0.1", dst_port=7, src_port=1234, dst_mac="02:00:00:00:00:aa", ttl=17,
               dscp=46, frame_size=[64, 570, 1518], rate=50_000, count=9),
        Stream("10.1.2.3", src_ip="172.16.0.9", src_mac="02:00:00:00:00:bb", frame_size=333,
               rate=120_000, count=12),
        Stream("192.0.2.200", frame_size=64, rate=400_000, count=30),
    ]
    frames, result = capture(streams, frames=51, timeout_us=300)
    assert len(frames) == 51 and not result["timed_out"]
    by_stream = defaultdict(list)
    for frame in frames:
        by_stream[frame.stream].append(frame)
    assert {s: len(f) for s, f in by_stream.items()} == {0: 9, 1: 12, 2: 30}
    for index, stream in enumerate(streams):
        got = by_stream[index]
        assert [f.seq for f in got] == list(range(stream.count)), "contiguous sequence numbers"
        assert [f.flags for f in got] == [0] * (stream.count - 1) + [1], "last flag at the end"
        sizes = stream.sizes
        assert [f.size for f in got] == [sizes[i % len(sizes)] for i in range(stream.count)]
        first = got[0].packet
        assert first.dst == stream.dst_mac.lower() and first.src == stream.src_mac.lower()
        assert first[IP].src == stream.src_ip and first[IP].dst == stream.dst_ip
        assert first[IP].ttl == stream.ttl and first[IP].tos == stream.dscp << 2
        assert first[UDP].sport == stream.src_port and first[UDP].dport == stream.dst_port
        assert [f.packet[IP].id for f in got] == [f.seq & 0xFFFF for f in got]
    registers = result["registers"]
    assert registers["TX_FRAMES"] == 51 and registers["STREAM_TX"][:3] == [9, 12, 30]
    assert registers["SCHED_LATE"] == 0


@pytest.mark.parametrize("size", [64, 128, 512, 1518])
def test_line_rate(size):
    count = {64: 200, 128: 120, 512: 40, 1518: 16}[size]
    frames, _ = capture([Stream("10.0.0.1", frame_size=size, rate="line", count=count)],
                        frames=count, timeout_us=count * 13)
    gaps = {b.sfd_ns - a.sfd_ns for a, b in zip(frames, frames[1:])}
    assert gaps == {(size + regmap.FRAME_OVERHEAD) * NS}, "one frame every size + 20 byte times"
    assert len(frames) == count and {f.size for f in frames} == {size}


def test_10k_pps_has_no_rate_error():
    frames, _ = capture([Stream("10.0.0.1", rate=10_000, count=40)], frames=40, timeout_us=4100)
    gaps = {b.sfd_ns - a.sfd_ns for a, b in zip(frames, frames[1:])}
    assert gaps == {100_000}
    assert frames[-1].sfd_ns - frames[0].sfd_ns == 39 * 100_000


def test_uneven_rate_stays_within_one_byte_time_of_ideal():
    pps = 30_000    # 4166.67 byte times per packet
    frames, _ = capture([Stream("10.0.0.1", rate=pps, count=60)], frames=60, timeout_us=2100)
    period_ns = Fraction(10**9, pps)
    start = frames[0].sfd_ns
    for k, frame in enumerate(frames):
        error = frame.sfd_ns - start - k * period_ns
        assert 0 <= error < NS, f"packet {k}: {float(error)} ns from its ideal time"


def test_up_down_profile_follows_the_configured_rate():
    peak, seconds = 400_000, Fraction(2, 1000)
    profile = UpDown(peak, seconds)
    expected_total = peak * seconds / 2
    frames, _ = capture([Stream("10.0.0.1", rate=profile)], frames=int(expected_total) + 5,
                        timeout_us=2200)
    start = frames[0].sfd_ns
    offsets = [Fraction(f.sfd_ns - start, 10**9) for f in frames]
    assert abs(len(frames) - expected_total) <= 2

    def ideal_count(t):     # integral of the triangular rate from 0 to t
        half = seconds / 2
        if t <= half:
            return peak / half * t * t / 2
        rest = seconds - t
        return expected_total - peak / half * rest * rest / 2

    windows = 20
    for w in range(windows):
        a, b = seconds * w / windows, seconds * (w + 1) / windows
        got = sum(a <= t < b for t in offsets)
        want = ideal_count(b) - ideal_count(a)
        assert abs(got - want) <= 2, f"window {w}: {got} packets, profile says {float(want):.1f}"


def test_streams_share_the_line_and_never_exceed_it():
    # 98% of the line in all: frames never overlap, and each stream keeps its own rate: every
    # packet leaves at or after its ideal time and never far behind it.
    streams = [
        Stream("10.0.0.1", frame_size=64, rate=500_000, count=500),
        Stream("10.0.0.2", frame_size=1518, rate=20_000, count=20),
        Stream("10.0.0.3", frame_size=512, rate=60_000, count=60),
        Stream("10.0.0.4", frame_size=128, rate=120_000, count=120),
    ]
    load = sum(s.bytes_per_second(s.rate) for s in streams) / regmap.CLOCK_HZ
    assert 0.97 < load < 1
    frames, result = capture(streams, frames=700, timeout_us=1100)
    for a, b in zip(frames, frames[1:]):
        assert b.sfd_ns - a.sfd_ns >= (a.size + regmap.FRAME_OVERHEAD) * NS
    start = frames[0].sfd_ns
    for index, stream in enumerate(streams):
        got = [f.sfd_ns - start for f in frames if f.stream == index]
        assert len(got) == stream.count
        lags = [t - k * Fraction(10**9, stream.rate) for k, t in enumerate(got)]
        assert 0 <= min(lags) and max(lags) < 40_000
    assert result["registers"]["SCHED_LATE"] == 0


def test_a_duration_ends_the_stream():
    stream = Stream("10.0.0.1", rate=Constant(100_000, seconds=0.0005))
    frames, result = capture([stream], frames=60, timeout_us=700)
    assert result["timed_out"] and len(frames) == 50


def test_steps_profile():
    # 100k, 200k, 50k pps for 100 µs each: 10 + 20 + 5 packets, at the right spacing.
    frames, result = capture([Stream("10.0.0.1", rate=Steps([100_000, 200_000, 50_000], 1e-4))],
                             frames=40, timeout_us=400)
    assert result["timed_out"] and len(frames) == 35
    gaps = [b.sfd_ns - a.sfd_ns for a, b in zip(frames, frames[1:])]
    assert set(gaps[:9]) == {10_000} and set(gaps[10:29]) == {5_000} and set(gaps[30:]) == {20_000}


def test_burst_profile_repeats_until_the_count():
    # 5 packets at 1 Mpps in each 5 µs burst, then 15 µs of silence, over and over.
    frames, _ = capture([Stream("10.0.0.1", rate=Burst(1_000_000, 5e-6, 15e-6), count=20)],
                        frames=20, timeout_us=200)
    start = frames[0].sfd_ns
    bursts = [[f.sfd_ns - start for f in frames[i:i + 5]] for i in range(0, 20, 5)]
    for n, burst in enumerate(bursts):
        assert [t - burst[0] for t in burst] == [0, 1000, 2000, 3000, 4000]
        assert abs(burst[0] - n * 20_000) < 128, "bursts start every 20 µs, on the tick grid"
    assert frames[-1].flags == 1


def test_stop_ends_every_stream():
    streams = [Stream("10.0.0.1", rate=500_000), Stream("10.0.0.2", rate=300_000)]
    frames, result = capture(streams, frames=200, timeout_us=200, stop_after=50,
                             registers=["TX_FRAMES", "STATUS", "ACTIVE"])
    assert result["timed_out"] and 50 <= len(frames) <= 51    # the frame already granted
    assert result["registers"]["STATUS"] == 0 and result["registers"]["ACTIVE"] == 0
    assert result["registers"]["TX_FRAMES"] == len(frames)


def test_clear_zeroes_the_line_counters_but_not_the_sequence():
    control = regmap.register("CONTROL").addr
    _, result = capture([Stream("10.0.0.1", rate="line", count=10)], frames=10, timeout_us=50,
                        final_writes=[[control, regmap.CONTROL_CLEAR]],
                        registers=["TX_FRAMES", "TX_BYTES", "STREAM_TX"])
    assert result["registers"]["TX_FRAMES"] == result["registers"]["TX_BYTES"] == 0
    assert result["registers"]["STREAM_TX"][0] == 10


def test_all_sixteen_streams_start_together():
    # The last stream the start sweep arms is armed in the very cycle the streams go.
    # Each its own size list, so each stream's place in it is kept apart.
    streams = [Stream(f"10.0.0.{index + 1}", rate=30_000, count=2,
                      frame_size=[64 + index, 200 + index]) for index in range(regmap.MAX_STREAMS)]
    frames, result = capture(streams, frames=2 * regmap.MAX_STREAMS, timeout_us=80)
    assert not result["timed_out"]
    for index in range(regmap.MAX_STREAMS):
        assert [f.size for f in frames if f.stream == index] == [64 + index, 200 + index]
    assert result["registers"]["STREAM_TX"] == [2] * regmap.MAX_STREAMS
