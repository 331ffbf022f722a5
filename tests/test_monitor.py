"""Monitoring: totals that never go backwards across wraps, START and restarts, and the
Prometheus exposition against the unit's own figures."""
import subprocess
import sys

import pytest

import wirestamp
from wirestamp.monitor import Collector, CounterTotals, Monitor, Sample, sample
from wirestamp.streams import Stream

ECHO_MAC = "02:00:00:00:00:09"


def test_totals_across_a_wrap_a_reset_and_a_restart():
    totals = CounterTotals()
    bits = 16
    assert totals.update("c", 65_000, bits, 1.0) == 65_000
    # 65,000 → 300 in 1 s: round the 16-bit counter (836 counts) is possible at line rate
    assert totals.update("c", 300, bits, 1.0) == 65_000 + 836
    # 300 → 100 in 1 ms, for a 48-bit counter: it cannot have wrapped, so it was zeroed
    # (START) and counted 100 since
    assert totals.update("d", 10**9, 48, 1.0) == 10**9
    assert totals.update("d", 100, 48, 1e-3) == 10**9 + 100
    totals.reset()                                  # the unit restarted: from 0 again
    assert totals.update("d", 7, 48, 1.0) == 10**9 + 107 and totals.resets == 1


class Row:
    def __init__(self, stream, **values):
        self.stream = stream
        for name in ("tx_packets", "rx_packets", "rx_bytes", "lost", "reordered", "duplicates"):
            setattr(self, name, values.get(name, 0))
        for name in ("latency_min_ns", "latency_max_ns", "latency_mean_ns", "jitter_ns"):
            setattr(self, name, None)


def test_a_restart_is_seen_by_the_clock_and_rates_stay_positive():
    monitor = Monitor(1)
    seconds = [1, 2, 3, 0.5, 1.5]            # the unit restarts between 3 s and 0.5 s
    rx = [1000, 2000, 3000, 400, 1400]
    rates = [monitor.add(Sample(wall=0, time_ns=int(t * 1e9),
                                counters={"rx_frames": n}, streams=[Row(0, rx_packets=n)]))
             for t, n in zip(seconds, rx)]
    assert monitor.restarts == 1
    assert monitor.totals.totals[(0, "rx_packets")] == 3000 + 1400
    assert [r.get("rx_frames") for r in rates[1:]] == [1000, 1000, 800, 1000]
    assert all(v >= 0 for r in rates for v in r.values())


def test_the_exposition_equals_the_units_figures():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    with wirestamp.open("sim://?dut=echo&delay=uniform:2us-9us") as dev:
        dev.configure([Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=100_000, count=500)])
        dev.set_record_sample(0)
        dev.start()
        dev.wait()
        monitor = Monitor(1)
        collector = Collector(monitor)
        s = sample(dev, 1, histograms=True)
        monitor.add(s)
        stats = dev.stream_stats(0)
        assert (monitor.histograms[0] == dev.histogram(0)).all()
        registry = CollectorRegistry()
        registry.register(collector)
        text = generate_latest(registry).decode()
    values = {(m.name, tuple(sorted(m.labels.items()))): m.value
              for family in text_string_to_metric_families(text) for m in family.samples}
    stream = (("stream", "0"),)
    assert values[("wirestamp_stream_rx_packets_total", stream)] == stats.rx_packets == 500
    assert values[("wirestamp_stream_tx_packets_total", stream)] == stats.tx_packets
    assert values[("wirestamp_stream_lost_packets_total", stream)] == stats.lost
    assert values[("wirestamp_rx_frames_total", ())] == s.counters["rx_frames"]
    assert values[("wirestamp_stream_latency_seconds_count", stream)] == 500
    assert values[("wirestamp_stream_latency_min_seconds", stream)] == stats.latency_min_ns / 1e9
    assert values[("wirestamp_stream_jitter_seconds", stream)] == stats.jitter_ns / 1e9
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in values.items()
                     if k[0] == "wirestamp_stream_latency_seconds_bucket")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))     # cumulative
    assert buckets[0][0] > 2e-6 and buckets[-1] == (float("inf"), 500)


