"""The monitor in real time: `wirestamp monitor` over the virtual board under continuous
traffic (one stream, as fast as the simulation carries it) for --minutes, one sample a
second, its history kept. It then reads the history back and prints the monitor's RSS
(its own column in every row) at each minute, its growth from minute 11 (after the
history's first write) to the end, its CPU per sample, and the samples the link lost. Time limit: the run plus 3 minutes; it reports a monitor
that did not end instead of waiting.

    python benchmarks/monitor_realtime.py [--minutes 15] [--out DIR]
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from wirestamp.history import load


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--out", help="the history's folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        test = Path(tmp) / "soak.toml"
        # 500 kpps of the unit's time: the simulation runs slower than the wire, so the
        # stream outlasts the run, which --duration ends.
        test.write_text('[[streams]]\ndst_ip = "10.0.0.9"\nrate = "500kpps"\n'
                        'duration = "1h"\n')
        command = [sys.executable, "-m", "wirestamp.cli", "monitor", "--device",
                   "sim://?dut=echo&delay=uniform:2us-9us", "--config", str(test),
                   "--interval", "1s", "--duration", f"{args.minutes * 60:.0f}s",
                   "--out", str(out), "--quiet"]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=args.minutes * 60 + 180)
        except subprocess.TimeoutExpired:
            print(f"the monitor did not end within {args.minutes:.0f} min + 3 min",
                  file=sys.stderr)
            return 1
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return 1
        table = load(out, "1s")
        seconds = (table.column("time").cast("int64").to_numpy() -
                   table.column("time")[0].value) / 1e3
        rss = table.column("rss_mib").to_numpy()
        cpu = table.column("cpu_s").to_numpy()
        rx = table.column("s0_rx_packets").to_numpy()
        minutes = [int(np.searchsorted(seconds, 60 * k))
                   for k in range(int(seconds[-1] // 60) + 1)]
        # The history's first write (after 10 minutes of samples) loads pyarrow's Parquet
        # writer, once: the growth that counts is from after it to the end.
        after = minutes[11] if len(minutes) > 11 else -1
        print(f"{len(table)} samples over {seconds[-1]:.0f} s, {rx[-1]:,} packets received "
              f"({rx[-1] / seconds[-1]:,.0f}/s of wall time); link gaps "
              f"{table.column('gaps')[-1].as_py()}")
        print("monitor RSS each minute (MiB): " + ", ".join(f"{rss[i]:.2f}" for i in minutes)
              + f", {rss[-1]:.2f} at the end")
        print(f"growth from minute 11 to the end: {rss[-1] - rss[after]:+.3f} MiB (max "
              f"{rss[after:].max():.2f})")
        print(f"monitor CPU: {(cpu[-1] - cpu[0]) / (len(cpu) - 1) * 1e3:.1f} ms per sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
