"""Results that survive (issue 32): a signal at any point of a run, to the process group as a
terminal's Ctrl-C sends it or to the process alone, once or twice; a link that dies; SIGKILL;
a full disk; an output folder that is not a folder, or is being written by another run.
Every time the streams are stopped, summary.json is whole and says what happened, the records
flushed are readable, and nothing is left running."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import wirestamp
from wirestamp.cli import main
from wirestamp.files import DiskFull, claim
from wirestamp.records import RECORD_DTYPE, RecordWriter, parts
from wirestamp.run import run_measurement
from wirestamp.streams import Stream

DEVICE = "sim://?dut=echo&delay=3us"
RUN = ["run", "--device", DEVICE, "--dst-ip", "10.0.0.9", "--dst-mac", "02:00:00:00:00:09",
       "--quiet"]


def start(args, **options):
    """`wirestamp ARGS` in a process group of its own (as a shell's job is), marked by an
    environment variable its children inherit (`children`)."""
    mark = uuid.uuid4().hex
    env = {**os.environ, "WIRESTAMP_TEST_MARK": mark}
    process = subprocess.Popen([sys.executable, "-m", "wirestamp.cli", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True, **options)
    process.mark = mark
    return process


def children(mark, name="wirestamp_board"):
    """PIDs of the live processes called `name` that carry `mark` in their environment."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if name not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            if f"WIRESTAMP_TEST_MARK={mark}".encode() in (proc / "environ").read_bytes():
                if (proc / "stat").read_text().split(")")[-1].split()[0] != "Z":
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_for(condition, what, seconds=300):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.02)


def check_results(out, rc, err, signum, count):
    """What must hold after any ending: valid, marked summary; readable records, all of them;
    the streams stopped; no temporary files."""
    assert "Traceback" not in err, err
    summary = json.loads((out / "summary.json").read_text())
    # 128 + N: the command's own exit after signal N; -N: killed by N itself, which is how
    # Python ends when the signal comes after main() returned (a shell shows 128 + N too).
    assert rc in (0, 128 + signum, -signum), (rc, err)
    if summary["interrupted"]:
        assert rc == 128 + signum and summary["interrupted_by"] == signum
    else:       # the run had ended: whole, though a signal may have come as the command closed
        assert summary["streams"][0]["tx_packets"] == count, (rc, err)
    assert summary["stop"]["stopped"] is True and not summary["missing"]
    stream = summary["streams"][0]
    # The echo answers every packet within 3 us; a stopped run waits for them to come back.
    assert stream["tx_packets"] == stream["rx_packets"] and stream["lost"] == 0, stream
    records = summary["records"]
    table = pq.read_table(out / "records.parquet")
    assert table.num_rows == records["received"] == records["rows_written"]
    assert records["lost"] == 0 and records["left_in_fifo"] == 0
    assert sorted(table["seq"].to_pylist()) == list(range(table.num_rows))
    assert not [p for p in out.rglob(".*") if p.name != ".wirestamp.lock"]
    return summary


