"""Two control links on one register bus (`hdl/ctl/arbiter.py`): both masters write bursts
and read back at random times, as bridges do; every write lands, in order, and every read
returns its master's last write to that address, however the two interleave."""
import random

from amaranth import Module
from amaranth.sim import Simulator

from wirestamp.hdl.ctl.arbiter import BusArbiter
from wirestamp.hdl.ctl.bank import RegisterBus


def test_both_masters_are_served_in_order():
    m = Module()
    m.submodules.arbiter = arbiter = BusArbiter()
    words = [0] * 64                      # the "bank"
    results = {"a": [], "b": []}
    done = []

    async def bank(ctx):
        bus = arbiter.bus
        pending = []
        while True:
            await ctx.tick()
            if ctx.get(bus.w_en):
                words[ctx.get(bus.addr)] = ctx.get(bus.w_data)
            if ctx.get(bus.r_en):
                pending.append([RegisterBus.READ_LATENCY, ctx.get(bus.addr)])
            ctx.set(bus.r_valid, 0)
            for item in pending:
                item[0] -= 1
            if pending and pending[0][0] == 0:
                ctx.set(bus.r_data, words[pending.pop(0)[1]])
                ctx.set(bus.r_valid, 1)

    def master(name, port, parity, seed):
        async def bench(ctx):
            draw = random.Random(seed)
            mine = {}
            for _ in range(40):
                if draw.random() < 0.6:                      # a burst of writes
                    for _ in range(draw.randrange(1, 8)):
                        addr = 2 * draw.randrange(32) + parity
                        value = draw.getrandbits(32)
                        mine[addr] = value
                        ctx.set(port.addr, addr)
                        ctx.set(port.w_data, value)
                        ctx.set(port.w_en, 1)
                        await ctx.tick()
                        ctx.set(port.w_en, 0)
                        await ctx.tick().repeat(draw.randrange(1, 7))
                else:                                        # a read, held until r_valid
                    addr = 2 * draw.randrange(32) + parity
                    ctx.set(port.addr, addr)
                    ctx.set(port.r_en, 1)
                    await ctx.tick()
                    ctx.set(port.r_en, 0)
                    for _ in range(200):
                        await ctx.tick()
                        if ctx.get(port.r_valid):
                            break
                    else:
                        raise AssertionError(f"{name}: no r_valid")
                    results[name].append((ctx.get(port.r_data), mine.get(addr, 0)))
            await ctx.tick().repeat(300)          # let the last writes drain
            for addr, value in mine.items():
                assert words[addr] == value, (name, addr)
            done.append(name)
        return bench

    sim = Simulator(m)
    sim.add_clock(16e-9)
    sim.add_testbench(bank, background=True)
    sim.add_testbench(master("a", arbiter.a, 0, 1))
    sim.add_testbench(master("b", arbiter.b, 1, 2))
    sim.run()
    assert sorted(done) == ["a", "b"]
    for name in "ab":
        assert results[name] and all(got == want for got, want in results[name]), name
