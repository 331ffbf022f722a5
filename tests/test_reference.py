"""The timebase's reference outputs (`hdl.time.Reference`), in gateware simulation: the PPS
edge and the square wave's edges fall exactly where the trimmed time says, at the nominal
increment and trimmed both ways."""
import pytest
from amaranth import Module
from amaranth.sim import Simulator

from wirestamp import regmap
from wirestamp.hdl.time import Reference, Timebase

PERIOD = 10_000             # ns between pulses here (a second on the board)


def trimmed(ppm):
    return round((regmap.NS_PER_CYCLE << regmap.TIME_FRAC_BITS) / (1 + ppm * 1e-6))


@pytest.mark.parametrize("ppm", [0, 50, -37.5])
def test_pps_and_square_wave_follow_the_trimmed_time(ppm):
    m = Module()
    m.submodules.timebase = timebase = Timebase()
    m.submodules.reference = reference = Reference(period_ns=PERIOD, width=7)
    m.d.comb += reference.now.eq(timebase.now)
    trace = []

    async def bench(ctx):
        ctx.set(timebase.increment, trimmed(ppm))
        for _ in range(12 * PERIOD // 8):
            await ctx.tick()
            trace.append((ctx.get(timebase.now), ctx.get(reference.pps),
                          ctx.get(reference.square)))

    sim = Simulator(m)
    sim.add_clock(1 / 125e6)
    sim.add_testbench(bench)
    sim.run()
    now = [t[0] for t in trace]
    pps = [t[1] for t in trace]
    lag = Reference.LATENCY
    rises = [c for c in range(1, len(trace)) if pps[c] and not pps[c - 1]]
    assert len(rises) >= 10
    for k, c in enumerate(rises, start=1):
        # the first cycle whose time has reached k seconds, LATENCY cycles before the edge
        assert now[c - lag] >= k * PERIOD > now[c - lag - 1], (k, now[c - lag - 1:c - lag + 1])
        assert pps[c:c + 7] == [1] * 7 and pps[c + 7] == 0            # the pulse's width
    # the square wave is the time's bit: its edges where the trimmed time crosses 32 ns steps
    half = 1 << regmap.REF_SQUARE_BIT
    for c in range(lag + 1, len(trace)):
        assert trace[c][2] == (now[c - lag] // half) & 1
    edges = [c for c in range(lag + 1, len(trace)) if trace[c][2] != trace[c - 1][2]]
    span_ns = now[edges[-1] - lag] - now[edges[0] - lag]
    assert abs(span_ns - (len(edges) - 1) * half) < regmap.NS_PER_CYCLE + 1
    if ppm == 0:                    # nominal: exactly 4 cycles high, 4 low, 15.625 MHz
        assert {b - a for a, b in zip(edges, edges[1:])} == {4}
        assert regmap.REF_SQUARE_HZ == 15.625e6
