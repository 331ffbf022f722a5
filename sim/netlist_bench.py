"""cocotb bench of the flashed netlist (`wirestamp.sim.netlist`) at its pins: the board clock,
RGMII through cocotbext-eth's `RgmiiPhy`, and the UART served on a pseudo-terminal for the host
code (`uart_bench.serve_pty`). Parameters and results are JSON files, as in `bench.py`.

The external cable: each frame the PHY model receives from the unit is sent back to it, after
a wait that differs from frame to frame (0, 1, 2, ... receive clock cycles, cycling through
`extra_cycles`), so the wire's latency is not one constant a wrong stamp could match by chance.
The models give the truth: the time of each frame's SFD leaving the unit's pins and the time
of the same frame's SFD entering them.
"""
import logging

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.eth import GmiiFrame, RgmiiPhy
from cocotbext.uart import UartSink, UartSource

from .bench import _params, _result
from .uart_bench import serve_pty


@cocotb.test()
async def netlist_serve(dut):
    """Serve the netlist's UART on a pseudo-terminal (`port_file`, `stop_file`, `limit_us` as
    in `uart_serve`) with the cable on its RGMII port; return each looped frame's SFD times at
    the pins (ps): [[out, in], ...]."""
    params = _params()
    logging.getLogger("cocotb").setLevel(logging.WARNING)
    # The PLL model passes the board clock on as its 125 MHz output (ecp5_models.v).
    cocotb.start_soon(Clock(dut.clk25_0__io, params["clock_ps"], unit="ps").start())
    dut.uart_0__rx__io.value = 1
    phy = RgmiiPhy(dut.rgmii_0__tx_data__io, dut.rgmii_0__tx_ctl__io, dut.rgmii_0__tx_clk__io,
                   dut.rgmii_0__rx_data__io, dut.rgmii_0__rx_ctl__io, dut.rgmii_0__rx_clk__io,
                   speed=1000e6)
    looped = []
    cocotb.start_soon(_cable(phy, params.get("extra_cycles", 4), looped))
    source = UartSource(dut.uart_0__rx__io, baud=params["baud"])
    sink = UartSink(dut.uart_0__tx__io, baud=params["baud"])
    elapsed = await serve_pty(source, sink, params)
    _result({"served_us": elapsed, "frames": looped})


async def _cable(phy, extra_cycles, looped):
    index = 0
    while True:
        frame = await phy.tx.recv()
        out_sfd = frame.sim_time_sfd
        await ClockCycles(phy.rx_clk, index % extra_cycles)
        index += 1
        await phy.rx.send(GmiiFrame(
            frame.data, frame.error,
            tx_complete=lambda sent, out=out_sfd: looped.append([out, sent.sim_time_sfd])))
