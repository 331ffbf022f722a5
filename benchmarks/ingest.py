"""Host ingest, end to end: from the bytes a transport hands over to records.parquet (epoch
marks unrolled, sequence numbers extended), as `wirestamp run` does it (`run.ingest`), for both
record streams:

1. serial: RECORDS frames of 8 records each (as the bridge sends them), SLIP-framed and CRC'd as the gateware sends
   them, through the `Deframer` (goal, issue 17: 1,000,000 records/s; it was 240,000 with the
   per-byte loop);
2. USB: raw records as EP2 sends them (goal: 3,000,000 records/s, twice 64-byte line rate).

Both are fed in 64 KiB reads. Time limit: SECONDS (default 60) each.

    python benchmarks/ingest.py [RECORDS] [SECONDS]
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wirestamp.protocol import RECORD_BYTES, RECORD_TAG, Deframer, Frame, Op, encode
from wirestamp.records import (RECORD_DTYPE, RecordDecoder, RecordWriter, SequenceExtender,
                               encode_records)
from wirestamp.run import ingest


def wire_bytes(n, framed=True):
    rng = np.random.default_rng(1)
    records = np.zeros(n, dtype=RECORD_DTYPE)
    records["stream"] = rng.integers(0, 4, n)
    records["seq"] = np.arange(n)
    records["tx_ns"] = np.arange(n) * 672
    records["rx_ns"] = records["tx_ns"] + rng.exponential(20_000, n).astype(np.uint64) + 512
    body = encode_records(records)        # 16 bytes each, epoch marks every 4.3 s of RX stamps
    if not framed:
        return body
    per_frame = 8 * RECORD_BYTES
    return b"".join(encode(Frame(RECORD_TAG, Op.RECORDS, body[i:i + per_frame]))
                    for i in range(0, len(body), per_frame))


def timed_ingest(label, data, n, seconds, to_records):
    """Feed `data` in 64 KiB reads through `to_records` (read → record bytes) into
    records.parquet; print records/s, or what arrived by the time limit."""
    extender, decoder, received = SequenceExtender(), RecordDecoder(), 0
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        with RecordWriter(Path(folder) / "records.parquet") as writer:
            for at in range(0, len(data), 65536):
                if time.perf_counter() - began > seconds:
                    print(f"time limit: {received:,} of {n:,} records ingested")
                    break
                records = decoder.decode(to_records(data[at:at + 65536]))
                received += ingest(records, 4, extender, writer)[0]
    spent = time.perf_counter() - began
    print(f"{label} → records.parquet: {received:,} records in {spent:.2f} s, "
          f"{received / spent:,.0f} records/s ({len(data) / spent / 1e6:.1f} MB/s of wire bytes)")


def main(n=2_000_000, seconds=60.0):
    held = b""

    def whole_records(read):            # EP2: a record split across reads waits for its rest
        nonlocal held
        chunk = held + read
        whole = len(chunk) - len(chunk) % RECORD_BYTES
        held = chunk[whole:]
        return chunk[:whole]
    timed_ingest("raw records (USB EP2)", wire_bytes(n, framed=False), n, seconds,
                 whole_records)

    deframer = Deframer()

    def framed_records(read):
        return b"".join(f.body for f in deframer.feed(read) if f.tag == RECORD_TAG)
    timed_ingest("SLIP RECORDS frames", wire_bytes(n), n, seconds, framed_records)
    assert deframer.errors == 0


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000,
         float(sys.argv[2]) if len(sys.argv) > 2 else 60.0)
