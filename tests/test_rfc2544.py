"""RFC 2544 against a DUT whose capacity is known: the echo model as a FIFO of `queue` frames
drained at `capacity` (`sim://?dut=echo&capacity=…&queue=…`). Each figure is checked against
what that queue must do, computed here from first principles, not against a run's output."""
import json
import math
from fractions import Fraction

import pytest

import wirestamp
from wirestamp import regmap, rfc2544
from wirestamp.cli import main
from wirestamp.sim.virtual import capacity_model
from wirestamp.streams import line_rate_pps

QUEUE = 32
CAPACITY_BPS = 400e6             # frames' bits, FCS included: 781,250 pps of 64 B frames
ECHO_MAC = "02:00:00:00:00:09"


def capacity_pps(size):
    return CAPACITY_BPS / (8 * size)


def longest_burst(size, service_cycles, queue):
    """The longest line-rate burst the queue takes without loss. Frame k's SFD comes at
    k·(size + 20) cycles, it ends `size` cycles later, and the server (busy from the first
    frame's end on, as it drains slower than the line fills) finishes frame j at
    size + (j + 1)·service. Frame k is dropped when the frames before it not yet finished
    fill the queue."""
    for k in range(10**6):
        sfd = k * (size + regmap.FRAME_OVERHEAD)
        finished = min(k, max(0, math.floor((sfd - size) / service_cycles)))
        if k - finished >= queue:
            return k
    raise AssertionError("the queue never fills")


def test_capacity_options_are_checked():
    assert capacity_model(None, None) == (0, 0, 0)
    frames, per_frame, per_byte = capacity_model("400mbps", "16")
    assert (frames, per_frame) == (16, 0) and per_byte == round(125e6 * 8 / 400e6 * 2**16)
    assert capacity_model("300kpps", None)[:2] == (64, round(125e6 / 300e3 * 2**16))
    for capacity, queue in (("fast", None), ("0pps", None), ("1mpps", "0"), ("1mpps", "999"),
                            (None, "8"), ("1mpps", "eight")):
        with pytest.raises(ValueError):
            capacity_model(capacity, queue)


@pytest.fixture(scope="module")
def results():
    url = f"sim://?dut=echo&delay=1us&capacity={CAPACITY_BPS / 1e6:g}mbps&queue={QUEUE}"
    with wirestamp.open(url) as dev:
        settings = rfc2544.Settings.for_virtual_board(
            dev.transport.settle_s, dst_ip="10.0.0.9", dst_mac=ECHO_MAC, sizes=(64, 256),
            tests=("throughput", "loss", "back-to-back"), resolution=0.005, b2b_trials=2)
        yield settings, rfc2544.run(dev, settings)


def test_throughput_is_the_capacity(results):
    """Zero loss up to the rate at which a trial's excess over the capacity just fits in the
    queue: capacity + queue / trial length. The search brackets it to the resolution."""
    settings, found = results
    for entry in found["throughput"]:
        size = entry["size"]
        truth = capacity_pps(size) + QUEUE / settings.trial_s
        step = settings.resolution * float(line_rate_pps([size]))
        frame = 2 / settings.trial_s             # a frame or two either way, per trial
        assert truth - step - frame <= entry["rate_pps"] <= truth + frame, (entry, truth)
        assert entry["confirmed"]["lost"] == 0


def test_loss_curve_is_one_minus_capacity_over_offered(results):
    settings, found = results
    for entry in found["loss"]:
        capacity = capacity_pps(entry["size"])
        for step in entry["steps"]:
            offered = step["offered_pps"]
            # what the server drains while the trial sends, and the queue's frames, get
            # through: to a few frames (the server starts at the first frame's end, and
            # the queue's edges are whole frames)
            through = min(step["tx"], capacity * step["tx"] / offered + QUEUE)
            expected = 1 - through / step["tx"]
            assert abs(step["loss_percent"] / 100 - expected) <= 3 / step["tx"], step
            assert (step["loss_percent"] > 0) == (offered > capacity + QUEUE / settings.trial_s)
        last_two = entry["steps"][-2:]
        assert [s["lost"] for s in last_two] == [0, 0]


