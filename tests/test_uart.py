"""The UART on the Amaranth simulator: bytes through TX into RX at several baud rates, with the
two ends' clocks disagreeing by 2%, and a framing error caught."""
import random

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from wirestamp.hdl.ctl.uart import UartRx, UartTx, baud_step


def loop(tx_baud, rx_baud, payload, break_stop_at=None):
    m = Module()
    m.submodules.tx = tx = UartTx(tx_baud)
    m.submodules.rx = rx = UartRx(rx_baud)
    got, errors = [], []
    sim = Simulator(m)
    sim.add_clock(8e-9)
    line = [1]

    async def wire(ctx):       # the cable, which can hold a stop bit low once
        async for _, _, level in ctx.tick().sample(tx.tx):
            ctx.set(rx.rx, level and line[0])

    async def send(ctx):
        for i, byte in enumerate(payload):
            ctx.set(tx.data.valid, 1)
            ctx.set(tx.data.payload, byte)
            await ctx.tick().until(tx.data.ready)
            if i == break_stop_at:          # hold the line low through this byte's stop bit
                ctx.set(tx.data.valid, 0)
                await ctx.tick().repeat(int(125e6 / tx_baud * 9.5))
                line[0] = 0
                await ctx.tick().repeat(int(125e6 / tx_baud * 1.2))
                line[0] = 1
        ctx.set(tx.data.valid, 0)
        await ctx.tick().repeat(int(125e6 / tx_baud * 12))
        errors.append(ctx.get(rx.framing_errors))

    async def receive(ctx):
        ctx.set(rx.data.ready, 1)
        async for _, _, valid, byte in ctx.tick().sample(rx.data.valid, rx.data.payload):
            if valid:
                got.append(byte)

    sim.add_testbench(send)
    sim.add_testbench(wire, background=True)
    sim.add_testbench(receive, background=True)
    sim.run()
    return got, errors[0]


@pytest.mark.parametrize("baud", [115_200, 3_000_000, 12_000_000])
def test_bytes_arrive_intact(baud):
    payload = bytes(random.Random(baud).randrange(256) for _ in range(12 if baud < 1e6 else 64))
    got, errors = loop(baud, baud, payload)
    assert bytes(got) == payload and errors == 0


def test_two_percent_clock_disagreement_is_tolerated():
    payload = bytes(range(0, 256, 7))
    got, _ = loop(3_000_000 * 1.02, 3_000_000, payload)
    assert bytes(got) == payload


def test_a_broken_stop_bit_is_a_framing_error():
    got, errors = loop(3_000_000, 3_000_000, b"\x11\x22\x33", break_stop_at=1)
    assert errors == 1 and got[0] == 0x11 and 0x22 not in got


def test_baud_limits():
    with pytest.raises(ValueError):
        baud_step(40_000_000)
