"""Plots (matplotlib, PNG) of a run: offered and achieved rate with latency over time (the
paper's graphs 1–6), the latency histogram and its CDF; an RFC 2544 run's results; and a
monitor's history over days (`wirestamp plot`). Every function takes plain numpy
arrays, so a script can plot any run's records the same way."""
import numpy as np

__all__ = ["rate_and_latency", "latency_histogram", "latency_cdf", "time_bins",
           "rfc2544_figures", "history_series", "history_figures"]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")               # files only, no display needed
    import matplotlib.pyplot as plt
    return plt


def time_bins(tx_ns, rx_ns, latency_ns, bins=50):
    """Per time bin (by transmit time, from the first packet): received packets per second,
    mean and maximum latency. Returns (bin start s, width s, achieved pps, mean ns, max ns)."""
    start = tx_ns.min()
    edges = np.linspace(0, (tx_ns.max() - start) * (1 + 1e-9) + 1, bins + 1)
    index = np.clip(np.searchsorted(edges, tx_ns - start, side="right") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    total = np.bincount(index, weights=latency_ns, minlength=bins)
    worst = np.zeros(bins)
    np.maximum.at(worst, index, latency_ns)
    width = (edges[1] - edges[0]) / 1e9
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return edges[:-1] / 1e9, width, count / width, mean, np.where(count > 0, worst, np.nan)


def rate_and_latency(path, start_s, width_s, achieved_pps, mean_ns, max_ns, offered=None,
                     title="rate and latency over time"):
    """Two panels sharing the time axis: offered (a function of time, s → pps) and achieved
    rate above, mean and maximum latency below."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    middle = (start_s + width_s / 2) * 1e3
    if offered is not None:
        fine = np.linspace(0, (start_s[-1] + width_s), 400)
        top.plot(fine * 1e3, [offered(t) for t in fine], label="offered", color="0.5")
    top.step(middle, achieved_pps, where="mid", label="achieved (received)")
    top.set_ylabel("packets/s")
    top.legend(loc="upper right")
    bottom.plot(middle, mean_ns / 1e3, label="mean")
    bottom.plot(middle, max_ns / 1e3, label="max", linestyle=":")
    bottom.set_ylabel("latency, µs")
    bottom.set_xlabel("time from the first packet, ms")
    bottom.legend(loc="upper right")
    top.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def latency_histogram(path, latency_ns, bins=100, title="latency histogram"):
    plt = _pyplot()
    fig, axes = plt.subplots(figsize=(8, 4))
    axes.hist(np.asarray(latency_ns) / 1e3, bins=bins)
    axes.set_xlabel("latency, µs")
    axes.set_ylabel("packets")
    axes.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def latency_cdf(path, latency_ns, title="latency CDF"):
    plt = _pyplot()
    values = np.sort(np.asarray(latency_ns)) / 1e3
    fig, axes = plt.subplots(figsize=(8, 4))
    axes.plot(values, np.arange(1, len(values) + 1) / max(len(values), 1))
    axes.set_xlabel("latency, µs")
    axes.set_ylabel("fraction of packets ≤ latency")
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _save(fig, axes, path, title, xlabel, ylabel):
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def rfc2544_figures(results, out):
    """PNGs of an RFC 2544 run's results (`wirestamp.rfc2544`) in `out`; their file names.
    Throughput per size beside the line rate, latency per size, the loss curves, and the
    back-to-back bursts."""
    plt = _pyplot()
    names = []
    if results["throughput"]:
        rows = results["throughput"]
        sizes = [str(e["size"]) for e in rows]
        fig, axes = plt.subplots(figsize=(8, 4))
        axes.bar(sizes, [e["rate_pps"] for e in rows], label="throughput (zero loss)"
                 if not results["settings"]["accept_loss"] else "throughput")
        axes.plot(sizes, [e["line_pps"] for e in rows], "k_", markersize=30, label="line rate")
        axes.set_yscale("log")
        for i, e in enumerate(rows):
            axes.annotate(f"{e['mbps']:,.0f} Mb/s", (i, e["rate_pps"]), ha="center",
                          va="bottom", fontsize=8)
        _save(fig, axes, out / "throughput.png", "RFC 2544 throughput", "frame size, bytes",
              "frames/s")
        plt.close(fig)
        names.append("throughput.png")
    if results["latency"]:
        rows = [e for e in results["latency"] if e["frames"]]
        sizes = [e["size"] for e in rows]
        fig, axes = plt.subplots(figsize=(8, 4))
        for key, style in (("min_ns", "v-"), ("mean_ns", "o-"), ("p99_ns", "s--"),
                           ("max_ns", "^:")):
            axes.plot(sizes, [e[key] / 1e3 for e in rows], style, label=key[:-3])
        _save(fig, axes, out / "latency.png", "RFC 2544 latency at the throughput rate",
              "frame size, bytes", "latency, µs")
        plt.close(fig)
        names.append("latency.png")
    if results["loss"]:
        fig, axes = plt.subplots(figsize=(8, 4))
        for e in results["loss"]:
            steps = e["steps"]
            axes.plot([st["percent_of_line"] for st in steps],
                      [st["loss_percent"] for st in steps], "o-", label=f"{e['size']} B")
        _save(fig, axes, out / "loss.png", "RFC 2544 frame loss rate",
              "offered load, % of line rate", "frames lost, %")
        plt.close(fig)
        names.append("loss.png")
    if results["back_to_back"]:
        rows = results["back_to_back"]
        sizes = [str(e["size"]) for e in rows]
        mean = np.array([e["frames_mean"] for e in rows])
        spread = [mean - [e["frames_min"] for e in rows], [e["frames_max"] for e in rows] - mean]
        fig, axes = plt.subplots(figsize=(8, 4))
        axes.bar(sizes, mean, yerr=spread, capsize=4, label="longest burst without loss")
        axes.plot(sizes, [e["longest_tried"] for e in rows], "k_", markersize=30,
                  label="longest tried")
        _save(fig, axes, out / "back_to_back.png", "RFC 2544 back-to-back frames",
              "frame size, bytes", "frames")
        plt.close(fig)
        names.append("back_to_back.png")
    return names


ERRORS = ("rx_fcs_errors", "rx_errors", "rx_runts", "rx_giants", "rx_preamble_errors",
          "rx_ip_errors", "reply_dropped", "record_overflow", "sched_late")


def history_series(table, step):
    """Plain arrays from a history table (`history.load`): `time` (datetime64, UTC), per
    second rates of every total column (`<name>_per_s`), the gauges as they are, and
    `restarts_at` (times the unit restarted). A rate at row i is over rows i-1..i. Where
    rows are more than 1.5 `step` seconds apart (the monitor was stopped, or lost the link)
    a NaN row is put between them, so a line stops at the gap instead of crossing it."""
    columns = {name: table.column(name).to_numpy(zero_copy_only=False)
               for name in table.column_names}
    stamp = columns.pop("time").astype("datetime64[ms]")
    seconds = stamp.astype(np.int64) / 1e3
    dt = np.diff(seconds, prepend=np.nan)
    series = {}
    from .monitor import STREAM_COUNTERS, UNIT_COUNTERS
    totals = [name for name in columns if name in UNIT_COUNTERS or name == "cpu_s"
              or name.split("_", 1)[-1] in STREAM_COUNTERS]
    for name, values in columns.items():
        values = values.astype(float)
        if name in totals:
            series[f"{name}_per_s"] = np.diff(values, prepend=np.nan) / dt
        else:
            series[name] = values
    restarts = columns["restarts"].astype(float)
    series["restarts_at"] = stamp[1:][np.diff(restarts) > 0]
    breaks = np.flatnonzero(dt > 1.5 * step)
    for name, values in series.items():
        if name != "restarts_at":
            values[breaks] = np.nan if name.endswith("_per_s") else values[breaks]
            series[name] = np.insert(values, breaks, np.nan)
    gap_times = stamp[breaks - 1] + (stamp[breaks] - stamp[breaks - 1]) / 2
    series["time"] = np.insert(stamp, breaks, gap_times)
    return series


def history_figures(table, step, out, title="wirestamp monitor"):
    """The Dante-style PNGs of a monitor's history (`wirestamp plot`) in `out`; their names:
    transfer rate in and out, packet rates per stream, loss and errors, latency and jitter,
    and the monitor's own memory and CPU."""
    plt = _pyplot()
    s = history_series(table, step)
    t = s["time"]
    streams = sorted({int(name[1:].split("_")[0]) for name in s
                      if name.startswith("s") and name[1:2].isdigit()})
    names = []

    def figure(name, panels, heading):
        fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(10, 3 * len(panels)),
                                 squeeze=False)
        for ax, (ylabel, lines) in zip(axes[:, 0], panels):
            for label, values, style in lines:
                ax.plot(t, values, style, label=label, linewidth=1)
            for when in s["restarts_at"]:
                ax.axvline(when, color="red", linestyle=":", linewidth=1)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            if lines:
                ax.legend(loc="upper left", fontsize=7, ncol=4)
        axes[0, 0].set_title(f"{title}: {heading}" + (" (dotted: the unit restarted)"
                                                      if len(s["restarts_at"]) else ""))
        axes[-1, 0].set_xlabel("time, UTC")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        names.append(name)

    figure("transfer.png", [("Mb/s", [
        ("out (tx)", s["tx_bytes_per_s"] * 8 / 1e6, "-"),
        ("in (rx)", s["rx_bytes_per_s"] * 8 / 1e6, "-")])], "transfer rate")
    figure("packets.png", [
        ("tx packets/s", [(f"stream {i}", s[f"s{i}_tx_packets_per_s"], "-") for i in streams]),
        ("rx packets/s", [(f"stream {i}", s[f"s{i}_rx_packets_per_s"], "-") for i in streams])],
        "packet rates per stream")
    errors = [(name, s[f"{name}_per_s"], "-") for name in ERRORS
              if np.nansum(s.get(f"{name}_per_s", np.zeros(1))) > 0]
    figure("loss.png", [
        ("lost packets/s", [(f"stream {i}", s[f"s{i}_lost_per_s"], "-") for i in streams]),
        ("reordered, duplicates /s", [(f"{i} {kind}", s[f"s{i}_{kind}_per_s"], style)
                                      for i in streams for kind, style in
                                      (("reordered", "-"), ("duplicates", "--"))]),
        ("errors/s", errors)], "loss and errors")
    figure("latency.png", [
        ("latency, µs", [(f"{i} {q}", s[f"s{i}_latency_{q}_ns"] / 1e3, style)
                         for i in streams for q, style in
                         (("p50", "-"), ("p99", "--"), ("max", ":"))]),
        ("jitter (RFC 3550), ns", [(f"stream {i}", s[f"s{i}_jitter_ns"], "-")
                                   for i in streams])], "latency percentiles and jitter")
    figure("monitor.png", [("RSS, MiB", [("monitor RSS", s["rss_mib"], "-")]),
                           ("CPU, %", [("monitor CPU", s["cpu_s_per_s"] * 100, "-")])],
           "the monitor's own memory and CPU")
    return names
