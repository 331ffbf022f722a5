"""Record decoding speed and the UART link's record throughput.

1. Records/s of the vectorised decoder (`RecordDecoder`: 16-byte records, epoch marks
   unrolled) against a plain `struct` loop, on the same bytes, in one run.
2. The fraction of the UART's baud rate that carries records: RECORDS frames of 8 records,
   framed exactly as the gateware frames them (tag, op, body, CRC-16, SLIP escapes, END), with
   10 bits on the line per byte (8N1).
Run: python benchmarks/records_decode.py [records]
"""
import struct
import sys
import time

import numpy as np

from wirestamp import regmap
from wirestamp.protocol import RECORD_BYTES, RECORD_TAG, Frame, Op, encode
from wirestamp.records import RECORD_DTYPE, RecordDecoder, encode_records


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(1)
    records = np.zeros(n, dtype=RECORD_DTYPE)
    records["stream"] = rng.integers(0, 16, n)
    records["length"] = rng.integers(64, 1519, n)
    records["seq"] = rng.integers(0, 1 << 32, n)
    # RX stamps 672 ns apart from 2**40 ns, so epoch marks come too; latencies up to 1 s.
    records["rx_ns"] = (1 << 40) + np.arange(n, dtype=np.uint64) * 672
    records["tx_ns"] = records["rx_ns"] - rng.integers(0, 10**9, n).astype(np.uint64)
    body = encode_records(records)

    began = time.perf_counter()
    fast = RecordDecoder().decode(body)
    latency = fast["rx_ns"].astype(np.int64) - fast["tx_ns"].astype(np.int64)
    numpy_s = time.perf_counter() - began

    began = time.perf_counter()
    unpack, epoch, slow_latency = struct.Struct("<BBHIII").unpack_from, 0, []
    for i in range(0, len(body), RECORD_BYTES):
        _, flags, _, seq, rx, latency_ns = unpack(body, i)
        if flags & regmap.RECORD_EPOCH:
            epoch = seq
        else:
            slow_latency.append((epoch << 32 | rx) - ((epoch << 32 | rx) - latency_ns))
    struct_s = time.perf_counter() - began
    assert len(slow_latency) == len(fast) and slow_latency[:100] == list(latency[:100])

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
