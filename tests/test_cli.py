"""The `wirestamp` command as a newcomer meets it: bad input is one line and a non-zero exit
before the device is touched, link trouble is one line with a hint, an interrupted run leaves
valid files, and a second run does not overwrite the first."""
import json
import os
import pty
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from wirestamp.cli import main
from wirestamp.regmap import VERSION

CONTRACT = f"{VERSION >> 16}.{VERSION & 0xFFFF}"

RUN = ["run", "--device", "sim://?dut=echo&delay=3us", "--dst-ip", "10.0.0.9",
       "--dst-mac", "02:00:00:00:00:09", "--quiet"]


def wirestamp(*args, **options):
    return subprocess.run([sys.executable, "-m", "wirestamp.cli", *args], capture_output=True,
                          text=True, timeout=300, **options)


def test_version():
    result = wirestamp("--version")
    assert result.returncode == 0 and result.stdout.startswith("wirestamp 0.")


@pytest.mark.parametrize("args, field", [
    (["--rate", "0pps", "--count", "5"], "rate"),
    (["--count", "0"], "--count"),
    (["--rate", "100pps"], "--count or --duration"),
    (["--rate", "nanpps", "--count", "5"], "rate"),
    (["--rate", "infpps", "--count", "5"], "rate"),
    (["--count", "5", "--dst-mac", "02:0_:00:00:00:01"], "dst_mac"),
    (["--count", "5", "--record-sample", "-1"], "--record-sample"),
    (["--rate", "updown:9000pps/60s", "--duration", "5s"], "duration"),
])
def test_bad_run_arguments_are_one_line_and_touch_nothing(args, field, capsys):
    # Opening this port would fail with exit 3: the device must never be reached.
    assert main(["run", "--device", "serial:///dev/ttyNOSUCH0", "--dst-ip", "10.0.0.1",
                 *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err and "Traceback" not in err


def test_a_profile_needs_no_count_or_duration(tmp_path):
    result = wirestamp(*RUN, "--rate", "updown:100000pps/2ms", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert 90 < summary["streams"][0]["tx_packets"] < 110        # 100 kpps × 2 ms / 2
    assert summary["streams"][0]["lost"] == 0
    assert summary["config"]["device"] == RUN[2] and "run" in summary["config"]["command_line"]
    assert summary["unit"]["version"] == CONTRACT and summary["host_version"]
    again = wirestamp(*RUN, "--rate", "updown:100000pps/2ms", "--out", str(tmp_path / "r"))
    assert again.returncode == 2 and "already holds" in again.stderr


def test_a_missing_serial_port_is_one_line():
    result = wirestamp("info", "--device", "serial:///dev/ttyNOSUCH0")
    assert result.returncode == 3 and result.stderr.count("\n") == 1
    assert "plugged in" in result.stderr and "Traceback" not in result.stderr


def test_a_silent_serial_port_says_what_to_check():
    controller, peripheral = pty.openpty()         # a port where nothing answers
    try:
        result = wirestamp("info", "--device",
                           f"serial://{os.ttyname(peripheral)}?timeout=0.1&retries=1")
    finally:
        os.close(controller)
        os.close(peripheral)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "no valid reply after 2 attempts" in result.stderr and "baud" in result.stderr


def test_a_dead_virtual_board_is_a_link_error():
    import wirestamp as ws
    with ws.open("sim://") as device:
        device.transport._process.kill()
        device.transport._process.wait()
        with pytest.raises(ws.LinkError, match="virtual board has stopped"):
            device.identify()


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_run_stops_and_leaves_valid_files(tmp_path, signum, status):
    out = tmp_path / "run"
    # Started as a script's background job is: with SIGINT ignored, which the CLI undoes.
    process = subprocess.Popen([sys.executable, "-m", "wirestamp.cli", *RUN, "--rate",
                                "20000pps", "--count", "10000000", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while not (out / "records.parquet").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)                                 # records flowing
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status and "Traceback" not in err, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["interrupted_by"] == signum
    stream = summary["streams"][0]
    assert 0 < stream["tx_packets"] < 10_000_000        # STOP was sent
    rows = pq.read_table(out / "records.parquet").num_rows
    assert rows == summary["records"]["received"] > 0


def test_a_hung_virtual_board_ends_records_with_a_link_error():
    import wirestamp as ws
    with ws.open("sim://?timeout=0.2&retries=1") as device:
        records = device.records(poll=0.05, alive_every=0.3)
        assert len(next(records)) == 0                 # nothing yet: an empty chunk
        device.transport._process.send_signal(signal.SIGSTOP)      # hung, not gone
        try:
            with pytest.raises(ws.LinkError, match="hung"):
                for _ in range(1000):
                    next(records)
        finally:
            device.transport._process.send_signal(signal.SIGCONT)


def test_info_shows_the_units_address_and_not_arp_result():
    result = wirestamp("info", "--device", "sim://")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["mac"] == "02:77:73:00:00:01" and info["ip"] == "192.168.0.2"
    assert "arp_result" not in info["counters"]
    assert info["counters"]["rx_frames"] == 0
    # The link as the virtual board's PHY reports it over MDIO (sim/phy.py).
    assert info["link"] == [{"phy": 1, "id": "0x57535401", "link": "up",
                             "speed": "1000 Mb/s full duplex"}]


def test_an_unplugged_cable_shows_in_info_and_in_a_run(tmp_path):
    device = "sim://?dut=echo&delay=3us&cable=unplugged"
    info = json.loads(wirestamp("info", "--device", device).stdout)
    assert info["link"][0]["link"] == "down" and info["link"][0]["speed"] is None
    result = wirestamp("run", "--device", device, "--dst-ip", "10.0.0.9", "--dst-mac",
                       "02:00:00:00:00:09", "--quiet", "--count", "20", "--rate", "10000pps",
                       "--out", str(tmp_path / "r"))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["streams"][0]["tx_packets"] == 20 and summary["streams"][0]["rx_packets"] == 0
    assert summary["phys"][0]["link"] == "down"
    assert "MDIO address 1 reports link down" in result.stderr


def test_resolve_asks_arp_and_says_what_to_check():
    import wirestamp as ws
    from wirestamp.device import ResolveError
    from wirestamp.sim.models import MODEL_MAC
    with ws.open("sim://?dut=echo&delay=3us") as device:
        device.set_address("02:77:73:00:00:01", "10.0.0.2")
        assert device.resolve("10.0.0.1") == ":".join(f"{b:02x}" for b in
                                                     MODEL_MAC.to_bytes(6, "big"))
    with ws.open("sim://?dut=echo&cable=unplugged") as device:      # nobody answers
        with pytest.raises(ResolveError, match="no answer for 10.0.0.1.*--src-ip.*--dst-mac"):
            device.resolve("10.0.0.1", timeout=0.05, attempts=2)
    with ws.open("sim://?dut=loopback") as device:       # the unit hears its own requests
        with pytest.raises(ResolveError, match="each of its 2 requests itself: the port is "
                                               "looped back.*--dst-mac 02:77:73:00:00:01"):
            device.resolve("10.0.0.1", timeout=0.05, attempts=2)


def test_run_resolves_the_destination_or_says_why_not(tmp_path):
    ok = wirestamp("run", "--device", "sim://?dut=echo&delay=3us", "--dst-ip", "10.0.0.1",
                   "--count", "20", "--quiet", "--out", str(tmp_path / "echo"))
    assert ok.returncode == 0, ok.stderr
    summary = json.loads((tmp_path / "echo" / "summary.json").read_text())
    assert summary["config"]["resolved"] == {"10.0.0.1": "02:00:00:00:00:09"}
    assert summary["streams"][0]["rx_packets"] == 20
    refused = wirestamp("run", "--device", "sim://?dut=loopback", "--dst-ip", "10.0.0.1",
                        "--count", "20", "--quiet", "--out", str(tmp_path / "none"))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "ARP: no answer" in refused.stderr and not (tmp_path / "none").exists()
    # The loopback DUT is a looped port: the unit heard its own requests, and says so.
    assert "looped back" in refused.stderr and "--dst-mac 02:77:73:00:00:01" in refused.stderr


def test_the_linux_kernel_answers_wirestamp_run(tmp_path):
    from wirestamp.sim.linux import DUT_IP, UNIT_IP, unavailable
    if unavailable():
        pytest.skip(unavailable())
    result = wirestamp("run", "--device", "sim://?dut=linux&port=6001", "--dst-ip", DUT_IP,
                       "--dst-port", "6001", "--src-ip", UNIT_IP, "--count", "300",
                       "--rate", "10kpps", "--quiet", "--out", str(tmp_path / "linux"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "linux" / "summary.json").read_text())
    stream = summary["streams"][0]
    assert stream["tx_packets"] == stream["rx_packets"] == 300 and stream["lost"] == 0
    # The kernel's wall-clock time is compressed in the simulated clock: said, both places.
    assert "compressed" in summary["notice"] and "note: " in result.stderr
