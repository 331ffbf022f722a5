"""Record decoding speed and the UART link's record throughput.

1. Records/s of the vectorised decoder (`np.frombuffer` with the record dtype) against a plain
   `struct` loop, on the same bytes, in one run.
2. The fraction of the UART's baud rate that carries records: RECORDS frames of 8 records,
   framed exactly as the gateware frames them (tag, op, body, CRC-16, SLIP escapes, END), with
   10 bits on the line per byte (8N1).
Run: python benchmarks/records_decode.py [records]
"""
import struct
import sys
import time

import numpy as np

from wirestamp.device import RECORD_DTYPE, decode_records
from wirestamp.protocol import RECORD_BYTES, RECORD_TAG, Frame, Op, encode


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(1)
    records = np.zeros(n, dtype=RECORD_DTYPE)
    for name in RECORD_DTYPE.names:
        top = min(np.iinfo(RECORD_DTYPE[name]).max, 1 << 60)      # stamps: 36 years of ns
        records[name] = rng.integers(0, top, n, dtype=RECORD_DTYPE[name], endpoint=True)
    body = records.tobytes()

    began = time.perf_counter()
    fast = decode_records(body)
    latency = fast["rx_ns"].astype(np.int64) - fast["tx_ns"].astype(np.int64)
    numpy_s = time.perf_counter() - began

    began = time.perf_counter()
    unpack = struct.Struct("<BBHIQQ").unpack_from
    slow = [unpack(body, i) for i in range(0, len(body), RECORD_BYTES)]
    slow_latency = [r[5] - r[4] for r in slow]
    struct_s = time.perf_counter() - began
    assert len(slow) == len(fast) and slow_latency[:100] == list(latency[:100])

    print(f"{n:,} records: numpy {n / numpy_s:,.0f} records/s, struct loop "
          f"{n / struct_s:,.0f} records/s, {struct_s / numpy_s:,.0f}x")

    frames = [encode(Frame(RECORD_TAG, Op.RECORDS, body[i:i + 8 * RECORD_BYTES]))
              for i in range(0, min(len(body), 8 * RECORD_BYTES * 10_000), 8 * RECORD_BYTES)]
    wire_bits = 10 * sum(len(f) for f in frames)
    record_bits = 8 * 8 * RECORD_BYTES * len(frames)
    print(f"UART: {record_bits / wire_bits:.3f} of the baud rate carries records; at 3 Mbaud "
          f"that is {3e6 * record_bits / wire_bits / (8 * RECORD_BYTES):,.0f} records/s, "
          f"at 12 Mbaud {12e6 * record_bits / wire_bits / (8 * RECORD_BYTES):,.0f}")


if __name__ == "__main__":
    main()
