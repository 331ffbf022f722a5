"""The ones' complement accumulator against the RFC 1071 reference."""
import random

import pytest

from helpers import internet_checksum, simulate
from wirestamp.hdl.net.checksum import OnesComplementSum


@pytest.mark.parametrize("seed", range(4))
def test_matches_rfc1071(seed):
    rng = random.Random(seed)
    messages = [bytes(rng.randrange(256) for _ in range(2 * rng.randrange(1, 80)))
                for _ in range(5)]
    messages.append(b"\xff\xff" * 300)      # worst case for the end-around carry
    dut = OnesComplementSum()
    results = []

    async def bench(ctx):
        for message in messages:
            words = [int.from_bytes(message[i:i + 2], "big") for i in range(0, len(message), 2)]
            for i, word in enumerate(words):
                ctx.set(dut.clear, i == 0)
                ctx.set(dut.add, 1)
                ctx.set(dut.word, word)
                await ctx.tick()
            ctx.set(dut.add, 0)
            ctx.set(dut.clear, 0)
            await ctx.tick().repeat(OnesComplementSum.LATENCY - 1)
            results.append(ctx.get(dut.checksum))

    simulate(dut, bench)
    assert results == [internet_checksum(m) for m in messages]
