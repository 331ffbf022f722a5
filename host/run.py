"""One measurement run: configure, start, stream records to Parquet while waiting, let the
packets in flight settle, then summarise per stream into summary.json.

What the summary promises (docs/receive.md, "A run's numbers"):
- `lost` is everything sent and never received, read after the streams ended and the settle
  time passed: `settle` seconds of the unit's own clock (default: the transport's
  `settle_s`, else RFC 2544's 2 s), cut short once every packet sent is accounted for;
- `records` says how many per-packet records were expected (every measured packet, or one in
  `record_sample`), how many reached the file, and how many were lost and where;
- the percentiles come from the unit's histograms, and the jitter (RFC 3550) and IPDV
  (RFC 3393) from its jitter rows, which see every packet whatever happens to the records;
- a stream that sent and received nothing is a warning, with what to check.

Memory stays flat however long the run: records go to Parquet in bounded row groups
(`records.RecordWriter`).
"""
import datetime
import json
from contextlib import closing, suppress
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import regmap
from .device import LinkError
from .files import DiskFull, Reserve, write_atomic
from .records import RECORD_DTYPE, RecordWriter, SequenceExtender
from .signals import Interrupted, deferred

__all__ = ["run_measurement", "stop_streams", "ingest", "summarise", "percentile",
           "percentiles", "progress_bar", "Interrupted", "stream_histogram", "RFC2544_SETTLE_S"]

RFC2544_SETTLE_S = 2.0      # RFC 2544 §23: wait two seconds for residual frames


def percentile(histogram, q, low=None, high=None):
    """The q-th percentile (ns) from bucket counts, or None. Within its bucket the value is
    interpolated by rank between the bucket's edges, then clamped to [low, high] (the exact
    minimum and maximum): the error is at most the bucket's width, 8 ns below 256 ns and 1/16
    of the value above."""
    return percentiles(histogram, (q,), low, high)[0]


def percentiles(histogram, qs, low=None, high=None):
    """`percentile` for each of `qs`, from one pass over the buckets."""
    total = int(histogram.sum())
    if not total:
        return [None] * len(qs)
    cumulative = np.cumsum(histogram)
    values = []
    for q in qs:
        rank = total * q / 100
        bucket = min(int(np.searchsorted(cumulative, rank)), len(histogram) - 1)
        below = int(cumulative[bucket - 1]) if bucket else 0
        lower = regmap.hist_lower_ns(bucket)
        upper = regmap.hist_lower_ns(bucket + 1) if bucket < regmap.HIST_OVERFLOW else lower
        inside = (rank - below) / int(histogram[bucket])
        value = lower + (upper - lower) * min(max(inside, 0.0), 1.0)
        if low is not None:
            value = max(value, low)
        if high is not None:
            value = min(value, high)
        values.append(round(value))
    return values


PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9))


def summarise(stats, histogram):
    """The summary entry of one stream from its hardware statistics and histogram (every
    packet; percentiles null when none came back)."""
    entry = {"id": stats.stream, "tx_packets": stats.tx_packets, "rx_packets": stats.rx_packets,
             "lost": stats.lost, "reordered": stats.reordered, "duplicates": stats.duplicates,
             "latency_ns": {"min": stats.latency_min_ns, "mean": stats.latency_mean_ns,
                            "max": stats.latency_max_ns, "stddev": stats.latency_stddev_ns}}
    for name, q in PERCENTILES:
        entry["latency_ns"][name] = percentile(histogram, q, stats.latency_min_ns,
                                               stats.latency_max_ns)
    entry["jitter_ns"] = {"rfc3550": stats.jitter_ns, "ipdv_min": stats.ipdv_min_ns,
                          "ipdv_max": stats.ipdv_max_ns, "ipdv_mean_abs": stats.ipdv_mean_abs_ns}
    return entry


