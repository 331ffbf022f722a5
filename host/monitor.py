"""Long-run monitoring: the unit's counters and per-stream statistics sampled at a fixed
interval, extended to monotonic totals, shown live and exported to Prometheus
(text exposition format 0.0.4, through `prometheus_client`).

    wirestamp monitor --device URL [--interval 1s] [--listen 127.0.0.1:9420] [--duration D]

Counters never go backwards. The hardware counts in fixed widths (`counter_bits`: 48 bits
for the packet counters, 6 years at 1.49 Mpps), START zeroes the per-stream statistics, CLEAR
the transmit counters, and a unit that restarts zeroes everything (its TIME goes back). The
host keeps, per counter, the total of every value it has seen: a value below the last one
is a wrap when the counter can have gone round in the time since (at line rate), and a reset
otherwise, as Prometheus treats a counter that goes down; either way the total only grows.
Memory is one small dict per counter, whatever the run's length.

The history on disk is `history.py`'s; `wirestamp plot` draws it (`plots.history_figures`).
"""
import resource
import time
from dataclasses import dataclass, field

import numpy as np

from . import regmap

__all__ = ["CounterTotals", "Sample", "sample", "Monitor", "Collector", "counter_bits",
           "LINE_PPS", "own_usage"]

LINE_PPS = regmap.CLOCK_HZ / (regmap.MIN_FRAME + regmap.FRAME_OVERHEAD)   # 1,488,095
# The unit-wide counters exported, and the Prometheus name of each (`_total` added).
UNIT_COUNTERS = {
    "tx_frames": "tx_frames", "tx_bytes": "tx_bytes", "sched_late": "scheduler_late",
    "rx_frames": "rx_frames", "rx_bytes": "rx_bytes", "rx_fcs_errors": "rx_fcs_errors",
    "rx_errors": "rx_errors", "rx_runts": "rx_runts", "rx_giants": "rx_giants",
    "rx_preamble_errors": "rx_preamble_errors", "rx_other": "rx_other",
    "rx_ip_errors": "rx_ip_errors", "rx_ip_other": "rx_ip_other",
    "rx_foreign_udp": "rx_foreign_udp", "rx_signed": "rx_signed", "arp_rx": "arp_rx",
    "arp_tx": "arp_tx", "icmp_rx": "icmp_rx", "icmp_tx": "icmp_tx",
    "reply_dropped": "reply_dropped", "record_overflow": "record_overflow",
}
STREAM_COUNTERS = ("tx_packets", "rx_packets", "rx_bytes", "lost", "reordered", "duplicates")


def counter_bits(name, stream=False):
    """The width the hardware counts `name` (a unit counter, or with `stream` a per-stream
    statistic) in: it wraps at 2**bits."""
    if stream:
        return dict(regmap.STATS_FIELDS).get(name, regmap.COUNT_BITS)   # tx_packets: 48
    if name in ("tx_frames", "tx_bytes", "record_overflow"):
        return 64
    return 32 if name == "sched_late" else regmap.RX_COUNTER_BITS


def most_per_second(name):
    """The fastest a counter can go: bytes at one per byte time, anything else at the
    64-byte frame rate."""
    return regmap.CLOCK_HZ if "bytes" in name else LINE_PPS


class CounterTotals:
    """Monotonic totals of hardware counters. `update(key, value, bits, elapsed_s, rate)`
    returns the new total: the increase since the last value, modulo 2**bits when the
    counter can have wrapped in `elapsed_s` at `rate` per second, else (a reset) the value
    itself. `reset()` says every counter was zeroed (a unit restart, seen by the caller)."""

    def __init__(self):
        self._last, self.totals, self.resets = {}, {}, 0

    def update(self, key, value, bits, elapsed_s, rate=LINE_PPS):
        last = self._last.get(key)
        if last is None:
            step = value
        elif value >= last:
            step = value - last
        else:
            wrapped = value + (1 << bits) - last
            step = wrapped if wrapped <= rate * max(elapsed_s, 0) + 1 else value
        self._last[key] = value
        self.totals[key] = self.totals.get(key, 0) + step
        return self.totals[key]

    def reset(self):
        """Every counter went to 0 (the unit restarted): the next values count from 0."""
        self._last = {key: 0 for key in self._last}
        self.resets += 1


@dataclass
class Sample:
    """One reading of the unit: its clock (`time_ns`, from before the reads) and wall time,
    the unit-wide counters, and per stream its statistics (`StreamStats`)."""
    wall: float
    time_ns: int
    counters: dict
    streams: list = field(default_factory=list)
    read_s: float = 0.0             # how long the reads took (the sample's spread)
    histograms: dict = field(default_factory=dict)  # stream -> bucket counts (numpy)


def sample(device, streams, histograms=False):
    """A `Sample` of `device` with streams 0..`streams`-1, and with `histograms` each
    stream's latency buckets. TIME, the unit's counters and every stream's row are read
    in one held snapshot (`Device.snapshot`): all of one instant, whose TIME the rates over
    samples use (the jitter figures are read live). The histograms are read after it, live:
    a bucket's gain counts in the sample it is read in. The reads take `read_s`."""
    from .run import stream_histogram
    began = time.monotonic()
    with device.snapshot():
        now = device.read_register("TIME")
        counters = device.counters()
        rows = [device.stream_stats(i) for i in range(streams)]
    counts = {r.stream: stream_histogram(device, r) for r in rows if histograms and r.rx_packets}
    return Sample(wall=time.time(), time_ns=now, counters=counters, streams=rows,
                  read_s=time.monotonic() - began, histograms=counts)


