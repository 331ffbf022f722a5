"""Numbers that never lie (issue 16): each test here failed on the tree before it.

Without the simulator: percentiles, exact standard deviations, sequence numbers across their
wrap, the Parquet writer's row groups, strict parsing, the delay model's tail. On the virtual
board: retried requests run once, control-link damage leaves the counts exact, loss after the
last packet is counted, record losses are shown, the echo model's seed matters."""
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

import wirestamp
from wirestamp import regmap
from wirestamp.device import stddev
from wirestamp.protocol import END, RECORD_TAG, decode
from wirestamp.records import RecordWriter, SequenceExtender, join_key, parts
from wirestamp.run import percentile, run_measurement
from wirestamp.streams import Stream, parse_mac

ECHO_MAC = "02:00:00:00:00:09"


# Without the simulator.

def test_percentiles_lie_inside_their_bucket_and_between_min_and_max():
    histogram = np.zeros(regmap.HIST_BUCKETS, dtype=np.int64)
    bucket = regmap.hist_bucket(3000)
    histogram[bucket] = 1000                                 # every packet at 3000 ns
    for q in (50, 99, 99.9):
        assert percentile(histogram, q, 3000, 3000) == 3000
    # Spread evenly over one bucket: the median is inside it, not at its lower edge.
    low, high = regmap.hist_lower_ns(bucket), regmap.hist_lower_ns(bucket + 1)
    p50 = percentile(histogram, 50)
    assert low < p50 < high and abs(p50 - (low + high) / 2) <= 1


def test_stddev_is_exact_at_long_latencies():
    n = 10_000
    values = [100_000_000 + (i % 2) * 2 for i in range(n)]      # 100 ms ± 1 ns
    assert stddev(n, sum(values), sum(v * v for v in values)) == 1.0
    values = [300_000_000_000 + (i % 2) * 2 for i in range(n)]  # 300 s ± 1 ns
    assert stddev(n, sum(values), sum(v * v for v in values)) == 1.0
    assert stddev(0, 0, 0) is None


def test_sequence_numbers_keep_counting_across_the_wrap():
    extender = SequenceExtender()
    top = 2**32
    first = extender.extend(np.array([0, 0, 1]), np.array([top - 2, top - 1, 7]))
    second = extender.extend(np.array([0, 0, 0, 1]), np.array([0, 1, top - 1, 8]))
    assert first.tolist() == [top - 2, top - 1, 7]
    assert second.tolist() == [top, top + 1, top - 1, 8]       # a late one stays behind
    scalar = SequenceExtender()
    assert [scalar.extend_one(3, s) for s in (top - 1, 0, 5, top - 3)] == \
        [top - 1, top, top + 5, top - 3]
    rows = np.zeros(2, dtype=[("stream", "u1"), ("seq", "u8")])
    rows["seq"] = [5, top + 5]
    assert join_key(rows)[0] != join_key(rows)[1]


def test_parquet_row_groups_are_bounded_by_rows(tmp_path):
    from wirestamp.records import RECORD_DTYPE
    path = tmp_path / "records.parquet"
    with RecordWriter(path, rows=1000, seconds=3600) as writer:
        for i in range(300):                       # 300 chunks of 10, as RECORDS frames come
            chunk = np.zeros(10, dtype=RECORD_DTYPE)
            columns = {name: chunk[name] for name in RECORD_DTYPE.names}
            columns["seq"] = np.arange(i * 10, i * 10 + 10, dtype=np.uint64)
            columns["latency_ns"] = np.zeros(10, dtype=np.int64)
            writer.write(columns)
    metas = [pq.ParquetFile(part).metadata for part in parts(path)]
    assert [m.num_rows for m in metas] == [1000] * 3 and [m.num_row_groups for m in metas] == [1] * 3
    assert pq.read_table(path)["seq"].to_numpy().tolist() == list(range(3000))


@pytest.mark.parametrize("text", ["02:0_:00:00:00:01", "02:00-00:00:00:01", "０2:00:00:00:00:01",
                                  "02:00:00:00:00", "02:00:00:00:00:01:02", "0x0200000001"])
