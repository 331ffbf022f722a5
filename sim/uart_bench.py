"""cocotb bench of the unit at its UART: cocotbext-uart drives the control link as a host's
serial port would. Parameters and results are JSON files, as in `bench.py`."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer
from cocotbext.uart import UartSink, UartSource

from ..hdl.core import CONTROL_HZ
from .bench import _params, _result

CLOCK_NS = 8
CONTROL_PS = 10**12 // CONTROL_HZ   # exactly: the UART's bit times are counted on this clock


async def _start(dut, baud):
    """Clocks, an idle GMII receive side, MDIO pulled up with no PHY on it, the UART models,
    and a reset."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    cocotb.start_soon(Clock(dut.rx_clk, CLOCK_NS, unit="ns").start())
    cocotb.start_soon(Clock(dut.ctl_clk, CONTROL_PS, unit="ps").start())
    dut.gmii_rx__rxd.value = 0
    dut.gmii_rx__rx_dv.value = 0
    dut.gmii_rx__rx_er.value = 0
    dut.mdio__i.value = 1
    source = UartSource(dut.uart_rx, baud=baud)
    sink = UartSink(dut.uart_tx, baud=baud)
    dut.rst.value = dut.rx_rst.value = dut.ctl_rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.ctl_clk)
    dut.rst.value = dut.rx_rst.value = dut.ctl_rst.value = 0
    return source, sink


@cocotb.test()
async def uart_exchange(dut):
    """Send each chunk of `chunks` (hex) after `gap_us`, listen `run_us`; return the bytes the
    unit sent back (hex)."""
    params = _params()
    source, sink = await _start(dut, params.get("baud", 3_000_000))
    received = bytearray()
    for chunk in params["chunks"]:
        await source.write(bytes.fromhex(chunk))
        await source.wait()
        await Timer(params.get("gap_us", 60), "us")
        received += sink.read_nowait(sink.count())
    await Timer(params.get("run_us", 10), "us")
    received += sink.read_nowait(sink.count())
    _result({"received": received.hex()})


@cocotb.test()
async def uart_serve(dut):
    """Serve the unit's UART on a pseudo-terminal, for host code using `serial://PTY`: its path
    is written to `port_file` at once; the bench ends when `stop_file` appears or after
    `limit_us` of simulated time. With `loopback`, GMII TX is cabled to RX (1 cycle); with
    `corrupt_every` N, every Nth byte on the serial line (either way) has a bit flipped."""
    params = _params()
    source, sink = await _start(dut, params.get("baud", 3_000_000))
    if params.get("loopback"):
        cocotb.start_soon(_cable(dut))
    elapsed = await serve_pty(source, sink, params, params.get("corrupt_every", 0))
    _result({"served_us": elapsed})


async def _cable(dut):
    while True:
        await RisingEdge(dut.clk)
        dut.gmii_rx__rxd.value = dut.gmii_tx__txd.value
        dut.gmii_rx__rx_dv.value = dut.gmii_tx__tx_en.value
        dut.gmii_rx__rx_er.value = dut.gmii_tx__tx_er.value


async def serve_pty(source, sink, params, corrupt_every=0):
    """Carry bytes between a pseudo-terminal and the UART models `source` (to the unit) and
    `sink` (from it) until `params["stop_file"]` appears or `params["limit_us"]` of simulated
    time have passed; returns the time served (µs). The terminal's path is written to
    `params["port_file"]` at once. With `corrupt_every` N, every Nth byte either way has a bit
    flipped."""
    import os
    import pty
    import tty
    passed = [0]

    def damage(data):
        out = bytearray(data)
        for i in range(len(out)):
            passed[0] += 1
            if corrupt_every and passed[0] % corrupt_every == 0:
                out[i] ^= 0x04
        return bytes(out)

    master, slave = pty.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    with open(params["port_file"], "w") as f:
        f.write(os.ttyname(slave))
    elapsed, outgoing = 0, bytearray()
    while elapsed < params.get("limit_us", 1_000_000) and \
            not os.path.exists(params["stop_file"]):
        try:
            incoming = os.read(master, 4096)
        except BlockingIOError:
            incoming = b""
        if incoming:
            await source.write(damage(incoming))
        if not sink.empty():
            outgoing += damage(bytes(sink.read_nowait(sink.count())))
        if outgoing:        # what the terminal cannot take yet waits for it
            try:
                del outgoing[:os.write(master, outgoing)]
            except BlockingIOError:
                pass
        await Timer(2, "us")
        elapsed += 2
    os.close(master)
    os.close(slave)
    return elapsed
