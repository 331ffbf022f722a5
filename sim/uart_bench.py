"""cocotb bench of the unit at its UART: cocotbext-uart drives the control link as a host's
serial port would. Parameters and results are JSON files, as in `bench.py`."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer
from cocotbext.uart import UartSink, UartSource

from .bench import _params, _result

CLOCK_NS = 8


@cocotb.test()
async def uart_exchange(dut):
    """Send each chunk of `chunks` (hex) after `gap_us`, listen `run_us`; return the bytes the
    unit sent back (hex)."""
    params = _params()
    baud = params.get("baud", 3_000_000)
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    cocotb.start_soon(Clock(dut.rx_clk, CLOCK_NS, unit="ns").start())
    dut.gmii_rx__rxd.value = 0
    dut.gmii_rx__rx_dv.value = 0
    dut.gmii_rx__rx_er.value = 0
    source = UartSource(dut.uart_rx, baud=baud)
    sink = UartSink(dut.uart_tx, baud=baud)
    dut.rst.value = dut.rx_rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = dut.rx_rst.value = 0
    received = bytearray()
    for chunk in params["chunks"]:
        await source.write(bytes.fromhex(chunk))
        await source.wait()
        await Timer(params.get("gap_us", 60), "us")
        received += sink.read_nowait(sink.count())
    await Timer(params.get("run_us", 10), "us")
    received += sink.read_nowait(sink.count())
    _result({"received": received.hex()})
