"""The monitor's history on disk: every sample in Parquet, and a downsampled copy that keeps
years in little space, the way RRDtool does.

    DIR/1s/2026-12-01T17/171000.parquet   a row per sample: a folder per UTC hour, a file
                                          per 10 minutes, kept a day
    DIR/1min/2026-12-01/170059.parquet    a row per minute: a folder per UTC day, a file per
                                          hour, kept 31 days
    DIR/1h/2026-12/01T005959.parquet      a row per hour: a folder per UTC month, a file per
                                          week, kept 10 years

A row holds, at its time, the monitor's monotonic totals of every counter (`monitor.py`), so
a rate over any two rows is the difference over the time between them, whatever the tier.
It also holds what can only be summed in the moment: per stream the latency p50, p99 and
maximum of the packets since the row before, exact from the hardware histogram's buckets
(summed over the minute or the hour in the coarser tiers), the RFC 3550 jitter, the unit's
clock, and the monitor's own RSS and CPU time (the proof that it does not grow).

Files are written whole, to a temporary name then renamed: 10 minutes' rows of the 1 s
tier at a time, an hour's of the 1 min tier, a week's of the 1 h tier. A file on disk is
therefore always complete: a monitor killed without warning loses at most the last 10
minutes of samples (and the rows of the coarse tiers not yet written, which the finer
tiers hold), and a full disk leaves what was written. No file is ever read back, and the
rows waiting for their file sit in columns allocated at the start, so the monitor's memory
does not grow with the hour, the day or the month. Periods that ended more than the tier's
`keep` ago are deleted at each rotation, so disk use is bounded
(docs/monitor.md has the sizes).
"""
import datetime
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import regmap
from .monitor import STREAM_COUNTERS, UNIT_COUNTERS, own_usage
from .run import percentiles

__all__ = ["Tier", "TIERS", "History", "HistoryError", "load", "window"]

DAY = 86_400


class HistoryError(Exception):
    """The history cannot be written (an unwritable folder, a full disk)."""


@dataclass(frozen=True)
class Tier:
    name: str
    step: int            # seconds a row stands for; 0: every sample
    period: str          # one folder per "hour", "day" or "month" (UTC)
    keep: int            # seconds a period is kept after it ends
    part: int            # seconds of rows in each file of the period's folder

    @property
    def rows(self):
        """The most rows a file takes: a part's steps (its seconds in the 1 s tier, so that
        samples faster than a second make more files, not more memory)."""
        return self.part // max(self.step, 1)


# A file's rows: enough that Parquet's per-file cost (a footer for 185 columns with 16
# streams) is small beside them, few enough that a monitor killed without warning loses
# little, and that the rows waiting take little memory: 10 minutes of samples, an hour of
# minutes (the 1 s tier still has them), a week of hours (the 1 min tier still has them).
TIERS = (Tier("1s", 0, "hour", DAY, part=600),
         Tier("1min", 60, "day", 31 * DAY, part=3600),
         Tier("1h", 3600, "month", 3653 * DAY, part=7 * DAY))
LATENCY = (("p50", 50), ("p99", 99), ("max", 100))
_FORMAT = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}
_PART = {"hour": "%H%M%S", "day": "%H%M%S", "month": "%dT%H%M%S"}     # a file's name in it


def _utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