def ingest(chunk, streams, extender, writer):
    """Records in `chunk` (RECORD_DTYPE) of streams 0..`streams`-1 into `writer`, seq
    extended by `extender`; returns (records kept, records of other streams). Vectorised:
    numpy per chunk, nothing per record."""
    mine = chunk["stream"] < streams
    other = int(len(chunk) - np.count_nonzero(mine))
    if other:
        chunk = chunk[mine]
    if not len(chunk):
        return 0, other
    latency = chunk["rx_ns"].astype(np.int64) - chunk["tx_ns"].astype(np.int64)
    columns = {name: chunk[name] for name in RECORD_DTYPE.names}
    columns["seq"] = extender.extend(chunk["stream"], chunk["seq"])
    columns["latency_ns"] = latency
    writer.write(columns)
    return len(chunk), other


def _settings(streams, settings):
    def plain(stream):
        fields = asdict(stream)
        rate = stream.rate
        fields["rate"] = float(rate) if isinstance(rate, Fraction) else \
            rate if isinstance(rate, (int, float, str)) else repr(rate)
        return fields
    return {"streams": [plain(s) for s in streams], **(settings or {})}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def run_measurement(device, streams, out, progress=True, settle=None, record_sample=1,
                    settings=None):
    """Run `streams` on `device`, write `out`/records.parquet (a folder of parts,
    `records.RecordWriter`) and `out`/summary.json, return the summary. `settings` (the
    device URL, the command line…) go into the summary as they are.

    Whatever ends the run, the streams are stopped (`stop_streams`: over a fresh connection if
    the link is gone) and summary.json is written, atomically, with what was measured:
    - a signal (SIGINT, SIGTERM; `signals.deferred`) stops the streams; the records and frames
      on their way are taken as at a run's end (the settle time, cut short when every one is
      in; a second signal cuts it there), the final reads and writes complete, the summary is
      marked `interrupted`, then `Interrupted` is raised;
    - a `LinkError` marks it `link_lost`, with what could not be read listed in `missing`,
      and is raised again;
    - a full disk (`files.DiskFull`) marks it `disk_full` and is raised again.
    The exception raised carries the summary as `.summary`."""
    from . import __version__
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if settle is None:
        settle = getattr(device.transport, "settle_s", RFC2544_SETTLE_S)
    info = device.identify()
    summary = {"host_version": __version__, "unit": {"id": "WSTP", "version": info.version,
                                                      "clock_hz": info.clock_hz},
               "config": {**_settings(streams, settings), "settle_s": settle,
                          "record_sample": record_sample}, "started": _now()}
    notice = getattr(device.transport, "notice", None)
    if notice:
        summary["notice"] = notice
    device.configure(streams)
    device.set_record_sample(record_sample)
    # Records of packets received before START (left in the FIFO by an earlier run) are
    # told by their RX stamps; those from before this Device's first epoch mark cannot be
    # dated at all, and the decoder drops them (`Device.records_undecodable`).
    started_ns = device.read_register("TIME")
    undecodable_before = device.records_undecodable
    overflow_before = device.read_register("RECORD_OVERFLOW")
    expected = sum(s.count for s in streams) if all(s.count for s in streams) else None
    if expected is not None and record_sample != 1:
        expected = expected // record_sample if record_sample else 0
    reserve = Reserve(out)          # room for summary.json should the records fill the disk
    try:
        writer = RecordWriter(out / "records.parquet")
    except BaseException:
        reserve.release()
        raise
    extender = SequenceExtender()
    received = foreign = 0
    failure = None
    with deferred() as stop:
        bar = progress_bar(progress, expected, "records")
        try:
            device.start()
            with closing(device.records()) as stream:
                ended_ns = None
                for chunk in stream:
                    if stop.count > 1:          # a second signal: no more waiting
                        break
                    if stop.requested and "stop" not in summary:
                        # The first: stop now, then take the records and frames on their
                        # way, as at a run's end (the settle time, cut short when all are in).
                        summary["stop"] = stop_streams(device)
                    if len(chunk) and chunk["rx_ns"][0] < started_ns:
                        chunk = chunk[chunk["rx_ns"] >= started_ns]
                    if len(chunk):
                        kept, other = ingest(chunk, len(streams), extender, writer)
                        received, foreign = received + kept, foreign + other
                        bar(received)
                        continue
                    if device.running():
                        continue
                    now = device.read_register("TIME")
                    if ended_ns is None:
                        ended_ns = now
                    elif now - ended_ns >= settle * 1e9 or _all_accounted(
                            device, streams, received, record_sample):
                        break
        except (LinkError, DiskFull) as error:
            failure = error
        except BaseException:           # anything else (a fault of this code): still stopped
            with suppress(Exception):
                stop_streams(device)
                writer.close()
            reserve.release()
            raise
        finally:
            bar(None)
        # Every way out stops the streams: an interrupt, a lost link, a full disk, the end.
        if "stop" not in summary:
            summary["stop"] = stop_streams(device)
        try:
            writer.close()
        except DiskFull as error:
            failure = failure or error
        reserve.release()
        summary.update(_final_reads(device, streams, received, foreign, record_sample,
                                    overflow_before, undecodable_before, writer))
        summary.update({"ended": _now(), "interrupted": stop.requested,
                        "link_lost": isinstance(failure, LinkError) or "link" in
                        summary["missing"], "disk_full": writer.failed is not None})
        if stop.requested:
            summary["interrupted_by"] = stop.signum
        if failure is not None:
            summary["error"] = str(failure)
        try:
            write_atomic(out / "summary.json", json.dumps(summary, indent=2))
        except DiskFull as error:
            failure = failure or error
            summary["unwritten"] = str(out / "summary.json")    # the caller shows it
        if failure is not None:
            failure.summary = summary
            raise failure
    if stop.requested:
        error = Interrupted(stop.signum)
        error.summary = summary
        raise error
    return summary


