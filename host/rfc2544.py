"""RFC 2544 (Benchmarking Methodology for Network Interconnect Devices) §26.1–26.4:
throughput, latency, frame loss rate and back-to-back frames, with the back-to-back update of
RFC 9004 (§3, the buffer time implied by the burst).

    from wirestamp import rfc2544
    with wirestamp.open(url) as dev:
        results = rfc2544.run(dev, rfc2544.Settings(dst_ip="10.0.0.1", dst_mac=...), out)

Every trial is one stream of the unit (`Device.configure`): learning frames first (§23), then
START, which clears every statistic, so each trial starts clean; each trial also takes a new
UDP source port. After the stream ends the trial waits for packets in flight (§23's two
seconds on the unit's clock, cut short once every frame sent is back), then reads the unit's
counters: loss is frames sent minus frames received (duplicates not counted as received).
The unit stamps every frame in hardware, so latency figures come from all the frames of a
trial, not the one tagged frame per trial the RFC asks for; the histogram gives the
percentiles.

The RFC's trial lengths are the defaults (`Settings`): 60 s for throughput and loss trials,
120 s for latency trials, 20 of them, and 50 back-to-back searches with bursts of up to 2 s.
`Settings.for_virtual_board()` shortens them to what the simulator runs in seconds, and the
report says so.
"""
import csv
import json
import math
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from . import regmap
from .device import LinkError
from .files import write_atomic
from .run import RFC2544_SETTLE_S, percentile, stop_streams, stream_histogram
from .signals import Interrupted, deferred
from .streams import Stream, line_rate_pps

__all__ = ["Settings", "run", "SIZES", "TESTS", "SCHEMA", "implied_buffer"]

SIZES = (64, 128, 256, 512, 1024, 1280, 1518)          # §9.1, Ethernet
TESTS = ("throughput", "latency", "loss", "back-to-back")
SCHEMA = {"name": "wirestamp.rfc2544", "version": 1}   # results.json (docs/rfc2544.md)
LEARNING_FRAMES = 4             # §23: sent (and answered) before every trial
LEARNING_PPS = 10_000
FIRST_PORT = 49152              # trial n sends from UDP port FIRST_PORT + n (mod 16384)
CONFIRMS = 3                    # a search's result that fails its full-length trial: search
                                # below it again, at most this many times


