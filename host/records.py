"""Per-packet records on the host: their numpy dtypes (derived from `regmap`, the one
declaration), decoding, sequence numbers extended across their 32-bit wrap, and the Parquet
parts a run writes (records.parquet, a folder: `RecordWriter`).

On the links a record is 16 bytes (`regmap.RECORD_FIELDS`: the RX stamp's low 32 bits and the
latency), and epoch marks carry the RX stamp's high bits. `RecordDecoder` unrolls them into
RECORD_DTYPE (`regmap.PACKET_FIELDS`): both stamps whole, in ns, as the Parquet parts keep
them. A clipped record's (RECORD_CLIPPED: latency outside 0..4.29 s) `tx_ns` is 0, unknown;
records.parquet holds it as null, with its latency.

A record's `seq` is the datagram's 32-bit sequence number: at 1.49 Mpps it wraps every
48 minutes. `SequenceExtender` keeps, per stream, the extended number of the newest record and
places each new one within ±2³¹ of it, so a run of days keeps one increasing `seq` per stream
(reordering of up to 2³¹ numbers is told from a wrap). Joins by (stream, seq) use it.
"""
import os
import shutil
import time
from pathlib import Path

import numpy as np

from . import regmap
from .files import DiskFull, disk_full

__all__ = ["RECORD_DTYPE", "WIRE_DTYPE", "RecordDecoder", "encode_records", "SequenceExtender",
           "join_key", "RecordWriter", "parts"]

_NUMPY = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}
WIRE_DTYPE = np.dtype([(name, _NUMPY[width]) for name, width in regmap.RECORD_FIELDS])
RECORD_DTYPE = np.dtype([(name, _NUMPY[width]) for name, width in regmap.PACKET_FIELDS])
_SAME = [name for name in WIRE_DTYPE.names if name in RECORD_DTYPE.names and name != "rx_ns"]


class RecordDecoder:
    """Records as the links carry them (a RECORDS frame body, or bulk reads) → RECORD_DTYPE,
    with one np.frombuffer and numpy per read, no Python per record. It keeps the latest
    epoch across reads; records that come before any epoch mark (left in the unit's FIFO from
    before this reader: the unit puts a mark before each run's first record) cannot be dated
    and are counted in `undecodable`, not returned."""

    def __init__(self):
        self.epoch = None           # RX stamps' high 32 bits, from the latest mark
        self.undecodable = 0

    def decode(self, body):
        wire = np.frombuffer(body, dtype=WIRE_DTYPE)
        marks = (wire["flags"] & regmap.RECORD_EPOCH) != 0
        latest = np.maximum.accumulate(np.where(marks, np.arange(len(wire)), -1))
        high = wire["seq"][np.maximum(latest, 0)].astype(np.uint64)
        dated = latest >= 0
        if self.epoch is not None:
            high[~dated] = self.epoch
            dated[:] = True
        if marks.any():
            self.epoch = int(wire["seq"][np.flatnonzero(marks)[-1]])
        keep = ~marks & dated
        self.undecodable += int(np.count_nonzero(~marks & ~dated))
        wire, high = wire[keep], high[keep]
        out = np.empty(len(wire), dtype=RECORD_DTYPE)
        for name in _SAME:
            out[name] = wire[name]
        rx = high << np.uint64(32) | wire["rx_ns"].astype(np.uint64)
        out["rx_ns"] = rx
        clipped = (wire["flags"] & regmap.RECORD_CLIPPED) != 0
        out["tx_ns"] = np.where(clipped, np.uint64(0), rx - wire["latency_ns"].astype(np.uint64))
        return out


def encode_records(rows, epoch=None):
    """RECORD_DTYPE rows (RX stamps in increasing order) as the unit sends them, with an epoch
    mark before the first and wherever the RX stamp's high bits change (unless `epoch`, the
    high bits of a mark already sent, says none is due): the reference for tests and
    benchmarks of `RecordDecoder`."""
    rows = np.asarray(rows, dtype=RECORD_DTYPE)
    high = (rows["rx_ns"] >> np.uint64(32)).astype(np.int64)
    previous = np.concatenate(([-1 if epoch is None else epoch], high[:-1]))
    new_epoch = high != previous
    out = np.zeros(len(rows) + int(np.count_nonzero(new_epoch)), dtype=WIRE_DTYPE)
    at = np.arange(len(rows)) + np.cumsum(new_epoch)        # each record after its marks
    latency = rows["rx_ns"].astype(np.int64) - rows["tx_ns"].astype(np.int64)
    clipped = (latency < 0) | (latency >= 1 << 32)
    for name in _SAME:
        out[name][at] = rows[name]
    out["flags"][at] = (rows["flags"] & regmap.RECORD_PACKET_FLAGS) | np.where(
        clipped, regmap.RECORD_CLIPPED, 0)
    out["rx_ns"][at] = rows["rx_ns"] & np.uint64(0xFFFF_FFFF)
    out["latency_ns"][at] = np.where(clipped, 0xFFFF_FFFF, latency)
    mark_at = at[new_epoch] - 1          # a mark repeats the record after it, but for these
    out[mark_at] = out[mark_at + 1]
    out["flags"][mark_at] = regmap.RECORD_EPOCH
    out["seq"][mark_at] = high[new_epoch]
    return out.tobytes()