def stop_streams(device):
    """Stop the unit's streams, whatever state the link is in: over the connection at hand,
    else over a fresh one (`Device.reconnect`). {"stopped": bool, "how": text}."""
    try:
        device.stop()
        return {"stopped": True, "how": "STOP written"}
    except LinkError as error:
        first = error
    if getattr(device.transport, "ended", lambda: False)():
        return {"stopped": True, "how": "the virtual board has ended; nothing transmits"}
    try:
        device.reconnect()
        device.stop()
        return {"stopped": True, "how": f"STOP written over a new connection ({first})"}
    except (LinkError, OSError) as error:
        return {"stopped": False, "how": f"STOP could not be written: {error}; the streams "
                                         f"may still run until their count or duration ends"}


def _final_reads(device, streams, received, foreign, record_sample, overflow_before,
                 undecodable_before, writer):
    """The summary's statistics, counters and accounts, read after the streams ended (over a
    new connection if `stop_streams` made one). Each group the link could not deliver is named
    in `missing` (and left null), never guessed."""
    part = {"streams": None, "records": None, "counters": None, "phys": None, "missing": []}
    link = {"retried_requests": device.retried, "damaged_frames": device.damaged_frames,
            "record_frames_dropped_by_host": device.records_dropped,
            "stale_records_undated": device.records_undecodable - undecodable_before}
    records = {"received": received, "other_streams": foreign, "sample_one_in": record_sample,
               "rows_written": writer.rows_written, "row_groups": writer.row_groups,
               "parts": writer.parts}
    try:
        rows = [device.stream_stats(i, ended=True) for i in range(len(streams))]
        part["streams"] = [summarise(stats, stream_histogram(device, stats)) for stats in rows]
        records = _record_account(device, rows, received, foreign, record_sample,
                                  device.read_register("RECORD_OVERFLOW") - overflow_before,
                                  writer)
        part["counters"] = device.counters()
        part["phys"] = [phy.as_dict() for phy in device.phys()]
    except LinkError:
        part["missing"] = [name for name in ("streams", "counters", "phys")
                           if part[name] is None] + ["records.expected"] * (
            "expected" not in records) + ["link"]
    part["records"] = records
    part["link"] = link
    if writer.failed:
        part["missing"].append("records after the disk filled")
    part["warnings"] = _warnings(part, streams)
    return part


