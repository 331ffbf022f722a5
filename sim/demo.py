"""`wirestamp demo`: the paper's experiment on the virtual board.

The rate rises to a peak and falls back (`UpDown`), as in the paper's second experiment; each
trial is a full `run_measurement` through `sim://` (the same code path as hardware), against
the echo model (default: a delay drawn from an exponential distribution, as a loaded stack's
would be) or against the Linux kernel (`--dut linux`). Per trial the paper's Table 2 row, over
all trials its Table 1 row; plots and data go to the output folder.
"""
import json
import os
import time
from pathlib import Path

import numpy as np

from .. import plots
from ..analysis import table, trial, trial_summary
from ..rates import UpDown
from ..run import progress_bar, run_measurement
from ..streams import Stream

__all__ = ["run_demo", "DEFAULT_ECHO"]

DEFAULT_ECHO = "delay=exp:20us&seed=1"


def _trial_table(trials):
    lines = [f"{'trial':>5}{'packets':>9}{'mean, µs':>11}{'min, µs':>10}{'max, µs':>10}"
             f"{'error, µs':>11}"]
    for i, t in enumerate(trials, 1):
        lines.append(f"{i:>5}{t.count:>9}{t.mean:>11.3f}{t.min:>10.3f}{t.max:>10.3f}"
                     f"{t.error:>11.4f}")
    return "\n".join(lines)


def run_demo(dut="echo", peak=100_000, seconds=0.04, trials=10, out=Path("out/demo"),
             echo=DEFAULT_ECHO, progress=True, link="serial"):
    profile = UpDown(peak, seconds)
    out.mkdir(parents=True, exist_ok=True)
    url = f"sim://?dut={dut}&{echo}" if dut == "echo" else f"sim://?dut={dut}"
    if link != "serial":
        url += f"&link={link}"
    print(f"wirestamp demo: {trials} trials of {profile!r} (64-byte frames) through {url}\n"
          "(the first run builds the virtual board: about a minute)")
    rows, latencies, windows = [], [], []
    bar = progress_bar(progress, trials, "trials")
    try:
        linux, last = _trials(url, dut, profile, trials, out, bar, rows, latencies, windows)
    finally:
        bar(None)               # closed whatever ends the trials (Ctrl-C among them)
    stack = _stack_report(linux, windows, out) if linux else ""
    per_trial = [r for r, _ in rows]
    overall = _over(per_trial)
    what = ("round trip in simulated time (the kernel's wall-clock time is compressed to the "
            "simulator's pace; its stack times are below)" if dut == "linux" else
            "request SFD → reply SFD, hardware stamps")
    report = (f"Table 2: latency per trial ({what})\n"
              f"{_trial_table(per_trial)}\n\nTable 1: over {trials} trials (95 %)\n"
              f"{table({dut: overall})}\n{stack}")
    print("\n" + report)
    (out / "tables.txt").write_text(report)

    tx_ns = last["tx_ns"].to_numpy().astype(np.int64)
    rx_ns = last["rx_ns"].to_numpy().astype(np.int64)
    start, width, achieved, mean_ns, max_ns = plots.time_bins(tx_ns, rx_ns,
                                                              last["latency_ns"].to_numpy())
    plots.rate_and_latency(out / "rate_latency.png", start, width, achieved, mean_ns, max_ns,
                           offered=profile.rate_at,
                           title=f"last trial: {profile!r} against dut={dut}")
    every = np.concatenate(latencies)
    plots.latency_histogram(out / "latency_histogram.png", every,
                            title=f"latency, all {trials} trials")
    plots.latency_cdf(out / "latency_cdf.png", every, title=f"latency CDF, all {trials} trials")
    with open(out / "trials.csv", "w") as f:
        f.write("trial,packets,mean_us,min_us,max_us,error_us,lost,reordered,duplicates\n")
        for i, (t, s) in enumerate(rows, 1):
            f.write(f"{i},{t.count},{t.mean},{t.min},{t.max},{t.error},{s['lost']},"
                    f"{s['reordered']},{s['duplicates']}\n")
    result = {"dut": dut, "profile": repr(profile), "trials": [r.__dict__ for r in per_trial],
              "summary": overall.__dict__, "streams": [s for _, s in rows]}
    (out / "demo.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out}/: tables.txt, trials.csv, demo.json, rate_latency.png, "
          f"latency_histogram.png, latency_cdf.png, trial-NN/records.parquet")
    return result


def _over(per_trial):
    """Table 1's row from the trials' Table 2 rows."""
    return trial_summary([t.mean for t in per_trial], mins=[t.min for t in per_trial],
                         maxs=[t.max for t in per_trial])


def _stack_report(linux, windows, out):
    """The paper's question against the real kernel: per trial, the inbound stack time (kernel
    receive stamp → application) and the outbound one (application send → frame out of the
    TAP device), from wall clocks (`wirestamp.sim.linux.split_stack_times`)."""
    from .linux import split_stack_times
    reflections, taps = linux.reflections, linux.taps()
    if reflections is None or not len(reflections):
        return "\nThe reflector logged nothing: no stack times.\n"
    splits = []
    for began, ended in windows:
        in_trial = taps[(taps["to_kernel_ns"] >= began) & (taps["to_kernel_ns"] < ended)]
        seen = reflections[(reflections["kernel_rx_ns"] >= began)
                           & (reflections["kernel_rx_ns"] < ended)]
        splits.append(split_stack_times(seen, in_trial))
    report = ""
    for name in ("inbound_ns", "outbound_ns"):
        per_trial = [trial(split[name] / 1e3) for split in splits if len(split[name]) >= 2]
        if len(per_trial) >= 2:
            summary = _over(per_trial)
            label = name.replace("_ns", "")
            report += (f"\n{label} stack time per trial (Linux {os.uname().release})\n"
                       f"{_trial_table(per_trial)}\n{table({label: summary})}\n")
    np.save(out / "reflections.npy", reflections)
    np.save(out / "tap_log.npy", taps)
    return report


def _stream(device, dut, profile):
    if dut == "linux":
        linux = device.transport.linux
        device.set_address(linux.unit_mac, linux.unit_ip)
        return Stream(linux.ip, dst_mac=linux.mac, src_ip=linux.unit_ip,
                      src_mac=linux.unit_mac, rate=profile)
    return Stream("10.0.0.9", dst_mac="02:00:00:00:00:09", rate=profile)


def _trials(url, dut, profile, trials, out, bar, rows, latencies, windows):
    """Each trial, a `run_measurement` into out/trial-NN; (the Linux DUT or None, the last
    trial's records)."""
    import pyarrow.parquet as pq

    import wirestamp
    last = None
    with wirestamp.open(url) as device:
        stream = _stream(device, dut, profile)
        for i in range(trials):
            folder = out / f"trial-{i + 1:02d}"
            began = time.clock_gettime_ns(time.CLOCK_REALTIME)
            summary = run_measurement(device, [stream], folder, progress=False)
            windows.append((began, time.clock_gettime_ns(time.CLOCK_REALTIME)))
            records = pq.read_table(folder / "records.parquet")
            latency_ns = records["latency_ns"].to_numpy()
            if len(latency_ns) < 2:
                raise RuntimeError(f"trial {i + 1}: {len(latency_ns)} packets came back; "
                                   f"see {folder / 'summary.json'}")
            rows.append((trial(latency_ns / 1e3), summary["streams"][0]))
            latencies.append(latency_ns)
            last = records
            bar(i + 1)
        linux = device.transport.linux if dut == "linux" else None
    return linux, last
