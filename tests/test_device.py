"""The host library against the real gateware: `wirestamp.open("serial://PTY")` talks to the
whole unit simulated in Verilator, through its UART, over a pseudo-terminal served by the
cocotb bench. Nothing in the host code path knows it is not a board."""
import threading
from contextlib import closing
import time

import pytest

import numpy as np

import wirestamp
from wirestamp.device import CHUNK_RECORDS, RECORD_DTYPE
from wirestamp.protocol import RECORD_TAG, Op, decode
from wirestamp.sim.runner import UNIT, run_bench
from wirestamp.streams import Stream
from wirestamp.regmap import VERSION

from helpers import wait_for_port

CONTRACT = f"{VERSION >> 16}.{VERSION & 0xFFFF}"


def serve(tmp_path_factory, **options):
    folder = tmp_path_factory.mktemp("serve")
    stop, port_file = folder / "stop", folder / "port"
    # The unit runs freely until the stop file appears; the limit only ends a forgotten one.
    # (2 s of simulated time was too short: with the host starved by other jobs, the simulated
    # unit ran out of time before the module's last test, "no valid reply".)
    params = {"stop_file": str(stop), "port_file": str(port_file), "limit_us": 60_000_000,
              **options}
    thread = threading.Thread(target=run_bench, args=("uart_serve", params),
                              kwargs={"module": "wirestamp.sim.uart_bench", "toplevel": UNIT},
                              daemon=True)
    thread.start()
    port = wait_for_port(port_file, thread, "the simulated unit")
    # The bench simulates the UART bit by bit: on a loaded machine a long reply (the
    # counters, 40 words) takes seconds, and a timeout shorter than that asks again while
    # the first is still coming, each time further behind. Replies are never lost here.
    yield f"serial://{port}?baud=3000000&timeout=30"
    stop.write_text("")
    thread.join(timeout=60)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The simulated unit, its GMII TX cabled to RX, at a serial:// URL."""
    yield from serve(tmp_path_factory, loopback=True)


@pytest.fixture
def device(served):
    # One connection at a time: two readers on one pseudo-terminal would steal each other's
    # replies, as they would on a real serial port.
    with wirestamp.open(served) as dev:
        yield dev


@pytest.fixture(scope="module")
def noisy_device(tmp_path_factory):
    for url in serve(tmp_path_factory, corrupt_every=101):
        with wirestamp.open(url) as dev:
            yield dev


def test_identify(device):
    info = device.identify()
    assert info.version == CONTRACT and info.clock_hz == 125_000_000 and info.streams == 16


def test_registers_round_trip_and_bad_input_is_refused_first(device):
    device.set_address("02:aa:bb:cc:dd:ee", "10.9.8.7")
    assert device.read_register("UNIT_MAC") == 0x02AABBCCDDEE
    assert device.read_register("UNIT_IP") == 0x0A090807
    with pytest.raises(ValueError, match="mac"):
        device.set_address("02:aa:bb", "10.0.0.1")
    with pytest.raises(ValueError, match="frame_size"):
        device.configure([Stream("10.0.0.1", frame_size=9000)])
    assert device.read_register("UNIT_IP") == 0x0A090807


def test_configure_start_and_count(device):
    device.configure([Stream("10.0.0.1", rate=100_000, count=25)])
    device.start()
    device.wait(timeout=120, poll=0.2)
    assert device.read_register("STREAM_TX", 0) == 25
    assert device.stream_stats(0).tx_packets == 25
    assert device.counters()["tx_frames"] == 25


def test_records_stream_in_bounded_numpy_chunks(device):
    began = device.read_register("TIME")        # records from an earlier run are older
    device.configure([Stream("10.0.0.1", rate=200_000, count=40)])
    device.start()
    seen = []
    with closing(device.records()) as stream:    # closing it stops the record stream
        for chunk in stream:
            seen.append(chunk)
            if sum(np.count_nonzero(c["rx_ns"] >= began) for c in seen) >= 40:
                break
    records = np.concatenate(seen)
    records = records[records["rx_ns"] >= began]
    assert records.dtype == RECORD_DTYPE and max(len(c) for c in seen) <= CHUNK_RECORDS
    assert list(records["seq"]) == list(range(40))
    assert set(records["rx_ns"] - records["tx_ns"]) == {8}     # the 1-cycle cable
    stats = device.stream_stats(0)
    assert (stats.rx_packets, stats.lost, stats.latency_min_ns, stats.latency_max_ns) == \
        (40, 0, 8, 8)
    assert stats.latency_stddev_ns == 0