def stream_histogram(device, stats):
    """The stream's hardware histogram. Every packet lies between its exact minimum and
    maximum, so only the buckets from one's to the other's are read (two round trips each)."""
    if not stats.rx_packets:
        return np.zeros(regmap.HIST_BUCKETS, dtype=np.uint64)
    low, high = regmap.hist_bucket(stats.latency_min_ns), regmap.hist_bucket(stats.latency_max_ns)
    return device.histogram(stats.stream, range(low, high + 1))


def _all_accounted(device, streams, received, record_sample):
    """Every packet sent has come back once and every record is in: nothing more can come."""
    stats = [device.stream_stats(i) for i in range(len(streams))]
    back = all(s.rx_packets - s.duplicates == s.tx_packets for s in stats)
    return back and received >= _expected_records(stats, record_sample)[0]


def _expected_records(stats, record_sample):
    """(fewest, most) records the run's measured packets give. The unit keeps every N-th
    record with RECORD_SAMPLE = N, counting on across runs, so with N > 1 the first kept
    record of a run is one of its first N: R packets give R // N or one more."""
    measured = sum(s.rx_packets for s in stats)
    if not record_sample:
        return 0, 0
    return measured // record_sample, -(-measured // record_sample)


def _record_account(device, stats, received, foreign, record_sample, overflow, writer):
    fewest, most = _expected_records(stats, record_sample)
    expected = min(max(received, fewest), most)     # exact when record_sample is 0 or 1
    lost = expected - received
    return {"expected": expected, "received": received, "lost": lost,
            "fifo_overflow": overflow, "left_in_fifo": device.read_register("RECORD_LEVEL"),
            "other_streams": foreign, "sample_one_in": record_sample,
            "rows_written": writer.rows_written, "row_groups": writer.row_groups}


def _warnings(summary, streams):
    warnings = []
    if summary["missing"]:
        warnings.append(f"not measured: {', '.join(summary['missing'])} (the link to the "
                        f"unit was lost or the disk filled; what is here was measured)")
    for entry, config in zip(summary["streams"] or [], streams):
        if entry["tx_packets"] and not entry["rx_packets"]:
            warnings.append(
                f"stream {entry['id']}: sent {entry['tx_packets']} packets to "
                f"{config.dst_ip} ({config.dst_mac}) and received none: check that the "
                f"DUT reflects UDP port {config.dst_port} back to the unit, the cabling, "
                f"and the destination MAC (broadcast frames are dropped by most hosts)")
    down = [phy["phy"] for phy in summary["phys"] or [] if phy["link"] != "up"]
    if down and any(e["tx_packets"] and not e["rx_packets"] for e in summary["streams"]):
        warnings.append(f"the PHY at MDIO address {', '.join(map(str, down))} reports "
                        f"link down: check the cable and the link partner")
    records = summary["records"]
    if records.get("lost"):
        host = summary["link"]["record_frames_dropped_by_host"]
        cause = (f"{host} RECORDS frames dropped by this host's buffer, which the reads did "
                 f"not keep up with" if host else "")
        advice = ("" if host and not records["fifo_overflow"] else
                  "; thin them on purpose with --record-sample N")
        warnings.append(
            f"records: {records['lost']} of {records['expected']} lost ({records['fifo_overflow']}"
            f" in the unit's FIFO{', ' + cause if cause else ''}); the counts and percentiles "
            f"above are exact (the unit counts every packet), records.parquet lacks those "
            f"rows{advice}")
    return warnings


def progress_bar(enabled, total, label):
    """A rich progress bar fed with the count done so far (a no-op when not `enabled`); it
    closes itself when `total` (if known) is reached, or when fed None."""
    if not enabled:
        return lambda done: None
    from rich.progress import Progress
    progress = Progress(transient=True)
    progress.start()
    task = progress.add_task(label, total=total)

    def update(done):
        if done is None or (total is not None and done >= total):
            progress.stop()
        else:
            progress.update(task, completed=done)
    return update
