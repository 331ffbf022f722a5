"""Small helpers for Amaranth-simulator tests of single blocks, and for the benches that serve
a simulated UART on a pseudo-terminal."""
import time
import zlib

import pytest

from amaranth.sim import Simulator

from wirestamp.sim.wire import internet_checksum  # noqa: F401 (the RFC 1071 reference)


def simulate(dut, *testbenches, background=(), clock_s=8e-9):
    """Run `testbenches` (async, taking ctx) on `dut` until they all return."""
    sim = Simulator(dut)
    sim.add_clock(clock_s)
    for bench in testbenches:
        sim.add_testbench(bench)
    for bench in background:
        sim.add_testbench(bench, background=True)
    sim.run()


async def stream_put(ctx, port, payload):
    """Offer one payload on a lib.stream port and wait for it to be taken."""
    ctx.set(port.valid, 1)
    ctx.set(port.payload, payload)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


def fcs(frame):
    return zlib.crc32(frame).to_bytes(4, "little")


def wait_for_port(port_file, thread, what, seconds=300):
    """The pseudo-terminal's path, once the bench running in `thread` has written it to
    `port_file`; the test fails if the bench ends or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"{what} did not come up")
        time.sleep(0.2)
    return port_file.read_text()