@dataclass
class Settings:
    """One RFC 2544 run. Rates are fractions of line rate; `accept_loss` is a fraction of the
    frames sent (0: the RFC's zero-loss throughput)."""
    dst_ip: str
    dst_mac: str = "ff:ff:ff:ff:ff:ff"
    dst_port: int = 5001
    src_ip: str = "192.168.0.2"
    src_mac: str = "02:77:73:00:00:01"
    sizes: tuple = SIZES
    tests: tuple = TESTS
    trial_s: float = 60.0               # §24: throughput and frame loss trials
    search_trial_s: float | None = None     # throughput search trials (None: trial_s); the
                                            # result is confirmed by one of trial_s
    resolution: float = 0.001           # the throughput search stops at this × line rate
    accept_loss: float = 0.0
    latency_trial_s: float = 120.0      # §26.2
    latency_trials: int = 20
    b2b_trial_s: float = 2.0            # §26.4: bursts of up to this long at line rate
    b2b_trials: int = 50
    settle_s: float = RFC2544_SETTLE_S
    shortened: bool = False             # trials shorter than the RFC's (the virtual board)

    @classmethod
    def for_virtual_board(cls, settle_s, **fields):
        """Trials the virtual board runs in well under a second each (it simulates about
        4 ms of the unit's time per second)."""
        short = dict(trial_s=0.005, latency_trial_s=0.005, latency_trials=3,
                     b2b_trial_s=0.001, b2b_trials=3, settle_s=settle_s, shortened=True)
        return cls(**{**short, **fields})

    def validate(self):
        """ValueError naming the setting, before anything touches the device."""
        sizes = tuple(self.sizes)
        if not sizes:
            raise ValueError("sizes: give at least one frame size")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int) or \
                    not regmap.MIN_FRAME <= size <= regmap.MAX_FRAME:
                raise ValueError(f"sizes: {size!r} is not a frame size in "
                                 f"{regmap.MIN_FRAME}..{regmap.MAX_FRAME} bytes")
        unknown = [t for t in self.tests if t not in TESTS]
        if unknown or not self.tests:
            raise ValueError(f"tests: {', '.join(map(repr, unknown)) or 'none given'}; "
                             f"choose from {', '.join(TESTS)}")
        if not 0 < self.resolution < 1:
            raise ValueError(f"resolution: {self.resolution * 100:g} % must be above 0 % "
                             f"and below 100 % of line rate")
        if not 0 <= self.accept_loss <= 1:
            raise ValueError(f"accept_loss: {self.accept_loss * 100:g} % is not in 0..100 %")
        for name in ("trial_s", "latency_trial_s", "b2b_trial_s", "settle_s"):
            value = getattr(self, name)
            if not value > 0 or math.isinf(value):
                raise ValueError(f"{name}: {value} s must be a positive duration")
        if self.search_trial_s is not None and not 0 < self.search_trial_s <= self.trial_s:
            raise ValueError(f"search_trial_s: {self.search_trial_s} s must be above 0 and "
                             f"at most the trial's {self.trial_s} s")
        for name in ("latency_trials", "b2b_trials"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) \
                    or getattr(self, name) < 1:
                raise ValueError(f"{name}: {getattr(self, name)!r} must be a count of 1 or more")
        Stream(self.dst_ip, dst_port=self.dst_port, dst_mac=self.dst_mac, src_ip=self.src_ip,
               src_mac=self.src_mac, count=1).validate()
        return self

    def notes(self):
        """What differs from the RFC, for the console and the report."""
        notes = []
        rfc = Settings(self.dst_ip)
        short = [f"{label} {getattr(self, name):g} s (RFC: {getattr(rfc, name):g} s)"
                 for name, label in (("trial_s", "trials"), ("latency_trial_s", "latency trials"),
                                     ("b2b_trial_s", "back-to-back bursts of up to"))
                 if getattr(self, name) < getattr(rfc, name)]
        short += [f"{label} {getattr(self, name)} (RFC: at least {getattr(rfc, name)})"
                  for name, label in (("latency_trials", "latency repeats"),
                                      ("b2b_trials", "back-to-back repeats"))
                  if getattr(self, name) < getattr(rfc, name)]
        if short:
            notes.append("shorter than RFC 2544 asks: " + "; ".join(short) +
                         (" (the virtual board's defaults)" if self.shortened else ""))
        if self.accept_loss:
            notes.append(f"throughput accepts {self.accept_loss * 100:g} % loss: a partial "
                         f"drop rate, not the RFC's zero-loss throughput")
        return notes


@dataclass
class Trial:
    size: int
    offered_pps: float
    tx: int
    rx: int
    lost: int
    duplicates: int
    stats: object = field(repr=False, default=None)
    histogram: object = field(repr=False, default=None)

    @property
    def loss(self):
        return self.lost / self.tx if self.tx else 0.0

    def row(self):
        return {"size": self.size, "offered_pps": self.offered_pps, "tx": self.tx,
                "rx": self.rx, "lost": self.lost, "loss_percent": 100 * self.loss}