def test_back_to_back_is_the_burst_the_queue_allows(results):
    _, found = results
    for entry in found["back_to_back"]:
        size = entry["size"]
        service = Fraction(regmap.CLOCK_HZ * 8 * size) / Fraction(CAPACITY_BPS)
        assert entry["bursts"] == [longest_burst(size, service, QUEUE)] * 2, entry
        # RFC 9004's correction: the burst less what the DUT forwarded during it is its
        # buffer. With the true capacity that is the queue, less the part of a frame the
        # server had not yet begun (it starts at the first frame's end: size / service
        # frames) and a whole frame's rounding.
        line = float(line_rate_pps([size]))
        _, corrected = rfc2544.implied_buffer(entry["frames_mean"], line, capacity_pps(size))
        assert QUEUE - 1 - size / service <= corrected * line <= QUEUE, entry
        throughput = next(e for e in found["throughput"] if e["size"] == size)["rate_pps"]
        assert entry["corrected_buffer_time_s"] == rfc2544.implied_buffer(
            entry["frames_mean"], line, throughput)[1]


def test_cli_writes_the_report(tmp_path):
    """The command as a user types it, a fixed-rate (pps) capacity, with ARP resolving the
    echo's MAC: results.json, the CSVs, the figures and report.md."""
    out = tmp_path / "rfc"
    status = main(["rfc2544", "--device", "sim://?dut=echo&delay=1us&capacity=200kpps&queue=8",
                   "--dst-ip", "10.0.0.9", "--sizes", "128", "--tests", "throughput,latency",
                   "--resolution", "1%", "--latency-trials", "2", "--out", str(out), "--quiet"])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == rfc2544.SCHEMA and results["settings"]["dst_mac"] == ECHO_MAC
    (throughput,) = results["throughput"]
    truth = 200e3 + 8 / 0.005
    assert truth - 0.01 * float(line_rate_pps([128])) - 400 <= throughput["rate_pps"] <= truth + 400
    (latency,) = results["latency"]
    assert latency["frames"] == 2 * round(throughput["rate_pps"] * 0.005)
    assert latency["min_ns"] <= latency["p50_ns"] <= latency["p99_ns"] <= latency["max_ns"]
    report = (out / "report.md").read_text()
    assert "shorter than RFC 2544 asks" in report and "![throughput.png]" in report
    for name in ("throughput.csv", "latency.csv", "throughput.png", "latency.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.parametrize("flags, message", [
    (["--sizes", "63"], "sizes: 63"), (["--sizes", "64,1519"], "sizes: 1519"),
    (["--sizes", "64,big"], "--sizes"), (["--resolution", "0"], "resolution"),
    (["--resolution=-1%"], "resolution"), (["--accept-loss", "101%"], "accept_loss"),
    (["--tests", "throughput,latncy"], "'latncy'"), (["--trial", "fast"], "duration"),
    (["--b2b-trials", "0"], "b2b_trials")])
def test_bad_settings_are_refused_before_the_device(capsys, flags, message):
    """A device that does not exist: the settings are refused before it is opened."""
    status = main(["rfc2544", "--device", "serial:///dev/no-such-unit", "--dst-ip", "10.0.0.9",
                   *flags])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_ctrl_c_stops_the_stream_and_keeps_what_was_found(tmp_path):
    """Ctrl-C in the middle of a trial: the stream is stopped, results.json and report.md
    are written and marked, and the command exits 130 with one line."""
    import os
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "rfc"
    process = subprocess.Popen(
        [sys.executable, "-m", "wirestamp.cli", "rfc2544", "--device",
         "sim://?dut=echo&delay=1us", "--dst-ip", "10.0.0.9", "--dst-mac", ECHO_MAC,
         "--sizes", "64", "--trial", "10s", "--out", str(out), "--quiet"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    line = process.stderr.readline()            # the note that trials are not the RFC's
    assert "note:" in line and time.monotonic() < deadline
    time.sleep(3)                               # into the first (10 s simulated) trial
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "stopped the stream" in err and "Traceback" not in err
    results = json.loads((out / "results.json").read_text())
    assert results["interrupted"] and results["trials"] == 0
    assert "Interrupted" in (out / "report.md").read_text()
