"""The monitor over 24 hours of a unit in fast-forward: a stand-in device at 1.49 Mpps on 16
streams, one sample per simulated second (86,400), SCHED_LATE wrapping its 32 bits every
48 minutes, and one restart at hour 12. It checks every rate against the truth and that the
exported counters never go backwards, and prints the monitor's RSS per hour and its CPU per
sample. Time limit: --limit seconds (default 600); it reports how far it got if it runs out.

    python benchmarks/monitor_soak.py [--hours 24] [--limit 600]
"""
import argparse
import resource
import sys
import time

from wirestamp.device import StreamStats
from wirestamp.monitor import LINE_PPS, Collector, Monitor, sample

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


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--limit", type=float, default=600)
    args = parser.parse_args()
    unit, monitor = SoakUnit(), Monitor(STREAMS)
    collector = Collector(monitor)
    samples = int(args.hours * 3600)
    restart_at = samples // 2
    began, cpu_began = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
    hourly, wrong, backwards, exported = [], 0, 0, {}
    for i in range(samples):
        if time.monotonic() - began > args.limit:
            print(f"time limit: {i} of {samples} samples in {args.limit:.0f} s", file=sys.stderr)
            break
        unit.now = i + 1.0
        if i == restart_at:
            unit.booted = unit.now - 0.5                # up again for half a second
        rates = monitor.add(sample(unit, STREAMS))
        if i and i != restart_at:                       # a sample after a whole second
            for key, rate in rates.items():
                truth = TRUTH[key[1]] if isinstance(key, tuple) else TRUTH[key]
                one = 64 if "bytes" in str(key) else 1  # within one whole packet
                wrong += abs(rate - truth) > one * 1.01
        if i % 60 == 0:                                 # a scrape a minute
            for family in collector.collect():
                for s in family.samples:
                    key = (s.name, tuple(sorted(s.labels.items())))
                    if s.name.endswith("_total"):
                        backwards += s.value < exported.get(key, 0)
                        exported[key] = s.value
        if i % 3600 == 0:
            hourly.append(rss_mib())
    done = i + 1
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu_began
    print(f"{done:,} samples of {STREAMS} streams in {time.monotonic() - began:.1f} s; "
          f"CPU {cpu / done * 1e6:.0f} µs per sample")
    print(f"RSS per hour (MiB): first hour {hourly[1] if len(hourly) > 1 else hourly[0]:.2f}, "
          f"last {hourly[-1]:.2f}, growth {hourly[-1] - hourly[min(1, len(hourly) - 1)]:+.3f}")
    print(f"rates off the truth: {wrong}; exported counters that went backwards: {backwards}; "
          f"restarts seen: {monitor.restarts}")
    return 0 if not wrong and not backwards and monitor.restarts == (done > restart_at) else 1


if __name__ == "__main__":
    sys.exit(main())