def test_malformed_mac_addresses_are_refused(text):
    with pytest.raises(ValueError, match="dst_mac"):
        Stream("10.0.0.1", dst_mac=text, count=1).validate()


def test_well_formed_mac_addresses_parse():
    assert parse_mac("02:aa:BB:cc:dd:01") == parse_mac("02-AA-bb-CC-DD-01") == 0x02AABBCCDD01


@pytest.mark.parametrize("rate", [math.nan, math.inf, -math.inf, None, "fast", 0, True])
def test_rates_that_are_not_numbers_or_never_send_are_refused(rate):
    with pytest.raises(ValueError, match="rate"):
        Stream("10.0.0.1", rate=rate, count=10).validate()


def test_the_exponential_delay_has_a_real_tail():
    from wirestamp.sim.virtual import delay_model
    table, octave, longest = delay_model("exp:20us")
    assert octave == round((20_000 - 512) / 8 * math.log(2))
    assert longest > 400_000              # the 1024-entry table alone stopped at 149 µs
    # The model's draw, rendered in Python: U = 2^-(k+1)·(1 + f).
    draws = np.random.default_rng(5).integers(1, 2**32, 400_000)
    k = 32 - np.floor(np.log2(draws)).astype(np.int64) - 1
    f = ((draws << (k + 1)) >> 22) & 1023
    delays = (np.array(table)[f] + k * octave) * 8
    assert abs(delays.mean() - 20_000) < 150
    assert delays.max() > 149_104 * 1.4


# On the virtual board.

class DropFirstReply:
    """A transport that loses the first reply to every request (the request arrives): each
    request has to be retried once."""
    def __init__(self, inner):
        self.inner, self.settle_s = inner, inner.settle_s
        self._buffer, self._dropped_tag, self.dropped = bytearray(), None, 0

    def write(self, data):
        self.inner.write(data)

    def read(self, timeout):
        self._buffer += self.inner.read(timeout)
        *frames, rest = bytes(self._buffer).split(bytes([END]))
        self._buffer = bytearray(rest)
        out = bytearray()
        for raw in frames:
            tag = decode(raw).tag if raw else RECORD_TAG
            if tag != RECORD_TAG and tag != self._dropped_tag:
                self._dropped_tag, self.dropped = tag, self.dropped + 1
                continue
            out += raw + bytes([END])
        return bytes(out)

    def close(self):
        self.inner.close()


def test_a_retried_write_runs_once():
    from wirestamp.sim.virtual import SimTransport
    link = DropFirstReply(SimTransport(dut="loopback"))
    with wirestamp.Device(link, timeout=0.3) as device:
        device.configure([Stream("10.0.0.1", rate=200_000, count=1000)])
        device.start()
        device.wait(timeout=120)
        device.stop()
        stats = device.stream_stats(0)
        tx_frames = device.read_register("TX_FRAMES")
        retried = device.retried
    assert link.dropped > 10 and retried == link.dropped
    assert stats.tx_packets == 1000 and tx_frames == 1000
    assert stats.rx_packets == 1000 and stats.duplicates == 0 and stats.lost == 0


def test_counts_are_exact_under_control_link_damage(tmp_path):
    url = "sim://?dut=echo&delay=3us&link_loss=0.01&link_corrupt=0.01&seed=4"
    with wirestamp.open(url) as device:
        summary = run_measurement(device, [Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=100_000,
                                                  count=2000)], tmp_path, progress=False)
        histogram = device.histogram(0)          # 1024 more requests through the damage
        damage = dict(device.transport.link_damage)
    stream = summary["streams"][0]
    assert damage["lost"] > 5 and damage["corrupted"] > 5
    assert summary["link"]["retried_requests"] > 0
    assert stream["tx_packets"] == stream["rx_packets"] == 2000 and stream["lost"] == 0
    assert int(histogram.sum()) == 2000 and histogram[regmap.hist_bucket(3000)] == 2000
    records = summary["records"]          # record frames lost on the link are counted
    assert records["expected"] == 2000 and records["lost"] >= 0