class _Runner:
    """Runs trials on one device, counting them (each gets its own source port)."""
    def __init__(self, device, settings, progress, stop):
        self.device, self.settings, self.progress = device, settings, progress
        self.stop = stop            # signals.Deferred: checked while a trial runs
        self.trials = 0

    def stream(self, size, rate, count):
        s = self.settings
        return Stream(s.dst_ip, dst_port=s.dst_port, dst_mac=s.dst_mac, src_ip=s.src_ip,
                      src_mac=s.src_mac, src_port=FIRST_PORT + self.trials % 16384,
                      frame_size=size, rate=rate, count=count)

    def _send(self, stream, histogram=False):
        """Send `stream` (counted), wait until it ends and its frames are back or the settle
        time on the unit's clock has passed; its statistics (and histogram)."""
        device = self.device
        device.configure([stream])
        self.stop.raise_if_requested()
        device.start()
        while device.running():
            self.stop.raise_if_requested()      # the caller stops the stream
            time.sleep(0.01)
        ended = device.read_register("TIME")
        while True:
            stats = device.stream_stats(0, ended=True)
            if stats.rx_packets - stats.duplicates >= stats.tx_packets or \
                    device.read_register("TIME") - ended >= self.settings.settle_s * 1e9:
                break
        return stats, stream_histogram(device, stats) if histogram else None

    def trial(self, size, rate, seconds=None, count=None, histogram=False, label=""):
        """One trial at `rate` (pps, or "line"), `seconds` long or `count` frames."""
        line = line_rate_pps([size])
        pps = line if rate == "line" else Fraction(rate)
        if count is None:
            count = max(1, round(pps * Fraction(seconds)))
        self.progress(f"{label}: {size} B, {float(pps):,.0f} pps, {count:,} frames "
                      f"(trial {self.trials + 1})")
        self._send(self.stream(size, Fraction(LEARNING_PPS), LEARNING_FRAMES))
        stats, counts = self._send(self.stream(size, rate, count), histogram)
        self.trials += 1
        return Trial(size=size, offered_pps=float(pps), tx=stats.tx_packets,
                     rx=stats.rx_packets - stats.duplicates, lost=stats.lost,
                     duplicates=stats.duplicates, stats=stats, histogram=counts)


def _throughput(runner, size):
    """§26.1: binary search between 0 and line rate for the highest rate with loss ≤ the
    accepted loss, to the resolution; the result confirmed by a full-length trial."""
    s = runner.settings
    line = line_rate_pps([size])
    search_s = s.search_trial_s or s.trial_s
    passes = lambda trial: trial.loss <= s.accept_loss      # noqa: E731
    trials, lo, hi = [], Fraction(0), line
    for _ in range(CONFIRMS):
        candidate = None
        if hi == line:
            trial = runner.trial(size, "line", search_s, label="throughput")
            trials.append(trial)
            if passes(trial):
                candidate = line
        while candidate is None and hi - lo > line * Fraction(s.resolution):
            mid = (lo + hi) / 2
            trial = runner.trial(size, mid, search_s,
                                 label=f"throughput {float(lo):,.0f}-{float(hi):,.0f} pps")
            trials.append(trial)
            lo, hi = (mid, hi) if passes(trial) else (lo, mid)
        if candidate is None:
            candidate = lo
        if candidate == 0:
            return {"size": size, "rate": candidate, "confirmed": None, "trials": trials}
        if search_s == s.trial_s:       # the search's own trial at that rate was full length
            final = next(t for t in reversed(trials) if t.offered_pps == float(candidate))
        else:
            final = runner.trial(size, candidate, s.trial_s, label="throughput, confirming")
            trials.append(final)
        if passes(final):
            return {"size": size, "rate": candidate, "confirmed": final, "trials": trials}
        lo, hi = Fraction(0), candidate          # it failed at full length: search below it
    return {"size": size, "rate": Fraction(0), "confirmed": None, "trials": trials}


