"""Memory of a long `wirestamp run`: RSS over time while records stream into records.parquet.

A run on the virtual board at 100 kpps (echo model, every packet a record) for SECONDS of wall
time (default 120), then interrupted as Ctrl-C would (the file must be valid). Prints RSS every
10 s, the growth per minute once warm (from 20 s on), and the file's rows and row groups.
Issue 16's figure before the fix: about 3.5 MB/s of growth, one row group per RECORDS frame.

    python benchmarks/run_memory.py [SECONDS]
"""
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

import wirestamp
from wirestamp.run import Interrupted, run_measurement
from wirestamp.records import parts
from wirestamp.streams import Stream


def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(seconds=120.0):
    samples = []
    began = time.monotonic()

    def watch():
        while time.monotonic() - began < seconds:
            samples.append((time.monotonic() - began, rss_mb()))
            time.sleep(10)
        os.kill(os.getpid(), signal.SIGINT)      # ends the run as Ctrl-C does

    out = Path(tempfile.mkdtemp(prefix="wirestamp-memory-"))
    with wirestamp.open("sim://?dut=echo&delay=3us") as device:
        threading.Thread(target=watch, daemon=True).start()
        stream = Stream("10.0.0.9", dst_mac="02:00:00:00:00:09", rate=100_000,
                        count=(1 << 48) - 1)
        try:
            run_measurement(device, [stream], out, progress=False)
        except Interrupted:
            pass
    for t, mb in samples:
        print(f"{t:6.0f} s  RSS {mb:7.1f} MB")
    if len(samples) > 3:          # from 20 s on: the simulator, pyarrow and numpy are warm
        (t0, m0), (t1, m1) = samples[2], samples[-1]
        print(f"growth from {t0:.0f} s to {t1:.0f} s: {(m1 - m0) / (t1 - t0) * 60:+.2f} MB/min")
    rows = pq.read_table(out / "records.parquet").num_rows
    print(f"records.parquet: {rows} rows in {len(parts(out / 'records.parquet'))} parts "
          f"(valid after the interrupt)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 120.0)
