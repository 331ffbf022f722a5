"""One stream's rate accumulator: credits come at exactly the ideal byte times, rounded up."""
from math import ceil

import pytest

from helpers import simulate
from wirestamp.hdl.gen.profile import StreamRate


def credit_cycles(rate, modulus, cycles, ticks=0, last=1, loop=0):
    dut = StreamRate()
    seen = []

    async def bench(ctx):
        ctx.set(dut.arm, 1)
        ctx.set(dut.enable, 1)
        ctx.set(dut.loop, loop)
        ctx.set(dut.rate_mod, modulus)
        ctx.set(dut.segment, {"rate": rate, "slope": 0, "ticks": ticks, "last": last})
        await ctx.tick()
        ctx.set(dut.arm, 0)
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        for cycle in range(cycles):
            ctx.set(dut.tick, cycle % 16 == 0)
            if ctx.get(dut.credit):
                seen.append(cycle)
            await ctx.tick()

    simulate(dut, bench)
    return seen


@pytest.mark.parametrize("rate, modulus", [(1, 84), (7, 1000), (3, 1024), (12345, 10_000_000)])
def test_credits_at_ideal_times(rate, modulus):
    seen = credit_cycles(rate, modulus, cycles=3000)
    first = seen[0]
    expected = [first + ceil(k * modulus / rate) for k in range(len(seen))]
    assert len(seen) >= 3000 * rate // modulus
    assert seen == expected


def test_a_finite_segment_ends_the_stream():
    # 10 ticks of 16 cycles at one credit per 20 cycles: 160 cycles hold 8 credits (t=0..140).
    seen = credit_cycles(1, 20, cycles=400, ticks=10)
    assert len(seen) == 8


def test_a_looping_profile_goes_on():
    seen = credit_cycles(1, 20, cycles=400, ticks=10, loop=1)
    assert len(seen) == 20
