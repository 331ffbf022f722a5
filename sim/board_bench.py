"""Runs inside the simulator process of the virtual board (started by `wirestamp.sim.virtual`).

Python here is touched per control byte and per injected frame, never per idle cycle: it
sleeps `POLL_NS` of simulated time between looks at its standard input, which carries
messages `kind (1 byte) | length (4 bytes, big-endian) | payload`:
    C   control bytes for the bridge
    F   a frame (without FCS) for the injector (the Linux DUT's replies)
End of input ends the simulation. The board's printed lines leave on standard output, so
Python's own output is moved to standard error first; "@R" there says the board is ready.
"""
import ctypes
import logging
import os
import sys

import cocotb
from cocotb.triggers import RisingEdge, Timer

from .bench import _params
from .board import DUTS, RESET_CYCLES

POLL_NS = 4000
_libc = ctypes.CDLL(None)


def _quiet_stdout():
    sys.stdout.flush()
    sys.stdout = sys.stderr
    for logger in (logging.getLogger(), logging.getLogger("cocotb")):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stderr)


class Messages:
    """Reassembles messages from non-blocking reads of standard input."""

    def __init__(self):
        self._buffer = bytearray()
        self.closed = False
        os.set_blocking(0, False)

    def poll(self):
        try:
            chunk = os.read(0, 1 << 20)
        except BlockingIOError:
            chunk = None
        if chunk == b"":
            self.closed = True
        elif chunk:
            self._buffer += chunk
        messages = []
        while len(self._buffer) >= 5:
            length = int.from_bytes(self._buffer[1:5], "big")
            if len(self._buffer) < 5 + length:
                break
            messages.append((chr(self._buffer[0]), bytes(self._buffer[5:5 + length])))
            del self._buffer[:5 + length]
        return messages


async def _configure(dut, params):
    dut.ctl__valid.value = 0
    dut.inject__valid.value = 0
    dut.dut.value = DUTS.index(params["dut"])
    dut.capture.value = int(params.get("capture", False))
    for name in ("drop_below", "duplicate_below", "hold_below", "seed"):
        getattr(dut, name).value = params.get(name, 0)
    for _ in range(RESET_CYCLES + 2):       # the board's registered inputs wake after reset
        await RisingEdge(dut.clk)
    dut.table_en.value = 1
    for addr, cycles in enumerate(params.get("table", [64])):
        dut.table_addr.value, dut.table_data.value = addr, cycles
        await RisingEdge(dut.clk)
    dut.table_en.value = 0


async def _send(dut, valid, payload, values):
    """One value per cycle; every write lands just after a rising edge, never on one."""
    await RisingEdge(dut.clk)
    valid.value = 1
    for value in values:
        payload.value = value
        await RisingEdge(dut.clk)
    valid.value = 0


@cocotb.test()
async def serve(dut):
    _quiet_stdout()
    params = _params()
    await _configure(dut, params)
    _libc.fflush(None)
    os.write(1, b"@R\n")                   # ready: the host may talk now
    messages = Messages()
    while not messages.closed:
        _libc.fflush(None)      # hand the printed lines over now, not when a buffer fills
        work = messages.poll()
        for kind, payload in work:
            if kind == "C":
                await _send(dut, dut.ctl__valid, dut.ctl__payload, payload)
            elif kind == "F":
                await _send(dut, dut.inject__valid, dut.inject__payload,
                            [*payload[:-1], payload[-1] | 0x100])
        if not work:
            await Timer(POLL_NS, "ns")
    _libc.fflush(None)


@cocotb.test()
async def idle(dut):
    """Run `params["us"]` of simulated time with nothing to do (for the speed benchmark)."""
    import time
    _quiet_stdout()
    params = _params()
    await _configure(dut, params)
    start = time.perf_counter()
    await Timer(params["us"], "us")
    print(f"@T {time.perf_counter() - start}", file=sys.__stdout__, flush=True)
