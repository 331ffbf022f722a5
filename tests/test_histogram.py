"""The hardware histogram bucket matches the Python reference in the contract."""
import random

from helpers import simulate
from wirestamp import regmap
from wirestamp.hdl.rx.histogram import LATENCY_BITS, HistogramBucket


def test_bucket_matches_reference_for_random_latencies():
    rng = random.Random(7)
    latencies = [0, 7, 8, 255, 256, 257, 271, 272, 10**9, (1 << LATENCY_BITS) - 1]
    latencies += [regmap.hist_lower_ns(b) + d for b in range(1, regmap.HIST_BUCKETS - 1)
                  for d in (-1, 0)]
    latencies += [int(rng.lognormvariate(10, 6)) % (1 << LATENCY_BITS) for _ in range(2000)]
    dut = HistogramBucket()
    got = []

    async def bench(ctx):
        for latency in latencies:
            ctx.set(dut.latency, latency)
            await ctx.tick().repeat(HistogramBucket.LATENCY)
            got.append(ctx.get(dut.bucket))

    simulate(dut, bench)
    assert got == [regmap.hist_bucket(v) for v in latencies]


def test_buckets_are_narrow_enough_and_reach_a_second():
    assert regmap.hist_bucket(10**9) < regmap.HIST_OVERFLOW
    for b in range(regmap.HIST_LINEAR, regmap.HIST_OVERFLOW - 1):
        low, high = regmap.hist_lower_ns(b), regmap.hist_lower_ns(b + 1)
        assert high - low <= low / 16
    assert [regmap.hist_lower_ns(b) for b in range(regmap.HIST_LINEAR)] == \
        list(range(0, 8 * regmap.HIST_LINEAR, 8))
