"""The monitor's history on disk (`wirestamp.history`) and its figures (`wirestamp plot`):
tiers, rotation, retention, exact latency per row, gaps, and the CLI's bad input."""
import datetime
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from wirestamp import regmap
from wirestamp.cli import main
from wirestamp.history import History, Tier, load
from wirestamp.monitor import Monitor, Sample
from wirestamp.plots import history_series

T0 = datetime.datetime(2027, 3, 31, 23, 0, tzinfo=datetime.timezone.utc).timestamp()
PPS = 1000                  # each stream's packets per second


class Row:
    def __init__(self, stream, n, latency):
        self.stream, self.tx_packets, self.rx_packets, self.rx_bytes = stream, n, n, 100 * n
        self.lost = self.reordered = self.duplicates = 0
        self.latency_min_ns = self.latency_max_ns = latency
        self.latency_mean_ns, self.jitter_ns = float(latency), 4.0


def samples(seconds, streams=2, step=1.0, skip=()):
    """Samples of a unit whose streams each got PPS packets a second, stream i at a latency
    of 1,000 ns + 1,000 i + 10 per minute since T0 (each minute in its own bucket), its
    histogram holding them all. `skip`: seconds with no sample (a gap)."""
    hist = {i: np.zeros(regmap.HIST_BUCKETS, dtype=np.uint64) for i in range(streams)}
    for k in range(1, int(seconds / step) + 1):
        t = k * step
        latency = [1000 + 1000 * i + 10 * int(t // 60) for i in range(streams)]
        for i in range(streams):
            hist[i][regmap.hist_bucket(latency[i])] += np.uint64(PPS * step)
        if t in skip:
            continue
        n = int(PPS * t)
        yield Sample(wall=T0 + t, time_ns=int(t * 1e9), counters={"rx_frames": streams * n},
                     streams=[Row(i, n, latency[i]) for i in range(streams)],
                     histograms={i: h.copy() for i, h in hist.items()})


def record(folder, seconds, tiers=None, **options):
    monitor = Monitor(options.get("streams", 2))
    history = History(folder, monitor.streams, **({"tiers": tiers} if tiers else {}))
    for s in samples(seconds, **options):
        monitor.add(s)
        history.add(monitor, s)
    history.close()
    return monitor


def test_tiers_rotate_by_the_clock_and_hold_exact_totals_and_latency(tmp_path):
    record(tmp_path, 2 * 3600 + 120)      # 23:00 to 01:02 across a month's end
    assert sorted(p.name for p in (tmp_path / "1s").iterdir()) == [
        "2027-03-31T23", "2027-04-01T00", "2027-04-01T01"]
    # a file per 10 minutes in the 1 s tier's hours
    assert sorted(p.name for p in (tmp_path / "1s" / "2027-04-01T00").iterdir()) == [
        f"00{m}000.parquet" for m in range(6)]
    assert sorted(p.name for p in (tmp_path / "1s" / "2027-04-01T01").iterdir()) == [
        "010000.parquet"]
    assert sorted(p.name for p in (tmp_path / "1min").iterdir()) == ["2027-03-31", "2027-04-01"]
    assert sorted(p.name for p in (tmp_path / "1min" / "2027-04-01").iterdir()) == [
        "000059.parquet", "010059.parquet"]      # an hour a file; rows at their last sample
    assert sorted(p.name for p in (tmp_path / "1h").iterdir()) == ["2027-03", "2027-04"]
    assert sorted(p.name for p in (tmp_path / "1h" / "2027-04").iterdir()) == [
        "01T005959.parquet"]
    raw, minutes, hours = (load(tmp_path, tier) for tier in ("1s", "1min", "1h"))
    assert len(raw) == 7320 and len(minutes) == 123 and len(hours) == 3
    assert minutes.column("samples").to_pylist()[:3] == [59, 60, 60]
    # Minute 5 (300-359 s): the totals at its last sample, its packets' latency exact to a bucket
    row = minutes.slice(5, 1).to_pylist()[0]
    assert row["s1_rx_packets"] == PPS * 359 and row["rx_frames"] == 2 * PPS * 359
    truth = 2000 + 10 * 5
    low = regmap.hist_lower_ns(regmap.hist_bucket(truth))
    high = regmap.hist_lower_ns(regmap.hist_bucket(truth) + 1)
    assert low <= row["s1_latency_p50_ns"] <= high and row["s1_latency_max_ns"] == truth
    # An hour's p99 sees its last minutes' packets (latency rising by 10 ns a minute)
    first_hour = hours.slice(1, 1).to_pylist()[0]
    assert first_hour["s0_latency_max_ns"] == 1000 + 10 * 119
    # The rates drawn from any tier are the truth
    for table, step in ((raw, 1), (minutes, 60), (hours, 3600)):
        series = history_series(table, step)
        assert np.allclose(series["s0_rx_packets_per_s"][1:], PPS)


def test_old_files_are_deleted_and_disk_use_stays_bounded(tmp_path):
    tiers = (Tier("1s", 0, "hour", 3600, part=60), Tier("1min", 60, "day", 86_400, part=3600))
    record(tmp_path, 4 * 3600, tiers=tiers, streams=1, step=10)
    # 23:00 to 03:00: an hour's folder goes when its end is more than an hour old
    assert sorted(p.name for p in (tmp_path / "1s").iterdir()) == [
        "2027-04-01T01", "2027-04-01T02", "2027-04-01T03"]
    assert len(list((tmp_path / "1min").iterdir())) == 2


def test_a_gap_shows_as_a_gap(tmp_path):
    record(tmp_path, 600, streams=1, skip=set(range(200, 260)))
    table = load(tmp_path, "1s")
    series = history_series(table, 1.0)
    rate = series["s0_rx_packets_per_s"]
    assert len(rate) == len(table) + 1                  # one NaN put into the gap
    gap = np.flatnonzero(np.isnan(rate))
    assert list(gap) == [0, 199, 200]                   # the first row; the gap; its end
    assert np.allclose(rate[~np.isnan(rate)], PPS)
    # the latency line breaks there too
    assert np.isnan(series["s0_latency_p50_ns"][199])


def test_the_files_on_disk_are_whole_while_the_monitor_runs(tmp_path):
    monitor = Monitor(1)
    history = History(tmp_path, 1)
    for s in samples(1300, streams=1):
        monitor.add(s)
        history.add(monitor, s)
    # no close(): as a monitor killed without warning leaves it, the 10 minutes written whole
    rows = load(tmp_path, "1s")
    assert len(rows) == 1200 and all(len(pq.read_table(p)) == 600
                                     for p in (tmp_path / "1s").rglob("*.parquet"))
    again = History(tmp_path, 1)                        # a monitor started again adds to it
    for s in samples(3, streams=1):
        s.wall += 200
        monitor.add(s)
        again.add(monitor, s)
    again.close()
    assert len(load(tmp_path, "1s")) == 1200 + 3      # the 100 not written were lost


def test_plot_draws_the_figures(tmp_path, capsys):
    record(tmp_path, 900)
    assert main(["plot", str(tmp_path), "--last", "5min"]) == 0
    out = capsys.readouterr().out
    assert "wrote 5 figures" in out and "301 rows of the 1s tier" in out  # both ends
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["latency.png", "loss.png", "monitor.png", "packets.png", "transfer.png"]
    assert all((tmp_path / "plots" / n).stat().st_size > 10_000 for n in names)
    assert main(["plot", str(tmp_path), "--tier", "1min", "--out", str(tmp_path / "m")]) == 0
    assert "16 rows of the 1min tier" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--from", "yesterday"], "--from: 'yesterday' is not a time"),
    (["--last", "a while"], "duration"),
    (["--from", "2030-01-01"], "no samples in that window")])
def test_plot_bad_input_is_one_line(tmp_path, capsys, flags, message):
    record(tmp_path, 120, streams=1)
    assert main(["plot", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_plot_of_a_folder_without_history(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no monitor history there" in capsys.readouterr().err


def test_an_unwritable_out_is_said_before_the_unit_is_touched(tmp_path):
    (tmp_path / "file").write_text("")
    result = subprocess.run([sys.executable, "-m", "wirestamp.cli", "monitor", "--device",
                             "serial:///dev/no-such-unit", "--out", str(tmp_path / "file" / "h")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"wirestamp: --out {tmp_path / 'file' / 'h'}: Not a directory"


def test_a_full_disk_is_a_clear_error_and_the_files_stay_whole(tmp_path):
    """A 200 KiB tmpfs fills with the 1 s tier: the monitor stops with one line, and what is
    on the disk still reads."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        from wirestamp.history import HistoryError
        monitor = Monitor(16)
        history = History(disk, 16)
        with pytest.raises(HistoryError, match="No space left on device"):
            for s in samples(4 * 3600, streams=16):
                monitor.add(s)
                history.add(monitor, s)
        for path in disk.rglob("*.parquet"):
            assert len(pq.read_table(path))
        assert not list(disk.rglob("*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)])