# When the signal comes, after the records' folder appears (the unit is about to start):
# streaming (0, 0.3 s), the settle, the final reads and writes, or after the run (rc 0).
@pytest.mark.parametrize("after", [0.0, 0.3, 0.8, 1.0, 1.2, 1.5])
@pytest.mark.parametrize("signum, group", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_a_signal_at_any_point_leaves_a_whole_marked_result(tmp_path, after, signum, group):
    out = tmp_path / "run"
    process = start([*RUN, "--rate", "100kpps", "--count", "400", "--out", str(out)])
    wait_for(lambda: (out / "records.parquet").exists() or process.poll() is not None,
             "the run to start")
    time.sleep(after)           # a point in the run: what must hold does not depend on it
    if process.poll() is None:
        (os.killpg if group else os.kill)(process.pid, signum)
    _, err = process.communicate(timeout=300)
    check_results(out, process.returncode, err, signum, count=400)
    assert not children(process.mark), "the virtual board outlived its host"


def test_two_signals_never_make_it_worse(tmp_path):
    out = tmp_path / "run"
    process = start([*RUN, "--rate", "100kpps", "--count", "100000", "--out", str(out)])
    wait_for(lambda: (out / "records.parquet").exists(), "the run to start")
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    time.sleep(0.3)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["stop"]["stopped"]
    assert 0 < summary["streams"][0]["tx_packets"] < 100_000
    assert pq.read_table(out / "records.parquet").num_rows == summary["records"]["received"]
    assert not children(process.mark)


def test_a_signal_before_the_unit_starts_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    process = start(["run", "--device", "sim://?dut=loopback", "--dst-ip", "10.0.0.1",
                     "--count", "5", "--quiet", "--out", str(out)])
    wait_for(lambda: children(process.mark), "the virtual board")     # asking ARP next
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert not out.exists()             # nothing was measured, and no empty folder is left
    wait_for(lambda: not children(process.mark), "the virtual board to end", 30)


def test_rfc2544_under_a_group_signal_keeps_what_it_found(tmp_path):
    out = tmp_path / "rfc"
    process = start(["rfc2544", "--device", "sim://?dut=echo&delay=1us&capacity=300kpps",
                     "--dst-ip", "10.0.0.9", "--dst-mac", "02:00:00:00:00:09", "--sizes",
                     "64,128,256,512,1024,1280,1518", "--quiet", "--out", str(out)])
    wait_for(lambda: children(process.mark), "the virtual board")
    time.sleep(3)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130 and "Traceback" not in err, err
    results = json.loads((out / "results.json").read_text())
    assert results["interrupted"] is True and results["stop"]["stopped"] is True
    assert (out / "report.md").exists()
    assert not children(process.mark)


def test_a_board_that_dies_mid_run_is_link_lost_with_what_was_measured(tmp_path):
    out = tmp_path / "run"
    process = start([*RUN, "--rate", "100kpps", "--count", "1000000", "--out", str(out)])
    wait_for(lambda: (out / "records.parquet").exists(), "the run to start")
    os.kill(children(process.mark)[0], signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 3 and "Traceback" not in err, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["link_lost"] is True and summary["stop"]["stopped"] is True
    assert "virtual board has ended" in summary["stop"]["how"]
    assert "streams" in summary["missing"] and summary["streams"] is None
    assert pq.read_table(out / "records.parquet").num_rows == summary["records"]["received"]
    assert "what was measured is in" in err


class Severed:
    """A transport that works, then loses every byte both ways once `cut()` is called, while
    the unit behind it runs on; `reopen` is a fresh connection to the same unit."""
    def __init__(self, inner):
        self.inner, self.severed, self.reopened = inner, False, 0
        self.settle_s = inner.settle_s

    def cut(self):
        self.severed = True

    def write(self, data):
        if not self.severed:
            self.inner.write(data)

    def read(self, timeout):
        if self.severed:
            time.sleep(timeout)
            return b""
        return self.inner.read(timeout)

    def reopen(self):
        self.reopened += 1
        self.inner.read(0.2)                # what the unit sent to the old link
        return self.inner

    def close(self):
        self.inner.close()


def test_a_lost_link_stops_the_streams_over_a_new_connection(tmp_path):
    with wirestamp.open(f"{DEVICE}&timeout=0.2&retries=1") as device:
        severed = Severed(device.transport)
        device._transport = severed
        stream = Stream("10.0.0.9", dst_mac="02:00:00:00:00:09", rate=100_000,
                        count=10_000_000)
        real = device.records

        def records(*args, **kwargs):       # the link dies once records are flowing
            flowing = real(*args, **kwargs)
            try:
                for chunk in flowing:
                    if len(chunk):
                        severed.cut()
                    yield chunk
            finally:
                flowing.close()
        device.records = records
        with pytest.raises(wirestamp.LinkError) as caught:
            run_measurement(device, [stream], tmp_path, progress=False)
        summary = caught.value.summary
        assert severed.reopened == 1 and summary["link_lost"] is True
        assert summary["stop"] == {"stopped": True, "how": summary["stop"]["how"]}
        assert "new connection" in summary["stop"]["how"]
        # The unit sends nothing more: two reads of TX_FRAMES 20 us of its clock apart agree.
        sent = device.read_register("TX_FRAMES")
        began = device.read_register("TIME")
        wait_for(lambda: device.read_register("TIME") - began > 20_000, "20 us of the unit")
        assert device.read_register("TX_FRAMES") == sent
        assert not device.running()
        # What it sent is in the summary, read over the new connection.
        assert summary["streams"][0]["tx_packets"] == device.read_register("STREAM_TX", 0) > 0
        assert json.loads((tmp_path / "summary.json").read_text())["link_lost"] is True


def _columns(first, n):
    chunk = np.zeros(n, dtype=RECORD_DTYPE)
    columns = {name: chunk[name] for name in RECORD_DTYPE.names}
    columns["seq"] = np.arange(first, first + n, dtype=np.uint64)
    columns["latency_ns"] = np.zeros(n, dtype=np.int64)
    return columns


def test_sigkill_keeps_every_flushed_record(tmp_path):
    path = tmp_path / "records.parquet"
    script = (f"import os, signal, sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              f"from test_lose_nothing import _columns\n"
              f"from wirestamp.records import RecordWriter\n"
              f"writer = RecordWriter({str(path)!r}, rows=1000, seconds=3600)\n"
              f"for i in range(55): writer.write(_columns(i * 100, 100))\n"
              f"os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert len(parts(path)) == 5
    assert pq.read_table(path)["seq"].to_pylist() == list(range(5000))    # 500 unflushed


@pytest.fixture
def tiny_disk(tmp_path):
    """A 320 KiB tmpfs (root, and mount allowed), unmounted afterwards."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(folder)],
            capture_output=True).returncode:
        pytest.skip("needs root and mount (a small tmpfs) to fill a disk")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_keeps_the_parts_before_it(tiny_disk):
    path = tiny_disk / "records.parquet"
    writer = RecordWriter(path, rows=2000, seconds=3600)
    written = 0
    with pytest.raises(DiskFull) as caught:
        for i in range(10_000):
            rng = np.random.default_rng(i)
            columns = _columns(i * 1000, 1000)
            columns["rx_ns"] = rng.integers(0, 2**60, 1000, dtype=np.uint64)  # incompressible
            writer.write(columns)
            written += 1000
    assert "no space left" in str(caught.value) and "MiB free" in str(caught.value)
    kept = pq.read_table(path)["seq"].to_pylist()
    assert kept == list(range(len(kept))) and 0 < len(kept) == writer.rows_written
    assert not list(path.glob(".*"))            # the part that failed is gone
    writer.close()                              # and closing after it is quiet


def test_a_run_onto_a_full_disk_is_exit_4_with_the_path(tiny_disk):
    out = tiny_disk / "run"
    process = start([*RUN, "--rate", "100kpps", "--count", "10000000", "--out", str(out)])
    _, err = process.communicate(timeout=600)
    assert process.returncode == 4, err
    assert "no space left on the device writing" in err and str(out) in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["disk_full"] is True and summary["stop"]["stopped"] is True
    assert summary["interrupted"] is False and "records after the disk filled" in \
        summary["missing"]
    assert pq.read_table(out / "records.parquet").num_rows == \
        summary["records"]["rows_written"]
    assert not children(process.mark)


@pytest.mark.parametrize("make, said", [
    (lambda p: p.write_text("x") and p, "is a file, not a folder"),
    (lambda p: Path("/proc/version/x"), "cannot write in"),
])
def test_out_is_checked_before_the_unit_is_touched(tmp_path, capsys, make, said):
    out = make(tmp_path / "out")
    # Opening this port would fail with exit 3: the device must never be reached.
    assert main(["run", "--device", "serial:///dev/ttyNOSUCH0", "--dst-ip", "10.0.0.1",
                 "--count", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and "Traceback" not in err


def test_a_crashed_runs_records_count_as_results(tmp_path, capsys):
    (tmp_path / "records.parquet").mkdir()          # records, no summary: SIGKILL
    assert main(["run", "--device", "serial:///dev/ttyNOSUCH0", "--dst-ip", "10.0.0.1",
                 "--count", "5", "--out", str(tmp_path)]) == 2
    assert "already holds a run's results (records.parquet)" in capsys.readouterr().err


def test_a_folder_being_written_is_refused_by_name(tmp_path, capsys):
    with claim(tmp_path / "busy"):
        assert main(["run", "--device", "serial:///dev/ttyNOSUCH0", "--dst-ip", "10.0.0.1",
                     "--count", "5", "--out", str(tmp_path / "busy"), "--overwrite"]) == 2
    assert f"being written by another wirestamp run (pid {os.getpid()})" in \
        capsys.readouterr().err
    with claim(tmp_path / "busy"):                  # released: free again
        pass


def test_a_dead_hosts_board_folder_is_removed_at_the_next_start():
    from wirestamp.sim.runner import _build_root
    import fcntl
    dead = _build_root() / f"wirestamp-board-test{uuid.uuid4().hex[:8]}"
    live = _build_root() / f"wirestamp-board-test{uuid.uuid4().hex[:8]}"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / ".lock").touch()
    held = os.open(live / ".lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        with wirestamp.open("sim://") as device:
            device.identify()
        assert not dead.exists() and live.exists()
    finally:
        os.close(held)
        live.joinpath(".lock").unlink()
        live.rmdir()


def test_a_serial_port_has_one_owner_and_the_second_is_told_who(tmp_path):
    import pty
    controller, peripheral = pty.openpty()
    port = os.ttyname(peripheral)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, serial; p = serial.Serial(sys.argv[1], "
                               "exclusive=True); print('open', flush=True); sys.stdin.read()",
                               port], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(wirestamp.LinkError, match=rf"in use by .*\(pid {holder.pid}\)"):
            wirestamp.open(f"serial://{port}")
    finally:
        holder.stdin.close()
        holder.wait()
        os.close(controller)
        os.close(peripheral)


def test_a_fault_of_the_host_code_mid_run_still_stops_the_streams(tmp_path, monkeypatch):
    import wirestamp.run
    with wirestamp.open(DEVICE) as device:
        def broken(*args):
            raise ZeroDivisionError("a fault in the host's code")
        monkeypatch.setattr(wirestamp.run, "ingest", broken)
        stream = Stream("10.0.0.9", dst_mac="02:00:00:00:00:09", rate=100_000,
                        count=10_000_000)
        with pytest.raises(ZeroDivisionError):
            run_measurement(device, [stream], tmp_path, progress=False)
        assert not device.running()
        assert not (tmp_path / ".wirestamp.reserve").exists()
