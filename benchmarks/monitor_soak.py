"""The monitor over 24 hours of a unit in fast-forward: a stand-in device at 1.49 Mpps on 16
streams, one sample per simulated second (86,400), SCHED_LATE wrapping its 32 bits every
48 minutes, and one restart at hour 12. Each sample also reads every stream's histogram and
goes into the history on disk (`--out`, default a temporary folder). It checks every rate
against the truth, that the exported counters never go backwards, and the history's row
counts and latency; it prints the monitor's RSS per hour, its CPU per sample and the
history's size. Time limit: --limit seconds (default 600); it reports how far it got if it
runs out.

    python benchmarks/monitor_soak.py [--hours 24] [--step 1] [--limit 600] [--out DIR]

`--step S` takes a sample every S simulated seconds: `--hours 8760 --step 1800 --limit 1500`
is a year of the monitor in 17,520 samples (13 minutes here), every tier's rotation and
retention through it.
"""
import argparse
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from wirestamp import regmap
from wirestamp.device import StreamStats
from wirestamp.history import History, load
from wirestamp.monitor import LINE_PPS, Collector, Monitor, sample

T0 = 1_798_761_600.0        # 2027-01-01 00:00 UTC: the hours and days fall on file edges

STREAMS = 16
PER_STREAM = LINE_PPS / STREAMS
TRUTH = {"tx_packets": PER_STREAM, "rx_packets": PER_STREAM, "rx_bytes": 64 * PER_STREAM,
         "lost": 0, "reordered": 0, "duplicates": 0, "rx_frames": LINE_PPS,
         "tx_frames": LINE_PPS, "sched_late": LINE_PPS, "rx_fcs_errors": 1.0}


class SoakUnit:
    """What `monitor.sample` reads, as a unit running since `booted` (simulated seconds)
    would answer: every counter is its rate × the time since boot, in its hardware width."""

    def __init__(self):
        self.now = 0.0          # simulated seconds
        self.booted = 0.0

    def uptime(self):
        return self.now - self.booted

    @contextmanager
    def snapshot(self):         # every value here is of `now` already
        yield self

    def read_register(self, name):
        assert name == "TIME"
        return int(self.uptime() * 1e9)

    def counters(self):
        up = self.uptime()
        return {"rx_frames": int(LINE_PPS * up) % 2**48, "tx_frames": int(LINE_PPS * up),
                "sched_late": int(LINE_PPS * up) % 2**32, "rx_fcs_errors": int(up) % 2**48}

    def stream_stats(self, stream):
        n = int(PER_STREAM * self.uptime())
        return StreamStats(stream=stream, tx_packets=n, rx_packets=n, rx_bytes=64 * n, lost=0,
                           reordered=0, duplicates=0, latency_min_ns=1000,
                           latency_mean_ns=1500.0, latency_max_ns=2000,
                           latency_stddev_ns=10.0, jitter_ns=5.0)

    def histogram(self, stream, buckets):
        """Every packet so far in the 1,500 ns bucket."""
        counts = np.zeros(regmap.HIST_BUCKETS, dtype=np.uint64)
        counts[regmap.hist_bucket(1500)] = int(PER_STREAM * self.uptime())
        return counts


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--step", type=int, default=1,
                        help="simulated seconds between samples (default 1; at most 3600)")
    parser.add_argument("--limit", type=float, default=600)
    parser.add_argument("--out", help="the history's folder (default: a temporary one)")
    args = parser.parse_args()
    if not 1 <= args.step <= 3600 or 3600 % args.step:
        parser.error("--step: a whole number of seconds that divides an hour")
    with tempfile.TemporaryDirectory() as tmp:
        return soak(args, Path(args.out or tmp))