class SequenceExtender:
    """32-bit sequence numbers → 64-bit ones that keep counting across wraps, per stream."""
    HALF = 1 << 31

    def __init__(self):
        self._last = {}         # stream → extended seq of its newest record

    def extend_one(self, stream, seq):
        """The extended number of one record (for per-datagram loops)."""
        last = self._last.get(stream)
        if last is not None:
            seq = last + (seq - last + self.HALF) % (1 << 32) - self.HALF
        self._last[stream] = seq
        return seq

    def extend(self, streams, seqs):
        """The extended sequence numbers (uint64) of records in arrival order."""
        streams = np.asarray(streams)
        seqs = np.asarray(seqs, dtype=np.int64)
        out = np.empty(len(seqs), dtype=np.int64)
        for stream in np.unique(streams):
            where = np.flatnonzero(streams == stream)
            s = seqs[where]
            last = self._last.get(int(stream))
            anchor = int(s[0]) if last is None else last     # a stream's first record: as is
            previous = np.concatenate(([anchor & 0xFFFF_FFFF], s[:-1]))
            step = (s - previous + self.HALF) % (1 << 32) - self.HALF
            extended = anchor + np.cumsum(step)
            out[where] = extended
            self._last[int(stream)] = int(extended[-1])
        return out.astype(np.uint64)


def join_key(rows):
    """One uint64 per row of (stream, extended seq), for joins of records with logs."""
    return rows["stream"].astype(np.uint64) << np.uint64(56) | rows["seq"].astype(np.uint64)


class RecordWriter:
    """records.parquet: a folder of closed Parquet parts (`part-000000.parquet`, ...), the
    layout of Hive and Spark datasets, which pyarrow (`pq.read_table(folder)`), pandas, DuckDB
    (`read_parquet('records.parquet/*.parquet')`) and Spark read as one table. Rows are
    flushed at most `rows` rows or `seconds` seconds of arrivals after they came, whichever
    fills first, each flush a part of one row group: memory holds one row group at most.

    A part is written under a hidden name (readers skip names starting with "."), then
    renamed when its footer is on disk, so the folder only ever holds whole files: after
    SIGKILL, a crash or a full disk, every flushed row stays readable, and what is lost is
    bounded by one flush. A full disk raises `files.DiskFull` (the part being written is
    removed); the parts before it stay. An existing `path` is replaced."""

    def __init__(self, path, rows=262_144, seconds=10.0):
        import pyarrow as pa
        import pyarrow.parquet as pq
        self._pa, self._pq = pa, pq
        fields = [(name, pa.from_numpy_dtype(RECORD_DTYPE[name])) for name in RECORD_DTYPE.names]
        fields[[n for n, _ in fields].index("seq")] = ("seq", pa.uint64())    # extended
        self.schema = pa.schema(fields + [("latency_ns", pa.int64())])
        self.path = Path(path)
        if self.path.is_dir():
            shutil.rmtree(self.path)
        elif self.path.exists():
            self.path.unlink()
        self.path.mkdir(parents=True)
        self._rows, self._seconds = rows, seconds
        self._pending, self._count, self._since = [], 0, time.monotonic()
        self.rows_written = 0
        self.row_groups = 0
        self.parts = 0
        self.failed = None          # the DiskFull that ended the writing, if one did

    def write(self, columns):
        """`columns`: name → array, every name of `schema`, equal lengths."""
        n = len(columns["seq"])
        if not n:
            return
        if self.failed:
            raise self.failed
        self._pending.append(columns)
        self._count += n
        if self._count >= self._rows or time.monotonic() - self._since >= self._seconds:
            self.flush()

    def flush(self):
        if self._pending:
            columns = {name: np.concatenate([c[name] for c in self._pending])
                       for name in self.schema.names}
            self._pending, self._count = [], 0
            self._part(columns)
        self._since = time.monotonic()

    def _part(self, columns):
        # A clipped record's TX stamp, and so its latency, is unknown: null, not a number.
        unknown = (columns["flags"] & regmap.RECORD_CLIPPED) != 0
        mask = unknown if unknown.any() else None
        table = self._pa.Table.from_arrays(
            [self._pa.array(columns[field.name], type=field.type,
                            mask=mask if field.name in ("tx_ns", "latency_ns") else None)
             for field in self.schema], schema=self.schema)
        name = f"part-{self.parts:06d}.parquet"
        tmp = self.path / f".{name}.tmp"
        try:
            # Dictionaries only for the columns of few values: stamps and sequence numbers
            # hardly repeat, and building their dictionaries took most of the write time.
            self._pq.write_table(table, tmp, row_group_size=max(len(table), 1),
                                 use_dictionary=["stream", "flags", "length"])
            os.replace(tmp, self.path / name)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            if not disk_full(error):
                raise
            self.failed = DiskFull(self.path / name, f"{self.rows_written:,} records in "
                                   f"{self.parts} parts before it are kept")
            raise self.failed from None
        self.parts += 1
        self.row_groups += len(table) > 0
        self.rows_written += len(table)

    def close(self):
        """Flush what is buffered (not after a full disk). A run without records still
        leaves one part, empty, so that readers know the schema."""
        if self.failed:
            return
        self.flush()
        if not self.parts:
            self._part({name: np.zeros(0, dtype=self.schema.field(name).type.to_pandas_dtype())
                        for name in self.schema.names})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parts(path):
    """The closed parts of a records.parquet folder (`RecordWriter`), in order."""
    return sorted(Path(path).glob("part-*.parquet"))