def _latency(runner, size, rate):
    """§26.2: `latency_trials` trials at the throughput rate; every frame of each."""
    s = runner.settings
    rate_pps = float(rate)
    trials = [runner.trial(size, rate, s.latency_trial_s, histogram=True, label="latency")
              for _ in range(s.latency_trials)]
    stats = [t.stats for t in trials if t.stats.rx_packets]
    if not stats:
        return {"size": size, "rate_pps": rate_pps, "frames": 0, "trials": trials}
    histogram = np.zeros(regmap.HIST_BUCKETS, dtype=np.uint64)
    for trial in trials:
        if trial.histogram is not None:
            histogram += trial.histogram
    low, high = min(x.latency_min_ns for x in stats), max(x.latency_max_ns for x in stats)
    frames = sum(x.rx_packets for x in stats)
    entry = {"size": size, "rate_pps": rate_pps, "frames": frames, "min_ns": low,
             # §26.2 reports the average over the trials; every trial's mean is of all its frames
             "mean_ns": float(np.mean([x.latency_mean_ns for x in stats])),
             "max_ns": high,
             "stddev_ns": _pooled_stddev(stats),
             # RFC 3550's jitter at each trial's end, averaged; RFC 3393's IPDV over all
             "jitter_ns": _mean([x.jitter_ns for x in stats]),
             "ipdv_min_ns": min((x.ipdv_min_ns for x in stats if x.ipdv_min_ns is not None),
                                default=None),
             "ipdv_max_ns": max((x.ipdv_max_ns for x in stats if x.ipdv_max_ns is not None),
                                default=None),
             "trials": trials}
    for name, q in (("p50_ns", 50), ("p90_ns", 90), ("p99_ns", 99), ("p999_ns", 99.9)):
        entry[name] = percentile(histogram, q, low, high)
    return entry


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _pooled_stddev(stats):
    n = sum(x.rx_packets for x in stats)
    mean = sum(x.latency_mean_ns * x.rx_packets for x in stats) / n
    squares = sum((x.latency_stddev_ns ** 2 + x.latency_mean_ns ** 2) * x.rx_packets
                  for x in stats)
    return math.sqrt(max(squares / n - mean ** 2, 0.0))


def _loss(runner, size):
    """§26.3: from 100 % of line rate down in 10 % steps until two successive trials lose
    nothing."""
    s, line, steps, clean = runner.settings, line_rate_pps([size]), [], 0
    for percent in range(100, 0, -10):
        trial = runner.trial(size, "line" if percent == 100 else line * percent / 100,
                             s.trial_s, label=f"frame loss at {percent} %")
        steps.append({"percent_of_line": percent, **trial.row()})
        clean = clean + 1 if trial.lost == 0 else 0
        if clean == 2:
            break
    return {"size": size, "steps": steps}


def _longest_burst(runner, size, longest, guess=None):
    """The longest burst at line rate (≤ `longest` frames) that loses nothing: a binary
    search on its length. A `guess` from an earlier repeat is checked first (it passes and
    one frame more fails: the same answer, in two trials)."""
    passes = lambda n: runner.trial(size, "line", count=n,                     # noqa: E731
                                    label=f"back-to-back {n:,} frames").lost == 0
    if guess is not None and guess < longest:
        if passes(guess) and not passes(guess + 1):
            return guess
    if passes(longest):
        return longest
    lo, hi = 0, longest                       # lo passes (0 frames lose nothing), hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if passes(mid) else (lo, mid)
    return lo


def implied_buffer(frames, line_pps, throughput_pps=None):
    """RFC 9004 §3: the buffer time implied by a back-to-back burst of `frames` at the line
    rate, and the corrected one, for a DUT that forwards at `throughput_pps` while the burst
    fills its buffer: corrected = implied × (1 − throughput / line). The corrected time at
    line rate is the buffer's size in frames."""
    implied = frames / line_pps
    corrected = None if throughput_pps is None else implied * (1 - throughput_pps / line_pps)
    return implied, corrected


