"""One stream's rate accumulator: credits come at exactly the ideal byte times, rounded up."""
from math import ceil

import pytest

from helpers import simulate
from wirestamp.hdl.gen.profile import RateAccumulator


def credit_cycles(rate, modulus, cycles):
    dut = RateAccumulator()
    seen = []

    async def bench(ctx):
        ctx.set(dut.arm, 1)
        ctx.set(dut.load, 1)
        ctx.set(dut.rate, rate)
        ctx.set(dut.rate_less_mod, rate - modulus)
        await ctx.tick()
        ctx.set(dut.arm, 0)
        ctx.set(dut.load, 0)
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        ctx.set(dut.active, 1)
        for cycle in range(cycles):
            if ctx.get(dut.credit):
                seen.append(cycle)
            await ctx.tick()

    simulate(dut, bench)
    return seen


@pytest.mark.parametrize("rate, modulus", [(1, 84), (7, 1000), (3, 1024), (12345, 10_000_000),
                                           (2**39 - 1, 2**39)])
def test_credits_at_ideal_times(rate, modulus):
    seen = credit_cycles(rate, modulus, cycles=3000)
    first = seen[0]
    expected = [first + ceil(k * modulus / rate) for k in range(len(seen))]
    assert len(seen) >= 3000 * rate // modulus
    assert seen == expected
