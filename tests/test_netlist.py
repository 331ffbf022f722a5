"""The flashed design, simulated: the Colorlight's top level after yosys `synth_ecp5`, on
yosys's ECP5 cell models, driven at its pins (RGMII by cocotbext-eth's `RgmiiPhy`, the UART by
`wirestamp run` over a pseudo-terminal) with the external cable looping what it sends back.
This checks the synthesised netlist (the cells yosys chose, the DDR I/O, the fan-out copies),
not only its RTL. Synthesis takes about 5 minutes, Verilator 3, the run 1; `make netlist-sim`
runs this test alone."""
import json
import threading

import pyarrow.parquet as pq
import pytest

from wirestamp.cli import main
from wirestamp.firmware.boards import CORE_HZ, toolchain_missing
from wirestamp.sim.netlist import TOPLEVEL, build_netlist
from wirestamp.sim.runner import run_bench

from helpers import wait_for_port

# What the unit measures beyond the wire, in core cycles, from the cycle its stamps name (the
# one whose GMII byte is the SFD) to the models' SFD times. Out: the ODDR register (1), then
# cocotbext-eth's sink times the SFD at the falling edge that completes the byte after it
# (1.5). In: the source times it at the rising edge where the SFD's low nibble is taken (0),
# then the IDDR (1) and the RGMII receive register (1). Less half a cycle: the PHY model's
# receive clock rises 4 ns after the core's, and the receive stamp names the core cycle the
# frame's SFD began in. 2.5 + 2 - 0.5 = 4 cycles.
UNIT_NS = 4 * 8


@pytest.mark.skipif(bool(toolchain_missing()), reason=toolchain_missing())
def test_a_loopback_through_the_flashed_netlist_is_exact(tmp_path):
    built = build_netlist("colorlight_5a75b")
    stop, port_file = tmp_path / "stop", tmp_path / "port"
    params = {"stop_file": str(stop), "port_file": str(port_file), "limit_us": 60_000_000,
              "clock_ps": round(1e12 / CORE_HZ), "baud": 3_000_000, "extra_cycles": 4}
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(run_bench("netlist_serve", params, toplevel=TOPLEVEL,
                                               module="wirestamp.sim.netlist_bench",
                                               built=built)), daemon=True)
    thread.start()
    port = wait_for_port(port_file, thread, "the simulated netlist")
    count = 12
    try:
        assert main(["run", "--device", f"serial://{port}?timeout=5",
                     "--dst-ip", "10.0.0.1", "--rate", "250kpps", "--dst-mac",
                     "ff:ff:ff:ff:ff:ff", "--count", str(count), "--out", str(tmp_path / "run"),
                     "--quiet"]) == 0
    finally:
        stop.write_text("")
        thread.join(timeout=120)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    (stream,) = summary["streams"]
    assert stream["tx_packets"] == stream["rx_packets"] == count and stream["lost"] == 0
    assert summary["counters"]["rx_fcs_errors"] == 0
    table = pq.read_table(tmp_path / "run" / "records.parquet").to_pydict()
    assert table["seq"] == list(range(count))
    measured = [rx - tx for rx, tx in zip(table["rx_ns"], table["tx_ns"])]
    # The cable's truth, frame by frame (it looped only this stream's frames: nobody else
    # sends), and the wire's latency differs from one frame to the next.
    wire = [(into - out) / 1000 for out, into in result["frames"]]
    assert len(wire) == count and len(set(wire)) > 1
    assert measured == [w + UNIT_NS for w in wire]
