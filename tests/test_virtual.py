"""The virtual board: `wirestamp.open("sim://…")` runs the whole core in Verilator with the wire
and the DUT models in gateware. The echo model prints what it did, so every count the unit
reports is checked against the truth, not against expectations."""
import shutil
import time
import subprocess
import zlib

import numpy as np
import pytest

import wirestamp
from wirestamp.device import Device
from wirestamp.protocol import RECORD_TAG, Frame, Op, encode
from wirestamp.rates import UpDown
from wirestamp.sim.models import DELAY_TABLE, MIN_DELAY_CYCLES
from wirestamp.sim.virtual import delay_model, delay_table, from_query
from wirestamp.streams import Stream

ECHO_MAC = "02:00:00:00:00:09"


def echo_stream(**options):
    return Stream("10.0.0.9", dst_mac=ECHO_MAC, **options)


# Without the simulator.

def test_delay_tables():
    assert delay_table("3us") == [375] * DELAY_TABLE
    uniform = np.array(delay_table("uniform:2us-6us"))
    assert uniform.min() >= 250 and uniform.max() <= 750 and abs(uniform.mean() - 500) < 1
    exponential = np.array(delay_table("exp:20us"))
    assert exponential.min() >= MIN_DELAY_CYCLES
    _, octave, _ = delay_model("exp:20us")    # one octave per leading zero: 1 on average
    assert abs((exponential.mean() + octave) * 8 - 20_000) < 200   # the mean asked
    for bad in ("3001ns", "100ns", "exp:400ns", "gauss:3us", "uniform:1us"):
        with pytest.raises(ValueError):
            delay_table(bad)


def test_bad_sim_options_are_refused_before_anything_starts():
    for query in ({"dut": "cable"}, {"loss": "1.5"}, {"loss": "0.6", "dup": "0.6"},
                  {"colour": "red"}, {"dut": "echo", "delay": "5ns"}):
        with pytest.raises(ValueError):
            from_query(query)


def test_profile_rate_at():
    profile = UpDown(1000, 2)
    assert [profile.rate_at(t) for t in (0, 0.5, 1, 1.5, 2.5)] == [0, 500, 1000, 500, 0]


class ChunkTransport:
    """Hands over everything the device 'sent' in one chunk: a reply and record frames
    (reads read 7; writes, which a new Device makes first, are acknowledged)."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        tag, op = data[0], data[1]
        if op == Op.WRITE:
            self.chunks.append(encode(Frame(tag, Op.WRITE_REPLY, b"")))
            return
        record = np.zeros(1, dtype=wirestamp.records.WIRE_DTYPE)
        frames = [Frame(RECORD_TAG, Op.RECORDS, record.tobytes()),
                  Frame(tag, Op.READ_REPLY, (7).to_bytes(4, "little")),
                  Frame(RECORD_TAG, Op.RECORDS, record.tobytes())]
        self.chunks.append(b"".join(encode(f) for f in frames))

    def read(self, timeout):
        return self.chunks.pop(0) if self.chunks else b""

    def close(self):
        pass


def test_record_frames_around_a_reply_are_all_kept():
    device = Device(ChunkTransport())
    device._link.checked = True     # (this stand-in answers only the read under test)
    assert device.read(0x100) == [7]
    assert len(device._records) == 2


# On the virtual board.

def test_echo_delay_is_exact(tmp_path):
    """A fixed delay D reads exactly D: min = max = every record's latency."""
    with wirestamp.open("sim://?dut=echo&delay=2504ns") as device:
        device.configure([echo_stream(rate=300_000, count=300)])
        device.start()
        latencies = []
        for chunk in device.records():
            latencies.extend((chunk["rx_ns"] - chunk["tx_ns"]).tolist())
            if len(latencies) >= 300:
                break
        stats = device.stream_stats(0)
        delays = dict(device.transport.delays)
    assert stats.rx_packets == 300 and stats.lost == 0
    assert stats.latency_min_ns == stats.latency_max_ns == 2504
    assert set(latencies) == {2504} and len(latencies) == 300
    assert delays == {2504: 300}


def test_echo_counts_equal_what_the_model_did(tmp_path):
    truth_file = tmp_path / "truth.txt"
    with wirestamp.open(f"sim://?dut=echo&delay=3us&loss=0.03&dup=0.02&reorder=0.02&seed=11"
                        f"&truth={truth_file}") as device:
        device.configure([echo_stream(rate=200_000, count=3000)])
        device.start()
        device.wait(timeout=120)
        truth = device.transport.truth
        stats = device.stream_stats(0)
    lines = [line.split() for line in truth_file.read_text().splitlines()]
    actions = [int(f[3]) for f in lines if f[0] == "I"]
    # A loss is only visible once a later packet arrives: trailing drops are not "lost".
    while actions and actions[-1] == 1:
        actions.pop()
    assert truth["drop"] > 30 and truth["duplicate"] > 30 and truth["hold"] > 30
    assert stats.tx_packets == 3000
    assert stats.lost == actions.count(1)
    assert stats.duplicates == truth["duplicate"]
    assert stats.reordered == truth["hold"]
    assert stats.rx_packets == 3000 - truth["drop"] + truth["duplicate"]
    assert stats.latency_min_ns == 3000


