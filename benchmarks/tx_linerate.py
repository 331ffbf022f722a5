"""Achieved ÷ theoretical frame rate at line rate, from a simulation of the whole core.

For each frame size, one stream at "line" sends N frames; the rate is measured from the SFD
times on the simulated GMII (first to last), the theory is 125e6 / (size + 20) frames/s.
Run: python benchmarks/tx_linerate.py [frames]
"""
import sys
import time

from wirestamp import regmap
from wirestamp.sim.runner import run_bench, simulator
from wirestamp.sim.wire import WireFrame
from wirestamp.streams import Stream, compile_streams, line_rate_pps


def measure(size, frames):
    writes = compile_streams([Stream("10.0.0.1", frame_size=size, rate="line", count=frames)])
    result = run_bench("capture", {"writes": writes, "frames": frames,
                                   "timeout_us": frames * (size + 20) * 0.008 + 50})
    decoded = [WireFrame(r) for r in result["frames"]]
    span_ns = decoded[-1].sfd_ns - decoded[0].sfd_ns
    achieved = (len(decoded) - 1) * 1e9 / span_ns
    return len(decoded), achieved, float(line_rate_pps([size]))


def main():
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"simulator: {simulator()}, {frames} frames per size, clock {regmap.CLOCK_HZ / 1e6:g} MHz")
    print(f"{'size':>6} {'frames':>7} {'achieved fps':>14} {'theory fps':>14} {'ratio':>10} {'wall s':>7}")
    for size in (64, 128, 512, 1518):
        began = time.monotonic()
        count, achieved, theory = measure(size, frames)
        print(f"{size:>6} {count:>7} {achieved:>14,.1f} {theory:>14,.1f} "
              f"{achieved / theory:>10.6f} {time.monotonic() - began:>7.1f}")


if __name__ == "__main__":
    main()
