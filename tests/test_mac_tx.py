"""MAC TX on the Amaranth simulator: the exact bytes and idle cycles on GMII."""
import random

import pytest

from helpers import fcs, simulate, stream_put
from wirestamp import regmap
from wirestamp.hdl.mac.tx import MacTx


def wire_bursts(samples):
    """Split per-cycle (txd, tx_en, tx_er, sfd) samples into frames and the idle runs between."""
    bursts, gaps, current, idle = [], [], None, 0
    for txd, en, er, sfd in samples:
        if en:
            if current is None:
                current = {"bytes": [], "errors": 0, "sfd_at": []}
                if bursts:
                    gaps.append(idle)
            if sfd:
                current["sfd_at"].append(len(current["bytes"]))
            current["bytes"].append(txd)
            current["errors"] += er
            idle = 0
        else:
            if current is not None:
                bursts.append(current)
                current = None
            idle += 1
    return bursts, gaps


def run_mac(frames, stall_at=None, cycles_after=100):
    dut = MacTx()
    samples = []
    done = []

    async def source(ctx):
        for frame in frames:
            for i, byte in enumerate(frame):
                if stall_at == i:
                    await ctx.tick().repeat(3)
                await stream_put(ctx, dut.frames, {"data": byte, "last": i == len(frame) - 1})
        await ctx.tick().repeat(cycles_after)
        done.append({name: ctx.get(getattr(dut, name))
                     for name in ("frames_sent", "bytes_sent", "underruns")})

    async def monitor(ctx):
        async for _, _, txd, en, er, sfd in ctx.tick().sample(
                dut.gmii.txd, dut.gmii.tx_en, dut.gmii.tx_er, dut.sfd):
            samples.append((txd, en, er, sfd))

    simulate(dut, source, background=[monitor])
    return wire_bursts(samples) + (done[0],)


PREAMBLE = [regmap.PREAMBLE] * 7 + [regmap.SFD]


@pytest.mark.parametrize("length", [1, 42, 59, 60, 61, 1514])
def test_frame_on_the_wire(length):
    payload = bytes(random.Random(length).randrange(256) for _ in range(length))
    (burst,), _, counters = run_mac([payload])
    padded = payload + bytes(max(0, 60 - length))
    assert burst["bytes"] == PREAMBLE + list(padded + fcs(padded))
    assert burst["sfd_at"] == [7], "sfd marks exactly the cycle the SFD is on txd"
    assert burst["errors"] == 0
    assert counters == {"frames_sent": 1, "bytes_sent": len(padded) + 4, "underruns": 0}


def test_back_to_back_frames_keep_the_minimum_gap():
    frames = [bytes([i]) * n for i, n in enumerate([60, 100, 1, 60, 1514, 60])]
    bursts, gaps, counters = run_mac(frames)
    assert len(bursts) == len(frames)
    assert gaps == [12] * (len(frames) - 1)
    for frame, burst in zip(frames, bursts):
        padded = frame + bytes(max(0, 60 - len(frame)))
        assert burst["bytes"][8:] == list(padded + fcs(padded))
    assert counters["frames_sent"] == len(frames)


def test_source_stall_is_an_underrun_sent_as_error():
    bursts, _, counters = run_mac([bytes(80)], stall_at=30)
    assert counters["underruns"] == 1 and counters["frames_sent"] == 0
    assert bursts[0]["errors"] >= 1
