"""`wirestamp demo`: the paper's second experiment (rate up to a peak, then back down) generated
by the real gateware in simulation, every frame decoded and checked, and the achieved rate
compared with the profile window by window.

Until the virtual board lands this is the end-to-end run there is: host configuration →
register writes → core (scheduler, generator, MAC) → GMII → decoder.
"""
import csv
import json
import time
from fractions import Fraction
from pathlib import Path

from ..rates import UpDown
from ..streams import Stream, compile_streams
from .runner import run_bench, simulator
from .wire import WireError, WireFrame

__all__ = ["run_demo"]


def _ideal_count(profile, t):
    """Packets the profile asks for in [0, t): the integral of its piecewise-linear rate."""
    total, start = Fraction(0), Fraction(0)
    for segment in profile.segments():
        length = segment.seconds
        span = min(max(t - start, 0), length)
        slope = (segment.end - segment.start) / length
        total += segment.start * span + slope * span * span / 2
        start += length
    return total


def run_demo(peak=1_000_000, seconds=0.004, windows=20, out=Path("out/demo")):
    profile = UpDown(peak, seconds)
    stream = Stream("10.0.0.1", dst_port=5001, frame_size=64, rate=profile)
    expected = _ideal_count(profile, profile.seconds)
    print(f"wirestamp demo: UpDown to {peak:,.0f} pps over {seconds * 1e3:g} ms of simulated "
          f"time, 64-byte frames, on {simulator()} (the first run builds the core: ~30 s)")
    began = time.monotonic()
    result = run_bench("capture", {
        "writes": compile_streams([stream]), "frames": int(expected) + 16,
        "timeout_us": float(profile.seconds) * 1e6 + 100, "registers": ["TX_FRAMES"]})
    wall = time.monotonic() - began

    frames, errors = [], []
    for record in result["frames"]:
        try:
            frames.append(WireFrame(record))
        except WireError as error:
            errors.append(str(error))
    start = frames[0].sfd_ns if frames else 0
    offsets = [Fraction(f.sfd_ns - start, 10**9) for f in frames]

    rows = []
    print(f"\n{'window (µs)':>16} {'profile pps':>12} {'achieved pps':>13} {'packets':>8}")
    for w in range(windows):
        a, b = profile.seconds * w / windows, profile.seconds * (w + 1) / windows
        want = _ideal_count(profile, b) - _ideal_count(profile, a)
        got = sum(a <= t < b for t in offsets)
        rows.append({"start_us": float(a * 10**6), "end_us": float(b * 10**6),
                     "profile_pps": float(want / (b - a)), "achieved_pps": float(got / (b - a)),
                     "packets": got, "profile_packets": float(want)})
        print(f"{float(a * 1e6):7.0f}–{float(b * 1e6):<7.0f} {float(want / (b - a)):12,.0f} "
              f"{float(got / (b - a)):13,.0f} {got:8d}")

    check = {
        "frames": len(result["frames"]),
        "profile_packets": float(expected),
        "invalid_frames": len(errors),
        "stamp_is_sfd_time": all(f.tx_ns == f.sfd_ns for f in frames),
        "sequence_contiguous": [f.seq for f in frames] == list(range(len(frames))),
        "window_error_max": max((abs(r["packets"] - r["profile_packets"]) for r in rows),
                                default=0),
        "tx_frames_register": result["registers"]["TX_FRAMES"],
        "wall_seconds": round(wall, 1),
    }
    check["ok"] = (not errors and check["stamp_is_sfd_time"] and check["sequence_contiguous"]
                   and abs(len(frames) - expected) <= 2 and check["window_error_max"] <= 2
                   and check["tx_frames_register"] == len(frames))
    print(f"\n{len(frames)} frames (profile: {float(expected):.1f}); all valid: {not errors}; "
          f"TX stamp = SFD time: {check['stamp_is_sfd_time']}; "
          f"sequence contiguous: {check['sequence_contiguous']}; "
          f"worst window off by {check['window_error_max']:.2f} packets; {wall:.1f} s wall")

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "frames.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["stream", "seq", "tx_ns", "size"])
        writer.writerows([fr.stream, fr.seq, fr.tx_ns, fr.size] for fr in frames)
    summary = {"profile": repr(profile), "windows": rows, "check": check, "errors": errors[:10]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'frames.csv'} and {out / 'summary.json'}")
    return summary