def test_a_noisy_line_is_retried_and_never_wrong(noisy_device):
    for i in range(12):
        noisy_device.write_register("ARP_TARGET", 0x0A000000 + i)
        assert noisy_device.read_register("ARP_TARGET") == 0x0A000000 + i
        assert noisy_device.identify().clock_hz == 125_000_000
    assert noisy_device._deframer.errors > 0, "the line really was damaged"


def test_cli_run_writes_summary_and_parquet(served, tmp_path):
    import json

    import pyarrow.parquet as pq

    from wirestamp.cli import main
    # A cable back to the unit itself: nobody answers ARP, so the MAC is given.
    assert main(["run", "--device", served, "--dst-ip", "10.0.0.1", "--rate", "250kpps",
                 "--dst-mac", "ff:ff:ff:ff:ff:ff", "--count", "30", "--out", str(tmp_path),
                 "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    (stream,) = summary["streams"]
    assert stream["tx_packets"] == stream["rx_packets"] == 30 and stream["lost"] == 0
    assert stream["latency_ns"]["min"] == stream["latency_ns"]["p99"] == 8
    table = pq.read_table(tmp_path / "records.parquet")
    assert table.num_rows == 30 and table.column("seq").to_pylist() == list(range(30))
    assert summary["counters"]["rx_signed"] >= 30


def test_cli_refuses_bad_input_before_touching_the_device(capsys):
    from wirestamp.cli import main
    assert main(["run", "--device", "serial:///nonexistent", "--dst-ip", "10.0.0.1",
                 "--rate", "2000000pps", "--count", "5"]) == 2
    assert "above line rate" in capsys.readouterr().err


def test_cli_info(served, capsys):
    import json

    from wirestamp.cli import main
    assert main(["info", "--device", served]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["streams"] == 16 and "rx_fcs_errors" in info["counters"]


def test_a_silent_device_raises_a_clear_error_in_bounded_time():
    import os
    import pty
    master, slave = pty.openpty()           # nobody answers on the other end
    try:
        began = time.monotonic()
        with wirestamp.open(f"serial://{os.ttyname(slave)}?timeout=0.1&retries=2") as dev:
            with pytest.raises(wirestamp.LinkError, match="no valid reply after 3 attempts"):
                dev.identify()
        assert time.monotonic() - began < 2
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(wirestamp.LinkError, match="cannot open"):
        wirestamp.open("serial:///dev/nonexistent-wirestamp")
    with pytest.raises(ValueError, match="unknown transport"):
        wirestamp.open("carrier-pigeon://coop")


def test_a_write_never_carries_the_tag_of_the_units_last_write():
    """The unit takes a WRITE with the tag of the last one it executed for a retry, and
    acknowledges it without writing. Two ways a new WRITE could carry that tag: another
    Device (a new process) starts its tags where the last one's ended, or 254 reads go by
    between two writes and the tag comes round. Both must still write."""
    from wirestamp.calibrate import trim_ppm
    from wirestamp.device import Device, _Link
    with wirestamp.open("sim://") as first:
        first.trim(5)
        assert abs(trim_ppm(first) - 5) < 0.01
        second = Device(first.transport)
        second._link = _Link()                      # as a new process on the same link
        second._tag = first._write_tag - 1          # its next tag: the unit's last WRITE's
        second.trim(7)
        assert abs(trim_ppm(second) - 7) < 0.01
        last = second._write_tag
        while (second._tag + 1) % RECORD_TAG != last:      # reads until the tag comes round
            second.read_register("ID")
        second.trim(-3)
        assert abs(trim_ppm(second) + 3) < 0.01


def test_a_unit_of_another_contract_major_is_named_before_any_write(monkeypatch):
    """WRITEs changed in contract 2.0: the host reads VERSION (a READ, the same in every
    version) first, and names a unit of another major version instead of writing to it."""
    from wirestamp import regmap
    from wirestamp.device import _Link
    with wirestamp.open("sim://") as device:
        device.identify()                           # built and running, as this version
        device._link = _Link()                      # a new client of it
        monkeypatch.setattr(regmap, "VERSION", regmap.VERSION + (1 << 16))   # a newer host
        writes = []
        real = device.transport.write
        monkeypatch.setattr(device.transport, "write", lambda data: (writes.append(data),
                                                                     real(data)))
        with pytest.raises(wirestamp.LinkError, match=r"the unit speaks contract 2\.0, this "
                                                      r"host 3\.0"):
            device.write_register("UNIT_IP", 0x0A000002)
        assert all(decode(w[:-1]).op == Op.READ for w in writes)     # nothing written
