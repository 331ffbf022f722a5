"""The SCPI server (`wirestamp scpi`): IEEE 488.2 common commands and status, SCPI syntax
and error codes against a stand-in unit, then a real VISA client (pyvisa with pyvisa-py) over
TCP against the virtual board, whose fetched figures must equal the host API's."""
import dataclasses
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from wirestamp import regmap
from wirestamp.device import DeviceInfo
from wirestamp.scpi import Server, Session, Shared, markdown

ECHO_MAC = "02:00:00:00:00:09"


class Unit:
    """Records what reaches the unit; answers as an idle one."""

    info = DeviceInfo("1.2", regmap.CLOCK_HZ, 16, 64, 8)

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            return {"identify": DeviceInfo("1.2", regmap.CLOCK_HZ, 16, 64, 8),
                    "running": False, "address": ("02:77:73:00:00:01", "192.168.0.2")}.get(name)
        return call


def session():
    unit = Unit()
    return Session(Shared(unit, "virtual")), unit


def ask(s, line):
    return s.execute(line.encode()).decode()


def errors(s):
    found = []
    while True:
        entry = ask(s, "SYST:ERR?").strip()
        if entry.startswith("0,"):
            return found
        found.append(int(entry.split(",")[0]))


def test_short_and_long_forms_any_case_and_compound_commands():
    s, unit = session()
    assert ask(s, "*idn?").startswith("wirestamp,virtual,0,")
    # long, short, mixed case; then PORT and SIZE relative to the path of the first
    assert ask(s, "SOURce:STReam2:DESTination:ADDRess 10.0.0.9") == ""
    assert ask(s, "sour:str2:dest:port 6000;MAC 02:00:00:00:00:09") == ""
    assert ask(s, ":Sour:Str2:Size 64,128,1518;:SOUR:STR2:RATE 1.5kpps") == ""
    assert ask(s, "SOUR:STR2:DEST:PORT?;:SOUR:STR2:SIZE?;DEST:ADDR?") == \
        '6000;64,128,1518;"10.0.0.9"\n'
    assert ask(s, "SYSTEM:ERROR:NEXT?") == '0,"No error"\n' and errors(s) == []
    assert ask(s, "SOUR:STR2:STAT?;:SOUR:STR1:STAT?") == "1;0\n"
    assert unit.calls == ["identify"]           # settings stay in the server until INIT


@pytest.mark.parametrize("line, code", [
    ("SOUR:STR1:BOGUS 3", -113), ("FLY:ME:TO:THE:MOON", -113), ("SOUR:STR17:DEST:ADDR 1.2.3.4", -113),
    ("SOUR:STR1:DEST:ADDR 10.0.0.300", -224), ("SOUR:STR1:DEST:ADDR", -109),
    ("*IDN? extra", -108), ("SYST:ERR? 3", -108), ("SOUR:STR1:DEST:ADDR 1.2.3.4,5.6.7.8", -108),
    ("@@@###", -102), ("*RST?", -113), ("INIT", -221),
])
def test_bad_input_goes_to_the_error_queue_and_not_to_the_unit(line, code):
    s, unit = session()
    assert ask(s, line) == ""
    assert errors(s) == [code]
    assert unit.calls == [] or line.startswith("*RST")


def test_streams_are_those_the_unit_carries():
    """An 8-stream image (CAPS, the Colorlight's): STReam9 is an undefined header."""
    s, unit = session()
    unit.info = dataclasses.replace(unit.info, streams=8)
    s.shared.reset()
    assert ask(s, "SOUR:STR8:DEST:ADDR 10.0.0.9") == "" and errors(s) == []
    assert ask(s, "SOUR:STR9:DEST:ADDR 10.0.0.9") == "" and errors(s) == [-113]
    assert unit.calls == []


def test_values_out_of_range_and_above_line_rate():
    s, unit = session()
    ask(s, "SOUR:STR1:DEST:ADDR 10.0.0.9")
    for line in ("SOUR:STR1:DEST:PORT 70000", "SOUR:STR1:SIZE 63", "SOUR:STR1:RATE 2e6",
                 "SOUR:STR1:SIZE 1518;RATE 100kpps", "SOUR:STR1:COUN -1"):
        ask(s, line)
    assert errors(s) == [-222] * 5
    assert ask(s, "SOUR:STR1:RATE fast") == "" and errors(s) == [-224]
    # two streams each under line rate, together above it: INIT refuses, the unit untouched
    ask(s, "SOUR:STR1:SIZE 64;RATE 1mpps;:SOUR:STR2:DEST:ADDR 10.0.0.9;:SOUR:STR2:RATE 1mpps")
    assert errors(s) == []
    ask(s, "INIT")
    assert errors(s) == [-222] and unit.calls == []
    ask(s, "SOUR:STR2:STAT OFF;:SOUR:STR4:DEST:ADDR 10.0.0.9;:INIT")
    assert errors(s) == [-221] and unit.calls == []     # stream 3 missing between 1 and 4


