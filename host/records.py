"""Per-packet records on the host: their numpy dtype (derived from `regmap.RECORD_FIELDS`, the
one declaration), decoding, sequence numbers extended across their 32-bit wrap, and the
Parquet file a run writes.

A record's `seq` is the datagram's 32-bit sequence number: at 1.49 Mpps it wraps every
48 minutes. `SequenceExtender` keeps, per stream, the extended number of the newest record and
places each new one within ±2³¹ of it, so a run of days keeps one increasing `seq` per stream
(reordering of up to 2³¹ numbers is told from a wrap). Joins by (stream, seq) use it.
"""
import time

import numpy as np

from . import regmap

__all__ = ["RECORD_DTYPE", "decode_records", "SequenceExtender", "join_key", "RecordWriter"]

_NUMPY = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}
RECORD_DTYPE = np.dtype([(name, _NUMPY[width]) for name, width in regmap.RECORD_FIELDS])


def decode_records(body):
    """Records from a RECORDS frame body (or a bulk read): one np.frombuffer, no Python loop."""
    return np.frombuffer(body, dtype=RECORD_DTYPE)


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
    """records.parquet, written in row groups of at most `rows` rows or `seconds` seconds of
    arrivals, whichever fills first: memory holds one row group at most, and a reader opens the
    file's metadata in O(row groups), so neither grows with the run's length. Closing (also
    after an interrupt) flushes what is buffered and writes a valid footer."""

    def __init__(self, path, rows=262_144, seconds=10.0):
        import pyarrow as pa
        import pyarrow.parquet as pq
        self._pa = pa
        fields = [(name, pa.from_numpy_dtype(RECORD_DTYPE[name])) for name in RECORD_DTYPE.names]
        fields[[n for n, _ in fields].index("seq")] = ("seq", pa.uint64())    # extended
        self.schema = pa.schema(fields + [("latency_ns", pa.int64())])
        # Dictionaries only for the columns of few values: stamps and sequence numbers hardly
        # repeat, and building their dictionaries took most of the write time.
        self._writer = pq.ParquetWriter(path, self.schema,
                                        use_dictionary=["stream", "flags", "length"])
        self._rows, self._seconds = rows, seconds
        self._pending, self._count, self._since = [], 0, time.monotonic()
        self.rows_written = 0
        self.row_groups = 0

    def write(self, columns):
        """`columns`: name → array, every name of `schema`, equal lengths."""
        n = len(columns["seq"])
        if not n:
            return
        self._pending.append(columns)
        self._count += n
        if self._count >= self._rows or time.monotonic() - self._since >= self._seconds:
            self.flush()

    def flush(self):
        if self._pending:
            table = self._pa.Table.from_pydict(
                {name: np.concatenate([c[name] for c in self._pending])
                 for name in self.schema.names}, schema=self.schema)
            self._writer.write_table(table, row_group_size=len(table))
            self.rows_written += len(table)
            self.row_groups += 1
        self._pending, self._count, self._since = [], 0, time.monotonic()

    def close(self):
        self.flush()
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
