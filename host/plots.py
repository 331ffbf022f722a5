"""Plots (matplotlib, PNG) of a run: offered and achieved rate with latency over time (the
paper's graphs 1–6), the latency histogram and its CDF. Every function takes plain numpy
arrays, so a script can plot any run's records the same way."""
import numpy as np

__all__ = ["rate_and_latency", "latency_histogram", "latency_cdf", "time_bins",
           "rfc2544_figures"]


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
