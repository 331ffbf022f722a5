"""Plots (matplotlib, PNG) of a run: offered and achieved rate with latency over time (the
paper's graphs 1–6), the latency histogram and its CDF. Every function takes plain numpy
arrays, so a script can plot any run's records the same way."""
import numpy as np

__all__ = ["rate_and_latency", "latency_histogram", "latency_cdf", "time_bins"]


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