@pytest.mark.parametrize("loss", ["1", "0.3"])
def test_loss_after_the_last_packet_is_counted(tmp_path, loss):
    with wirestamp.open(f"sim://?dut=echo&delay=3us&loss={loss}&seed=2") as device:
        summary = run_measurement(device, [Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=100_000,
                                                  count=1000)], tmp_path, progress=False)
        dropped = device.transport.truth["drop"]
    stream = summary["streams"][0]
    assert stream["tx_packets"] == 1000
    assert stream["lost"] == 1000 - stream["rx_packets"] == dropped
    if loss == "1":
        assert any("received none" in w for w in summary["warnings"])


def test_record_losses_are_counted_and_thinning_is_exact(tmp_path):
    stream = Stream("10.0.0.9", dst_mac=ECHO_MAC, rate="line", count=20_004)
    with wirestamp.open("sim://?dut=echo&delay=3us") as device:
        full = run_measurement(device, [stream], tmp_path / "all", progress=False)
        thin = run_measurement(device, [stream], tmp_path / "thin", progress=False,
                               record_sample=7)
        again = run_measurement(device, [stream], tmp_path / "again", progress=False,
                                record_sample=7)      # the 1-in-N count runs on: 5 left over
    records = full["records"]
    assert records["expected"] == 20_004 and records["lost"] > 0       # the FIFO overflowed
    assert records["received"] + records["lost"] == 20_004
    assert records["fifo_overflow"] > 0 and any("records" in w for w in full["warnings"])
    assert records["received"] == pq.read_table(tmp_path / "all" / "records.parquet").num_rows
    assert thin["records"]["expected"] == 20_004 // 7 == thin["records"]["received"]
    assert thin["records"]["lost"] == 0 and thin["streams"][0]["rx_packets"] == 20_004
    assert again["records"]["received"] == 20_004 // 7 + 1 == again["records"]["expected"]
    assert again["records"]["lost"] == 0
    # The percentiles are every packet's (the unit's histogram), whatever the records did.
    with wirestamp.open("sim://?dut=echo&delay=3us") as device:
        none = run_measurement(device, [stream], tmp_path / "none", progress=False,
                               record_sample=0)
    for summary in (thin, again, none):
        assert summary["streams"][0]["latency_ns"] == full["streams"][0]["latency_ns"]
    assert full["streams"][0]["latency_ns"]["p50"] is not None
    assert none["records"]["received"] == 0
    saved = json.loads((tmp_path / "thin" / "summary.json").read_text())
    assert saved["config"]["record_sample"] == 7 and saved["interrupted"] is False


def test_the_echo_seed_changes_what_it_draws(tmp_path):
    def pattern(seed):
        truth = tmp_path / f"truth-{seed}.txt"
        with wirestamp.open(f"sim://?dut=echo&delay=exp:5us&loss=0.3&seed={seed}"
                            f"&truth={truth}") as device:
            run_measurement(device, [Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=100_000,
                                            count=200)], tmp_path / str(seed), progress=False)
            delays = dict(device.transport.delays)
        actions = [line.split()[3] for line in truth.read_text().splitlines()
                   if line.startswith("I")]
        return actions, delays
    one, three, again = pattern(1), pattern(3), pattern(1)
    assert one[0] != three[0] and one[1] != three[1]
    assert one[0] == again[0]             # the same seed, the same fates


def test_percentiles_from_the_buckets_between_min_and_max_equal_the_whole_histograms(tmp_path):
    """`run` reads only the buckets between the exact minimum's and maximum's: nothing lies
    outside them, so the percentiles are those of all 512 buckets."""
    from wirestamp.run import PERCENTILES
    stream = Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=100_000, count=400)
    with wirestamp.open("sim://?dut=echo&delay=exp:20us&seed=5") as device:
        summary = run_measurement(device, [stream], tmp_path / "r", progress=False)
        whole = device.histogram(0)
    latency = summary["streams"][0]["latency_ns"]
    assert int(whole.sum()) == 400 and np.count_nonzero(whole) > 10
    for name, q in PERCENTILES:
        assert latency[name] == percentile(whole, q, latency["min"], latency["max"])