def _period_end(start, period):
    if period == "hour":
        return start + datetime.timedelta(hours=1)
    if period == "day":
        return start + datetime.timedelta(days=1)
    return (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def _period_start(name, period):
    return datetime.datetime.strptime(name, _FORMAT[period]).replace(
        tzinfo=datetime.timezone.utc)


def _periods(folder, tier):
    """[(folder, period start)] of a tier's periods."""
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not path.is_dir():
            continue
        try:
            found.append((path, _period_start(path.name, tier.period)))
        except ValueError:
            continue                    # not one of ours
    return found


def columns(streams):
    """The columns of a row, in order: time and bookkeeping, the unit's totals, then per
    stream its totals, latency and jitter (`s<n>_<name>`)."""
    names = ["time", "samples", "unit_ns", "read_ms", "restarts", "gaps", "rss_mib", "cpu_s"]
    names += list(UNIT_COUNTERS)
    for stream in range(streams):
        names += [f"s{stream}_{c}" for c in STREAM_COUNTERS]
        names += [f"s{stream}_latency_{name}_ns" for name, _ in LATENCY]
        names.append(f"s{stream}_jitter_ns")
    return names


class _Row:
    """A row being gathered: the samples of one step of a tier (or one sample). One per
    tier, used again for each row (`reset`), its bucket counts summed in place: a new
    array per sample and stream left the heap fragmenting."""

    def __init__(self, streams):
        self.streams = streams
        self.counts = np.zeros((streams, regmap.HIST_BUCKETS), dtype=np.uint64)
        self.reset()

    def reset(self, key=None):
        self.key, self.values, self.samples, self.time_s = key, {}, 0, None
        self.counted = set()        # streams whose `counts` row holds this row's buckets
        self.highest = {}           # stream -> the run's exact maximum latency
        self.jitter = {}            # stream -> [sum, n]

    def add(self, time_s, values, histograms, highest, jitter):
        self.samples, self.time_s = self.samples + 1, time_s
        rss = max(values["rss_mib"], self.values.get("rss_mib", 0.0))
        read = max(values["read_ms"], self.values.get("read_ms", 0.0))
        self.values.update(values, rss_mib=rss, read_ms=read)   # totals: the last ones
        for stream, counts in histograms.items():
            if stream in self.counted:
                np.add(self.counts[stream], counts, out=self.counts[stream])
            elif stream < self.streams:
                self.counts[stream] = counts
                self.counted.add(stream)
        for stream, value in highest.items():
            self.highest[stream] = max(value, self.highest.get(stream, value))
        for stream, value in jitter.items():
            total = self.jitter.setdefault(stream, [0.0, 0])
            total[0], total[1] = total[0] + value, total[1] + 1

    def finish(self):
        """The row, at the time of its last sample (as its totals are)."""
        row = dict(self.values, time=round(self.time_s * 1000), samples=self.samples)
        for stream in range(self.streams):
            values = [None] * len(LATENCY) if stream not in self.counted else percentiles(
                self.counts[stream], [q for _, q in LATENCY], None, self.highest.get(stream))
            for (name, _), value in zip(LATENCY, values):
                row[f"s{stream}_latency_{name}_ns"] = value
            total = self.jitter.get(stream)
            row[f"s{stream}_jitter_ns"] = total[0] / total[1] if total else None
        return row


class _Pending:
    """A tier's rows waiting for their file, in columns allocated once: a row's values are
    copied in, so the waiting rows hold no Python objects and take the same memory from the
    first row of a run to the last. (Waiting rows kept as dicts, a week of them in the 1 h
    tier, grew the monitor's RSS 2 MiB over a week: docs/monitor.md.)"""

    def __init__(self, names, capacity):
        self.names, self.capacity, self.n = names, capacity, 0
        self.real = [_is_float(name) for name in names]
        # A column a row of `ints` or `floats` (so a column is contiguous), and where it is.
        self.where = [(real, sum(self.real[:i]) if real else i - sum(self.real[:i]))
                      for i, real in enumerate(self.real)]
        self.ints = np.zeros((self.real.count(False), capacity), dtype=np.int64)
        self.floats = np.zeros((self.real.count(True), capacity), dtype=np.float64)
        self.null = np.zeros((len(names), capacity), dtype=bool)

    def append(self, row):
        values = [row.get(name) for name in self.names]
        null = [value is None for value in values]
        self.null[:, self.n] = null
        self.ints[:, self.n] = [0 if gone else value
                                for value, gone, real in zip(values, null, self.real) if not real]
        self.floats[:, self.n] = [0.0 if gone else value
                                  for value, gone, real in zip(values, null, self.real) if real]
        self.n += 1

    def table(self, schema):
        """The waiting rows as a `pyarrow.Table` (copied out), and the buffer emptied."""
        import pyarrow as pa
        columns = [pa.array((self.floats if real else self.ints)[j, :self.n].copy(),
                            type=field.type, mask=self.null[i, :self.n].copy())
                   for i, ((real, j), field) in enumerate(zip(self.where, schema))]
        self.n = 0
        return pa.Table.from_arrays(columns, schema=schema)


def _is_float(name):
    return name.endswith(("_mib", "_s", "_ms", "jitter_ns"))


class _File:
    """The open period of one tier: its folder, and the rows not yet written (in the tier's
    `_Pending` columns), which go into a new file of the folder once they span the tier's
    `part` seconds or fill its `rows`. Files are written whole and never read back, so
    memory does not grow with the period."""

    def __init__(self, folder, tier, name, pending):
        import pyarrow as pa
        self.path = folder / name
        self.tier, self.name, self.pending, self.first = tier, name, pending, None
        self.schema = pa.schema([pa.field("time", pa.timestamp("ms", tz="UTC"))] + [
            pa.field(name, pa.float64() if _is_float(name) else pa.int64())
            for name in pending.names[1:]])

    def add(self, row):
        """Take `row`, after writing those waiting if they span the tier's part or fill it."""
        if self.first is not None and (row["time"] - self.first >= self.tier.part * 1000
                                       or self.pending.n == self.pending.capacity):
            self.flush()
        if self.first is None:
            self.first = row["time"]
        self.pending.append(row)

    def flush(self):
        import pyarrow.parquet as pq
        if not self.pending.n:
            return
        table = self.pending.table(self.schema)
        first = _utc(self.first / 1000).strftime(_PART[self.tier.period])
        target, n = self.path / f"{first}.parquet", 1
        while target.exists():          # a monitor started again within the second
            target, n = self.path / f"{first}-{n}.parquet", n + 1
        tmp = target.with_suffix(".tmp")
        try:
            self.path.mkdir(exist_ok=True)
            # No statistics or dictionaries: they were a third of a small file.
            pq.write_table(table, tmp, compression="zstd", write_statistics=False,
                           use_dictionary=False)
            os.replace(tmp, target)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise HistoryError(f"cannot write {target}: {error.strerror or error}") from None
        self.first = None


class History:
    """Appends a `Monitor`'s samples to the tiers in `folder`; `close()` writes what is
    pending. Memory, allocated here and the same for the whole run: each tier's columns for
    a file's rows (`Tier.rows`: 600 + 60 + 168 rows, 9 bytes a value: 1.4 MB with 16
    streams) and one row being gathered per tier."""

    def __init__(self, folder, streams, tiers=TIERS):
        import pyarrow as pa
        # pyarrow's default allocator (mimalloc) kept the pages each write freed, and the
        # monitor's RSS grew with them; the system's allocator gives them back.
        pa.set_memory_pool(pa.system_memory_pool())
        self.folder, self.streams, self.tiers = Path(folder), streams, tiers
        self.names = columns(streams)
        self.files = {}
        self.rows = {tier.name: _Row(streams) for tier in tiers}
        self.pending = {tier.name: _Pending(self.names, tier.rows) for tier in tiers}
        try:
            for tier in tiers:
                (self.folder / tier.name).mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise HistoryError(f"--out {folder}: {error.strerror or error}") from None

    def add(self, monitor, s):
        """Take `monitor`'s state after it added sample `s`."""
        rss, cpu = own_usage()
        values = {"unit_ns": s.time_ns, "read_ms": s.read_s * 1e3, "restarts": monitor.restarts,
                  "gaps": monitor.gaps, "rss_mib": rss, "cpu_s": cpu}
        totals = monitor.totals.totals
        for name in UNIT_COUNTERS:
            values[name] = totals.get(name)
        for stream in range(self.streams):
            for name in STREAM_COUNTERS:
                values[f"s{stream}_{name}"] = totals.get((stream, name))
        highest = {r.stream: r.latency_max_ns for r in s.streams
                   if r.latency_max_ns is not None}
        jitter = {r.stream: r.jitter_ns for r in s.streams if r.jitter_ns is not None}
        for tier in self.tiers:
            key = int(s.wall) if not tier.step else int(s.wall // tier.step) * tier.step
            row = self.rows[tier.name]
            if row.samples and row.key != key:
                self._emit(tier)
            if not row.samples:
                row.reset(key)
            row.add(s.wall, values, monitor.interval, highest, jitter)
            if not tier.step:
                self._emit(tier)

    def _emit(self, tier):
        row = self.rows[tier.name].finish()
        self.rows[tier.name].reset()
        name = _utc(row["time"] / 1000).strftime(_FORMAT[tier.period])
        current = self.files.get(tier.name)
        if current is None or current.name != name:
            if current is not None:
                current.flush()
            current = self.files[tier.name] = _File(self.folder / tier.name, tier, name,
                                                    self.pending[tier.name])
            self._expire(tier, _utc(row["time"] / 1000))
        current.add(row)

    def _expire(self, tier, now):
        for path, start in _periods(self.folder / tier.name, tier):
            if (now - _period_end(start, tier.period)).total_seconds() > tier.keep:
                shutil.rmtree(path, ignore_errors=True)

    def close(self):
        """Write every tier's rows so far, the partly gathered step included."""
        for tier in self.tiers:
            if self.rows[tier.name].samples:
                self._emit(tier)
        for current in self.files.values():
            current.flush()


def load(folder, tier, start=None, end=None):
    """The rows of `tier` (a name of TIERS) in `folder` between `start` and `end` (Unix
    seconds, None: open), sorted by time, as a `pyarrow.Table` (None when there are none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    spec = next(t for t in TIERS if t.name == tier)
    tables = []
    for path, first in _periods(Path(folder) / tier, spec):
        if end is not None and first.timestamp() > end:
            continue
        if start is not None and _period_end(first, spec.period).timestamp() < start:
            continue
        for part in sorted(path.glob("*.parquet")):
            tables.append(pq.read_table(part))
    if not tables:
        return None
    return window(pa.concat_tables(tables, promote_options="default"), start, end)


def window(table, start=None, end=None):
    """The rows of a history table between `start` and `end` (Unix seconds, None: open),
    sorted by time (None when there are none)."""
    import pyarrow as pa
    seconds = table.column("time").cast(pa.int64()).to_numpy() / 1e3
    keep = np.ones(len(table), dtype=bool)
    if start is not None:
        keep &= seconds >= start
    if end is not None:
        keep &= seconds <= end
    table = table.filter(pa.array(keep))
    return table.sort_by("time") if len(table) else None