def own_usage():
    """The process's resident memory (MiB) and CPU time so far (s)."""
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        rss = float("nan")
    return rss, time.process_time()


class Monitor:
    """Turns samples into monotonic totals and rates; holds only the last sample, and per
    stream its last histogram and the buckets gained since the sample before (`interval`:
    the histogram itself when START cleared it in between, which a bucket going down
    shows)."""

    def __init__(self, streams):
        self.streams = streams
        self.totals = CounterTotals()
        self.previous = None
        self.restarts = 0
        self.samples = 0
        self.gaps = 0               # samples lost to the link (the monitor reconnected)
        self.histograms, self.interval = {}, {}

    def add(self, s):
        """Take sample `s`; returns {name: rate per second} since the previous one."""
        elapsed = 0.0
        if self.previous is not None:
            if s.time_ns < self.previous.time_ns:       # the unit's clock went back: restart
                self.totals.reset()
                self.restarts += 1
                elapsed = s.time_ns / 1e9
            else:
                elapsed = (s.time_ns - self.previous.time_ns) / 1e9
        before = dict(self.totals.totals)
        for name, value in s.counters.items():
            if name in UNIT_COUNTERS:
                self.totals.update(name, value, counter_bits(name), elapsed,
                                   most_per_second(name))
        for row in s.streams:
            for name in STREAM_COUNTERS:
                value = getattr(row, name)
                self.totals.update((row.stream, name), max(value, 0),
                                   counter_bits(name, stream=True), elapsed,
                                   most_per_second(name))
        self.interval = {}
        for stream, counts in s.histograms.items():
            last = self.histograms.get(stream)
            self.interval[stream] = counts if last is None or np.any(counts < last) \
                else counts - last
            self.histograms[stream] = counts
        self.previous, self.samples = s, self.samples + 1
        if not elapsed:
            return {}
        return {key: (total - before.get(key, 0)) / elapsed
                for key, total in self.totals.totals.items()}


class Collector:
    """A `prometheus_client` collector of a `Monitor`'s totals and its last sample: counters
    `wirestamp_<name>_total` (per stream with a `stream` label), latency as a histogram
    from the unit's buckets, gauges for the configured rate, latency and jitter."""

    def __init__(self, monitor, rates=None):
        self.monitor = monitor
        self.rates = rates or {}                # stream -> configured pps

    def collect(self):
        from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                            HistogramMetricFamily)
        totals = self.monitor.totals.totals
        for name, exported in UNIT_COUNTERS.items():
            if name in totals:
                family = CounterMetricFamily(f"wirestamp_{exported}",
                                             f"{name.upper()} of the unit, extended to 64 bits "
                                             f"across wraps and restarts")
                family.add_metric([], totals[name])
                yield family
        for name in STREAM_COUNTERS:
            exported = {"tx_packets": "tx_packets", "rx_packets": "rx_packets",
                        "rx_bytes": "rx_bytes", "lost": "lost_packets",
                        "reordered": "reordered_packets",
                        "duplicates": "duplicate_packets"}[name]
            family = CounterMetricFamily(f"wirestamp_stream_{exported}",
                                         f"per-stream {name}, totalled across the runs "
                                         f"(START zeroes the unit's)", labels=["stream"])
            for stream in range(self.monitor.streams):
                if (stream, name) in totals:
                    family.add_metric([str(stream)], totals[(stream, name)])
            yield family
        restarts = CounterMetricFamily("wirestamp_unit_restarts",
                                       "times the unit's clock went back (a restart)")
        restarts.add_metric([], self.monitor.restarts)
        yield restarts
        gaps = CounterMetricFamily("wirestamp_monitor_link_gaps",
                                   "samples lost to the link (the monitor reconnected)")
        gaps.add_metric([], self.monitor.gaps)
        yield gaps
        last = self.monitor.previous
        if last is None:
            return
        gauges = {"latency_min_seconds": "latency_min_ns", "latency_max_seconds": "latency_max_ns",
                  "latency_mean_seconds": "latency_mean_ns", "jitter_seconds": "jitter_ns"}
        for exported, attr in gauges.items():
            family = GaugeMetricFamily(f"wirestamp_stream_{exported}",
                                       f"{attr[:-3]} of the current run, every packet",
                                       labels=["stream"])
            for row in last.streams:
                value = getattr(row, attr)
                if value is not None:
                    family.add_metric([str(row.stream)], value / 1e9)
            yield family
        if self.rates:
            family = GaugeMetricFamily("wirestamp_stream_configured_rate_pps",
                                       "the rate the stream was configured with",
                                       labels=["stream"])
            for stream, pps in self.rates.items():
                family.add_metric([str(stream)], pps)
            yield family
        for stream, counts in self.monitor.histograms.items():
            family = HistogramMetricFamily("wirestamp_stream_latency_seconds",
                                           "latency of every packet, the unit's buckets",
                                           labels=["stream"])
            cumulative, buckets = 0, []
            for bucket in range(regmap.HIST_OVERFLOW):
                cumulative += int(counts[bucket])
                if counts[bucket]:
                    buckets.append((f"{regmap.hist_lower_ns(bucket + 1) / 1e9:.9g}",
                                    cumulative))
            cumulative += int(counts[regmap.HIST_OVERFLOW])
            buckets.append(("+Inf", cumulative))
            row = next((r for r in last.streams if r.stream == stream), None)
            total = row.latency_mean_ns * row.rx_packets / 1e9 if row and row.rx_packets else 0
            family.add_metric([str(stream)], buckets, total)
            yield family