def soak(args, out):
    unit, monitor = SoakUnit(), Monitor(STREAMS)
    history = History(out, STREAMS)
    collector = Collector(monitor)
    samples, hour = int(args.hours * 3600) // args.step, 3600 // args.step
    restart_at = samples // 2
    began, cpu_began = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
    hourly, wrong, backwards, exported = [], 0, 0, {}
    done, interrupted = 0, False        # samples taken; Ctrl-C ends the run, with a report
    try:
        for i in range(samples):
            if time.monotonic() - began > args.limit:
                print(f"time limit: {i} of {samples} samples in {args.limit:.0f} s",
                      file=sys.stderr)
                break
            unit.now = (i + 1.0) * args.step
            if i == restart_at:
                unit.booted = unit.now - 0.5                # up again for half a second
            s = sample(unit, STREAMS, histograms=True)
            s.wall = T0 + unit.now
            rates = monitor.add(s)
            history.add(monitor, s)
            if i and i != restart_at:                       # a sample after a whole second
                for key, rate in rates.items():
                    truth = TRUTH[key[1]] if isinstance(key, tuple) else TRUTH[key]
                    one = 64 if "bytes" in str(key) else 1  # within one whole packet
                    wrong += abs(rate - truth) > one * 1.01 / args.step
            if i % max(1, 60 // args.step) == 0:            # a scrape a minute
                for family in collector.collect():
                    for s in family.samples:
                        key = (s.name, tuple(sorted(s.labels.items())))
                        if s.name.endswith("_total"):
                            backwards += s.value < exported.get(key, 0)
                            exported[key] = s.value
            if i % hour == 0:
                hourly.append(rss_mib())
            done = i + 1
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted: {done} of {samples} samples", file=sys.stderr)
    history.close()
    if not done:
        return 130 if interrupted else 1
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu_began
    rows = {tier: load(out, tier) for tier in ("1s", "1min", "1h")}
    counts = {tier: 0 if table is None else len(table) for tier, table in rows.items()}
    times = np.arange(1, done + 1) * args.step      # the samples' seconds since T0
    # A tier keeps a period's folder `keep` seconds after the period ends (history.TIERS):
    # after a day, the 1 s tier holds the last 24 hours and the hour that ended a day ago.
    day = 86_400

    def kept(rows, period, keep):
        # Expiry runs as a tier opens a period, at the time of the period's first row.
        opened = rows[rows // period == rows[-1] // period][0]
        return int(np.sum((rows // period + 1) * period + keep >= opened))
    minutes = times[np.r_[np.diff(times // 60) != 0, True]]     # a minute's row: its last
    expected = {"1s": kept(times, 3600, day), "1min": kept(minutes, day, 31 * day),
                "1h": len(np.unique(times // 3600))}
    p50 = rows["1h"].column("s0_latency_p50_ns").to_numpy(zero_copy_only=False)
    # 1,500 ns lies in the bucket 1,472-1,536 ns: the percentiles are within it.
    latency_wrong = int(np.sum((p50 < 1472) | (p50 > 1536)))
    size = {tier: sum(f.stat().st_size for f in (out / tier).rglob("*.parquet"))
            for tier in rows}
    print(f"{done:,} samples of {STREAMS} streams ({done * args.step / 3600:,.0f} simulated hours) "
          f"in {time.monotonic() - began:.1f} s; "
          f"CPU {cpu / done * 1e6:.0f} µs per sample")
    print(f"RSS per hour (MiB): first hour {hourly[1] if len(hourly) > 1 else hourly[0]:.2f}, "
          f"last {hourly[-1]:.2f}, growth {hourly[-1] - hourly[min(1, len(hourly) - 1)]:+.3f}, "
          f"highest {max(hourly[1:] or hourly):.2f}")
    tenths = [hourly[min(len(hourly) - 1, max(1, round(k * (len(hourly) - 1) / 10)))]
              for k in range(11)]
    print("RSS at each tenth of the run (MiB): " + " ".join(f"{v:.2f}" for v in tenths))
    print(f"rates off the truth: {wrong}; exported counters that went backwards: {backwards}; "
          f"restarts seen: {monitor.restarts}")
    print("history rows: " + ", ".join(f"{t} {counts[t]:,} (expected {expected[t]:,})"
                                       for t in counts) + f"; hourly p50 off its bucket: "
          f"{latency_wrong}")
    print("history on disk: " + ", ".join(f"{t} {size[t] / 2**20:.2f} MiB" for t in size))
    ok = not wrong and not backwards and monitor.restarts == (done > restart_at)
    if interrupted:     # the sample under way may or may not be in the history
        return 130
    return 0 if ok and counts == expected and not latency_wrong else 1


if __name__ == "__main__":
    sys.exit(main())