def _back_to_back(runner, size, throughput_pps):
    """§26.4 and RFC 9004: `b2b_trials` searches for the longest burst without loss."""
    s, line = runner.settings, float(line_rate_pps([size]))
    longest = max(1, round(line * s.b2b_trial_s))
    bursts, guess = [], None
    for _ in range(s.b2b_trials):
        guess = _longest_burst(runner, size, longest, guess)
        bursts.append(guess)
    mean = float(np.mean(bursts))
    implied, corrected = implied_buffer(mean, line, throughput_pps)
    return {"size": size, "frames_mean": mean, "frames_min": min(bursts),
            "frames_max": max(bursts), "longest_tried": longest,
            "buffer_time_s": implied, "corrected_buffer_time_s": corrected,
            "buffer_frames": None if corrected is None else corrected * line, "bursts": bursts}


def run(device, settings, out=None, progress=None):
    """Run `settings.tests` for every size on `device`; results (a dict, results.json's
    content). With `out`, write results.json, the CSVs, the plots and report.md there.
    `progress(text)` hears each trial as it starts. A signal (`signals.deferred`: SIGINT,
    SIGTERM) or a `LinkError` stops the stream (`run.stop_streams`), writes what the finished
    tests found, marked `interrupted` or `link_lost`, and ends the run with `Interrupted` or
    the LinkError."""
    settings.validate()
    with deferred() as stop:
        runner = _Runner(device, settings, progress or (lambda text: None), stop)
        device.set_record_sample(0)                 # counters and histograms see every frame
        results = {"schema": SCHEMA, "settings": asdict(settings), "notes": settings.notes(),
                   "unit": asdict(device.identify()),
                   "throughput": [], "latency": [], "loss": [], "back_to_back": []}
        failure = None
        try:
            for size in settings.sizes:
                found = None                # latency runs at the throughput found first
                if "throughput" in settings.tests or "latency" in settings.tests:
                    found = _throughput(runner, size)
                    results["throughput"].append(_throughput_entry(found))
                if "latency" in settings.tests and found["rate"]:
                    results["latency"].append(_plain(_latency(runner, size, found["rate"])))
                if "loss" in settings.tests:
                    results["loss"].append(_loss(runner, size))
                if "back-to-back" in settings.tests:
                    results["back_to_back"].append(_back_to_back(
                        runner, size, float(found["rate"]) if found else None))
        except (Interrupted, LinkError) as error:   # stop the stream, keep what was found
            failure = error
        results["stop"] = stop_streams(device)
        with suppress(LinkError):
            device.set_record_sample(1)
        results["trials"] = runner.trials
        results["interrupted"] = stop.requested
        results["link_lost"] = isinstance(failure, LinkError)
        if failure is not None and not isinstance(failure, Interrupted):
            results["error"] = str(failure)
        if out is not None:
            write(results, out)
    if failure is not None:
        raise failure
    stop.raise_if_requested()
    return results


def _throughput_entry(found):
    size, rate = found["size"], float(found["rate"])
    line = float(line_rate_pps([size]))
    confirmed = found["confirmed"]
    return {"size": size, "rate_pps": rate, "line_pps": line,
            "percent_of_line": 100 * rate / line,
            "mbps": rate * size * 8 / 1e6,                      # frames, FCS included
            "l1_mbps": rate * (size + regmap.FRAME_OVERHEAD) * 8 / 1e6,   # the wire's bits
            "confirmed": confirmed.row() if confirmed else None,
            "search": [t.row() for t in found["trials"]]}


def _plain(entry):
    entry = dict(entry)
    entry["trials"] = [{**t.row(), "min_ns": t.stats.latency_min_ns,
                        "mean_ns": t.stats.latency_mean_ns, "max_ns": t.stats.latency_max_ns}
                       for t in entry["trials"]]
    return entry