def test_garbage_bytes_and_status_registers():
    s, _ = session()
    assert s.execute(b"\xff\xfe\x00garbage") == b""
    assert ask(s, "*STB?") == "4\n"             # bit 2: the error queue is not empty
    ask(s, "*ESE 32")
    assert ask(s, "*STB?") == "36\n"            # and bit 5: a command error, enabled
    assert ask(s, "*ESR?") == "32\n" and ask(s, "*ESR?") == "0\n"   # read clears it
    ask(s, "*CLS")
    assert ask(s, "*STB?") == "0\n" and errors(s) == []
    for _ in range(40):
        ask(s, "NOPE")
    assert len(errors(s)) == 16                 # bounded; the last says it overflowed
    for _ in range(40):
        ask(s, "NOPE")
    entries = [ask(s, "SYST:ERR?") for _ in range(16)]
    assert entries[-1].startswith("-350,") and entries[0].startswith("-113,")


def test_docs_scpi_md_is_generated_from_the_table():
    text = (Path(__file__).parent.parent / "docs" / "scpi.md").read_text()
    assert markdown() in text, "docs/scpi.md is stale: paste `wirestamp scpi --doc`"


# A real VISA client over TCP, against the virtual board.

@pytest.fixture
def served():
    import wirestamp
    with wirestamp.open("sim://?dut=echo&delay=uniform:2us-9us") as dev:
        server = Server(dev, "127.0.0.1", 0, board="virtual")
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield dev, server.address[1]
        server.close()


def _visa(port):
    import pyvisa
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(f"TCPIP::127.0.0.1::{port}::SOCKET", read_termination="\n",
                            write_termination="\n", timeout=120_000)
    return rm, inst


def test_a_visa_client_runs_a_stream_and_fetches_the_units_figures(served):
    dev, port = served
    rm, inst = _visa(port)
    try:
        assert inst.query("*IDN?").startswith("wirestamp,virtual,0,")
        inst.write("*RST;*CLS")
        inst.write(f"SOUR:STR1:DEST:ADDR 10.0.0.9;MAC {ECHO_MAC}")
        inst.write("SOUR:STR1:RATE 100kpps;:SOUR:STR1:COUN 400;:SOUR:STR1:SIZE 64,128")
        inst.write("INIT")
        assert inst.query("*OPC?") == "1"
        fetched = inst.query("FETC:STR1:STAT?").split(",")
        truth = dev.stream_stats(0, ended=True)
        assert [int(v) for v in fetched[:5]] == [truth.tx_packets, truth.rx_packets, truth.lost,
                                                  truth.reordered, truth.duplicates]
        assert int(fetched[0]) == 400 and int(fetched[1]) == 400
        assert float(fetched[5]) == truth.latency_min_ns
        assert float(fetched[6]) == truth.latency_mean_ns       # exact, not rounded
        assert float(fetched[8]) == truth.latency_stddev_ns
        assert float(fetched[9]) == truth.jitter_ns
        assert float(inst.query("MEAS:STR1:LAT:MAX?")) == truth.latency_max_ns
        counts = inst.query_binary_values("FETC:STR1:HIST?", datatype="Q", container=np.array)
        assert len(counts) == regmap.HIST_BUCKETS and counts.sum() == 400
        assert (counts == dev.histogram(0)).all()
        raw = inst.query_binary_values("FETC:REC?", datatype="B", container=bytes)
        from wirestamp.records import RECORD_DTYPE
        records = np.frombuffer(raw, dtype=RECORD_DTYPE.newbyteorder("<"))
        assert len(records) == 400 and sorted(records["seq"]) == list(range(400))
        assert inst.query("SYST:ERR?") == '0,"No error"'
        # a rate above line rate: an error, and the unit is not touched
        inst.write("SOUR:STR1:RATE 2e6")
        assert inst.query("SYST:ERR?").startswith("-222,")
        assert dev.stream_stats(0).tx_packets == 400
    finally:
        inst.close()
        rm.close()


def test_a_client_gone_mid_command_leaves_the_server_serving_and_two_clients(served):
    dev, port = served
    with socket.create_connection(("127.0.0.1", port)) as half:
        half.sendall(b"SOUR:STR1:DEST:ADDR 10.0.0.9\nSOUR:STR1:DEST:PO")   # no newline: gone
    rm, first = _visa(port)
    _, second = _visa(port)
    try:
        # The gone client's whole line runs in its own thread, which may come after these:
        # wait for it (`*OPC?` answers either way, so a query never waits for nothing).
        deadline = time.monotonic() + 60
        while first.query("*CLS;SOUR:STR1:DEST:ADDR?;*OPC?") != '"10.0.0.9";1':
            assert time.monotonic() < deadline, "the gone client's whole line never ran"
            time.sleep(0.05)
        assert first.query("SOUR:STR1:DEST:PORT?") == "5001"     # the partial line: not run
        # Each client has its own thread: `*OPC?` answers once the line before it has run.
        assert first.query("SOUR:STR1:DEST:PORT 6000;*OPC?") == "1"
        assert second.query("SOUR:STR1:DEST:PORT?") == "6000"    # the settings are shared
        assert first.query("NOPE;*OPC?") == "1"
        assert second.query("SYST:ERR:COUN?") == "0"             # each its own error queue
        assert first.query("SYST:ERR:COUN?") == "1"
    finally:
        first.close()
        second.close()
        rm.close()