def test_loopback_at_line_rate_on_the_wire(tmp_path):
    from scapy.utils import RawPcapNgReader
    pcap = tmp_path / "wire.pcapng"
    with wirestamp.open(f"sim://?dut=loopback&wire_pcap={pcap}") as device:
        device.configure([Stream("10.0.0.9", rate="line", count=400)])
        device.start()
        device.wait(timeout=120)
        stats = device.stream_stats(0)
    assert stats.rx_packets == 400 and stats.latency_min_ns == stats.latency_max_ns == 8
    packets = list(RawPcapNgReader(str(pcap)))
    outbound = [(meta, data) for data, meta in packets if meta.direction == 2]
    inbound = [(meta, data) for data, meta in packets if meta.direction == 1]
    assert len(outbound) == len(inbound) == 400
    stamps = np.array([meta.tshigh << 32 | meta.tslow for meta, _ in outbound])
    assert outbound[0][0].tsresol == 10**9
    assert set(np.diff(stamps).tolist()) == {672}       # 64 + 8 preamble + 12 gap bytes
    for _, data in outbound + inbound:
        assert len(data) == 64 and zlib.crc32(data[:-4]).to_bytes(4, "little") == data[-4:]
    if shutil.which("tshark"):
        listing = subprocess.run(["tshark", "-r", str(pcap), "-o", "eth.check_fcs:TRUE", "-T",
                                  "fields", "-e", "eth.fcs.status"], capture_output=True,
                                 text=True)
        complaints = [line for line in listing.stderr.splitlines()
                      if not line.startswith("Running as user")]
        assert listing.returncode == 0 and not complaints
        assert listing.stdout.split() == ["1"] * 800          # 800 frames, every FCS good


def test_demo_writes_its_files(tmp_path):
    from wirestamp.cli import main
    out = tmp_path / "demo"
    assert main(["demo", "--trials", "2", "--peak", "50000", "--seconds", "0.004",
                 "--out", str(out), "--quiet"]) == 0
    for name in ("tables.txt", "trials.csv", "demo.json", "rate_latency.png",
                 "latency_histogram.png", "latency_cdf.png", "trial-01/records.parquet",
                 "trial-02/summary.json"):
        assert (out / name).stat().st_size > 0
    table = (out / "tables.txt").read_text()
    assert "Table 1" in table and "Table 2" in table
    rows = (out / "trials.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[1]) for row in rows] == [100, 100]   # 50 kpps peak, 4 ms


def test_linux_kernel_as_dut():
    """ARP by the kernel, echoes by `wirestamp reflect` in a namespace, stack times joined."""
    from wirestamp.sim.linux import split_stack_times, unavailable
    if unavailable():
        pytest.skip(unavailable())
    with wirestamp.open("sim://?dut=linux") as device:
        linux = device.transport.linux
        namespace = linux.netns
        device.set_address(linux.unit_mac, linux.unit_ip)
        device.configure([Stream(linux.ip, dst_mac=linux.mac, src_ip=linux.unit_ip,
                                 src_mac=linux.unit_mac, rate=20_000, count=40)])
        device.start()
        device.wait(timeout=60)
        deadline = time.monotonic() + 20
        while device.stream_stats(0).rx_packets < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        stats, counters = device.stream_stats(0), device.counters()
    assert counters["arp_rx"] >= 1 and counters["arp_tx"] >= 1   # the kernel asked, we answered
    assert stats.tx_packets == stats.rx_packets == 40 and stats.lost == 0
    assert len(linux.reflections) == 40
    parts = split_stack_times(linux.reflections, linux.taps())
    assert len(parts["seq"]) == 40
    for name in ("driver_ns", "inbound_ns", "application_ns", "outbound_ns"):
        assert (parts[name] > 0).all(), name
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in listing                            # cleaned up


def test_the_echo_models_first_draws_are_uniform_whatever_the_seed():
    """Issue 33: xorshift32 from a small seed drew under 2 % three times running (seeds 1-6),
    so loss=0.02 always dropped the first requests. The model's state is the seed mixed
    (`model_seed`); its first three draws over seeds 1..3000 are uniform (chi-square, 10 bins,
    9 degrees of freedom: below 27.9, p = 0.001)."""
    from wirestamp.sim.virtual import model_seed

    def xorshift(x):
        x ^= (x << 13) & 0xFFFF_FFFF
        x ^= x >> 17
        return x ^ (x << 5) & 0xFFFF_FFFF
    for step in range(3):
        bins = [0] * 10
        for seed in range(1, 3001):
            state = model_seed(seed)
            for _ in range(step + 1):
                draw, state = state, xorshift(state)
            bins[draw * 10 >> 32] += 1
        chi2 = sum((b - 300) ** 2 / 300 for b in bins)
        assert chi2 < 27.9, (step, bins)
    # The old state (the seed itself) fails the same test: the first draw of seeds 1..3000
    # lies in the lowest tenth every time.
    assert all(seed * 10 >> 32 == 0 for seed in range(1, 3001))