def test_cli_monitors_a_test_file(tmp_path):
    (tmp_path / "t.toml").write_text('[[streams]]\ndst_ip = "10.0.0.9"\nrate = "50kpps"\n'
                                     'duration = "5ms"\n')
    result = subprocess.run([sys.executable, "-m", "wirestamp.cli", "monitor", "--device",
                             "sim://?dut=echo&delay=3us", "--config", "t.toml", "--interval",
                             "200ms", "--duration", "2s", "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "samples, 0 unit restarts" in result.stderr


@pytest.mark.parametrize("flags, message", [(["--interval", "soon"], "duration"),
                                            (["--listen", "9420"], "--listen"),
                                            (["--streams", "0"], "--streams")])
def test_bad_flags_are_one_line(capsys, flags, message):
    from wirestamp.cli import main
    assert main(["monitor", "--device", "serial:///dev/no-such-unit", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_more_streams_than_the_unit_carries_is_one_line(capsys, monkeypatch):
    import dataclasses
    from wirestamp.cli import main
    from wirestamp.device import Device
    eight = property(lambda dev: dataclasses.replace(dev.identify(), streams=8))
    monkeypatch.setattr(Device, "info", eight)         # an 8-stream image (CAPS)
    assert main(["monitor", "--device", "sim://", "--streams", "9", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "wirestamp: --streams: 9 streams; the unit carries 8"


def _children(pid):
    """PIDs of `pid`'s child processes (from /proc)."""
    import os
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def test_the_virtual_boards_death_is_a_gap_then_a_restart(tmp_path):
    """The board's process dies mid-monitor: the monitor says so, reconnects (a new board,
    whose clock starts again: a restart), carries on, and ends normally. The history has the
    gap, which the figures leave open, and the restart."""
    import numpy as np
    from wirestamp.history import load
    from wirestamp.plots import history_series
    import os
    import signal
    import time
    process = subprocess.Popen([sys.executable, "-m", "wirestamp.cli", "monitor", "--device",
                                "sim://?dut=echo&delay=3us&timeout=0.2&retries=1",
                                "--interval", "100ms", "--duration", "25s", "--quiet",
                                "--out", str(tmp_path)],
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _children(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(6)                              # the board is up and being sampled
        for child in _children(process.pid):
            os.kill(child, signal.SIGKILL)
        _, err = process.communicate(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "link lost" in err and "reconnected" in err and "Traceback" not in err
    assert "1 unit restarts, 1 link gaps" in err, err
    table = load(tmp_path, "1s")
    assert table.column("restarts").to_pylist()[-1] == 1 and table.column("gaps")[-1].as_py() == 1
    series = history_series(table, 0.1)
    assert len(series["restarts_at"]) == 1
    # The figures leave the gap open: a NaN row between the last row before it and the first
    # after (the row where `gaps` counts it), and no rate across it. (A loaded machine may
    # take other samples late, which leaves those open too.)
    times = table.column("time").to_numpy().astype("datetime64[ms]")
    after = table.column("gaps").to_pylist().index(1)
    at = int(np.searchsorted(series["time"], times[after]))
    assert series["time"][at] == times[after] and np.isnan(series["rx_frames_per_s"][at])
    assert times[after - 1] < series["time"][at - 1] < times[after], "a row put in the gap"
    assert np.isnan(series["rx_frames_per_s"][at - 1])


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=2.0):
    import json
    import urllib.request
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        body = reply.read().decode()
    return json.loads(body) if "/api/" in url else body


def test_a_real_prometheus_scrapes_the_monitor_and_sigterm_ends_it(tmp_path):
    """Debian's Prometheus scrapes `wirestamp monitor --listen` and its HTTP API answers the
    stream's exact packet count and a latency quantile from the hardware buckets; then
    SIGTERM ends the monitor with exit 0 and the history written."""
    import math
    import os
    import shutil
    import signal
    import time
    prometheus = shutil.which("prometheus")
    if not prometheus:
        pytest.skip("Debian's `prometheus` package is not installed (.ci/run installs it)")
    (tmp_path / "t.toml").write_text('[[streams]]\ndst_ip = "10.0.0.9"\nrate = "100kpps"\n'
                                     'count = 500\n')
    ours, theirs = _free_port(), _free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: wirestamp\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{ours}']\n")
    monitor = subprocess.Popen([sys.executable, "-m", "wirestamp.cli", "monitor", "--device",
                                "sim://?dut=echo&delay=uniform:2us-9us", "--config", "t.toml",
                                "--interval", "200ms", "--listen", f"127.0.0.1:{ours}",
                                "--out", "history", "--quiet"],
                               cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    server = subprocess.Popen([prometheus, "--config.file", "prometheus.yml",
                               "--storage.tsdb.path", "tsdb",
                               "--web.listen-address", f"127.0.0.1:{theirs}"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{theirs}/api/v1/query?query="
    try:
        deadline, answers = time.monotonic() + 240, {}
        while time.monotonic() < deadline and len(answers) < 2:
            time.sleep(1)
            for name, query in (("rx", "wirestamp_stream_rx_packets_total"),
                                ("p50", "histogram_quantile(0.5,"
                                        "wirestamp_stream_latency_seconds_bucket)")):
                try:
                    result = _get(api + query)["data"]["result"]
                except OSError:
                    continue                    # not up yet
                value = float(result[0]["value"][1]) if result else math.nan
                # rx: all 500 counted; p50: NaN until a scrape has buckets
                if (value == 500) if name == "rx" else not math.isnan(value):
                    answers[name] = (result[0]["metric"], value)
        assert answers.get("rx") and answers["rx"][0]["stream"] == "0", answers
        assert 2e-6 <= answers["p50"][1] <= 9.6e-6, answers      # the delay's range
        os.kill(monitor.pid, signal.SIGTERM)
        _, err = monitor.communicate(timeout=60)
    finally:
        monitor.kill()
        server.terminate()
        server.wait(timeout=30)
    assert monitor.returncode == 0, err
    assert "Traceback" not in err
    samples = int(err.strip().splitlines()[-1].split()[0])
    from wirestamp.history import load
    table = load(tmp_path / "history", "1s")
    assert len(table) == samples and table.column("s0_rx_packets")[-1].as_py() == 500