def write(results, out):
    """results.json, one CSV per test, PNG plots and report.md in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "results.json", json.dumps(results, indent=2))
    tables = {
        "throughput.csv": [{k: v for k, v in e.items() if k not in ("confirmed", "search")}
                           for e in results["throughput"]],
        "latency.csv": [{k: v for k, v in e.items() if k != "trials"}
                        for e in results["latency"]],
        "loss.csv": [step for e in results["loss"] for step in e["steps"]],
        "back_to_back.csv": [{k: v for k, v in e.items() if k != "bursts"}
                             for e in results["back_to_back"]],
    }
    for name, rows in tables.items():
        if rows:
            with open(out / name, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    from .plots import rfc2544_figures
    figures = rfc2544_figures(results, out)
    write_atomic(out / "report.md", report(results, figures))


def report(results, figures):
    """report.md: the settings, the notes, a table per test and its figure."""
    s = results["settings"]
    lines = ["# RFC 2544 report", "",
             f"Unit: {results['unit']['version']}, "
             f"{results['unit']['clock_hz'] / 1e6:g} MHz clock. DUT {s['dst_ip']} "
             f"({s['dst_mac']}), UDP port {s['dst_port']}; {results['trials']} trials.", "",
             "wirestamp stamps every frame in hardware: the latency figures are of every frame "
             "of every trial, where RFC 2544 §26.2 tags one frame per trial.", ""]
    lines += [f"- **Note:** {note}" for note in results["notes"]]
    if results.get("interrupted"):
        lines += ["- **Interrupted:** the run was stopped; the tables hold the tests that "
                  "finished before it."]
    if results["throughput"]:
        lines += ["", "## Throughput (§26.1)", "",
                  f"Binary search to {s['resolution'] * 100:g} % of line rate, accepting "
                  f"{s['accept_loss'] * 100:g} % loss.", "",
                  "| frame (B) | frames/s | Mb/s (frames) | Mb/s (wire) | % of line | line frames/s |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {e['size']} | {e['rate_pps']:,.0f} | {e['mbps']:,.1f} | {e['l1_mbps']:,.1f}"
                  f" | {e['percent_of_line']:.2f} | {e['line_pps']:,.0f} |"
                  for e in results["throughput"]]
    if results["latency"]:
        lines += ["", "## Latency (§26.2)", "",
                  "Jitter: RFC 3550's at each trial's end, averaged; IPDV (RFC 3393): the "
                  "least and greatest change in latency between consecutive frames.", "",
                  "| frame (B) | at frames/s | frames | min (ns) | mean (ns) | p50 | p99 | "
                  "p99.9 | max (ns) | jitter (ns) | IPDV (ns) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {e['size']} | {e['rate_pps']:,.0f} | {e['frames']:,} | {e.get('min_ns')} | "
                  f"{e.get('mean_ns', 0):,.1f} | {e.get('p50_ns')} | {e.get('p99_ns')} | "
                  f"{e.get('p999_ns')} | {e.get('max_ns')} | "
                  f"{'' if e.get('jitter_ns') is None else format(e['jitter_ns'], ',.1f')} | "
                  f"{e.get('ipdv_min_ns')}..{e.get('ipdv_max_ns')} |" for e in results["latency"]]
    if results["loss"]:
        lines += ["", "## Frame loss rate (§26.3)", "",
                  "| frame (B) | % of line | frames/s | sent | lost | loss % |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {e['size']} | {st['percent_of_line']} | {st['offered_pps']:,.0f} | "
                  f"{st['tx']:,} | {st['lost']:,} | {st['loss_percent']:.3f} |"
                  for e in results["loss"] for st in e["steps"]]
    if results["back_to_back"]:
        lines += ["", "## Back-to-back frames (§26.4, RFC 9004)", "",
                  "| frame (B) | mean burst | min | max | longest tried | buffer time (µs) | "
                  "corrected (µs) |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {e['size']} | {e['frames_mean']:,.1f} | {e['frames_min']:,} | "
                  f"{e['frames_max']:,} | {e['longest_tried']:,} | "
                  f"{e['buffer_time_s'] * 1e6:,.2f} | "
                  f"{'' if e['corrected_buffer_time_s'] is None else format(e['corrected_buffer_time_s'] * 1e6, ',.2f')} |"
                  for e in results["back_to_back"]]
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"

