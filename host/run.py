"""One measurement run: configure, start, stream records to Parquet while waiting, then
summarise per stream into summary.json (the shape the CLI promises).

Memory stays flat however long the run: records go to the Parquet file chunk by chunk, and the
percentiles come from per-stream histograms with the hardware's buckets (`regmap.hist_bucket`:
exact below 256 ns, within 1/16 above), counted as the records pass."""
import json
import time
from contextlib import closing

import numpy as np

from . import regmap
from .device import RECORD_DTYPE

__all__ = ["run_measurement", "summarise", "progress_bar"]


def buckets(latency_ns):
    """`regmap.hist_bucket`, vectorised."""
    v = np.maximum(latency_ns, 0) >> 3
    octave = np.floor(np.log2(np.maximum(v, 1))).astype(np.int64)
    fine = (v >> np.maximum(octave - 4, 0)) & (regmap.HIST_SUB - 1)
    log = regmap.HIST_LINEAR + (octave - 5) * regmap.HIST_SUB + fine
    return np.minimum(np.where(v < regmap.HIST_LINEAR, v, log), regmap.HIST_OVERFLOW)


def percentile(histogram, q):
    """The lower edge (ns) of the bucket holding the q-th percentile, or None."""
    total = histogram.sum()
    if not total:
        return None
    bucket = int(np.searchsorted(np.cumsum(histogram), total * q / 100))
    return regmap.hist_lower_ns(bucket)


def summarise(stats, histogram):
    """The summary entry of one stream from its hardware statistics and the histogram of its
    records' latencies (percentiles need records; with none, they are null)."""
    entry = {"id": stats.stream, "tx_packets": stats.tx_packets, "rx_packets": stats.rx_packets,
             "lost": stats.lost, "reordered": stats.reordered, "duplicates": stats.duplicates,
             "latency_ns": {"min": stats.latency_min_ns, "mean": stats.latency_mean_ns,
                            "max": stats.latency_max_ns, "stddev": stats.latency_stddev_ns}}
    for name, q in (("p50", 50), ("p99", 99), ("p999", 99.9)):
        entry["latency_ns"][name] = percentile(histogram, q)
    return entry


def run_measurement(device, streams, out, progress=True, settle=0.2):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    device.configure(streams)
    before = device.read_register("RECORD_LEVEL")      # stale records from an earlier run
    device.start()
    schema = pa.schema([(name, pa.from_numpy_dtype(RECORD_DTYPE[name]))
                        for name in RECORD_DTYPE.names] + [("latency_ns", pa.int64())])
    histograms = np.zeros((len(streams), regmap.HIST_BUCKETS), dtype=np.int64)
    expected = sum(s.count for s in streams) if all(s.count for s in streams) else None
    bar = progress_bar(progress, expected, "records")
    with pq.ParquetWriter(out / "records.parquet", schema) as writer:
        received, idle_since = 0, None
        with closing(device.records()) as stream:
            for chunk in stream:
                if before:
                    skip = min(before, len(chunk))
                    chunk, before = chunk[skip:], before - skip
                if len(chunk):
                    latency = chunk["rx_ns"].astype(np.int64) - chunk["tx_ns"].astype(np.int64)
                    columns = {name: chunk[name] for name in RECORD_DTYPE.names}
                    columns["latency_ns"] = latency
                    writer.write_table(pa.table(columns, schema=schema))
                    np.add.at(histograms, (chunk["stream"].astype(np.int64) % len(streams),
                                           buckets(latency)), 1)
                    received += len(chunk)
                    bar(received)
                    idle_since = None
                elif not device.running():
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > settle:
                        break
    summary = {
        "streams": [summarise(device.stream_stats(i), histograms[i])
                    for i in range(len(streams))],
        "counters": device.counters(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def progress_bar(enabled, total, label):
    """A rich progress bar fed with the count done so far (a no-op when not `enabled`); it
    closes itself when `total` (if known) is reached."""
    if not enabled:
        return lambda done: None
    from rich.progress import Progress
    progress = Progress(transient=True)
    progress.start()
    task = progress.add_task(label, total=total)

    def update(done):
        progress.update(task, completed=done)
        if total is not None and done >= total:
            progress.stop()
    return update
