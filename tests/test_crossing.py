"""The control crossing on two unrelated clocks: settings arrive, each command fires once, and
the snapshot is of one instant after the request, holding still until the next round."""
from amaranth import Module, Signal
from amaranth.sim import Simulator

from wirestamp.hdl.ctl.crossing import ControlCrossing


def make():
    dut = ControlCrossing({"setting": 32}, ("stop", "go"), {"count": 48, "twice": 48})
    m = Module()
    m.submodules.dut = dut
    count = Signal(48)
    m.d.sync += count.eq(count + 1)     # a counter on the core side, and a copy of it
    m.d.comb += [dut.live.count.eq(count), dut.live.twice.eq(count * 2)]
    sim = Simulator(m)
    sim.add_clock(8e-9, domain="sync")
    sim.add_clock(16.5e-9, domain="ctl")
    return dut, sim, count


async def round_trip(ctx, dut):
    """Ask for a round and wait until it is done; returns the control cycles it took."""
    ctx.set(dut.refresh, 1)
    await ctx.tick("ctl")
    ctx.set(dut.refresh, 0)
    cycles = 1
    while not ctx.get(dut.settled):
        await ctx.tick("ctl")
        cycles += 1
    return cycles


def test_settings_commands_and_snapshot_cross():
    dut, sim, count = make()
    fired = []

    async def core_side(ctx):
        async for _, _, stop, go, at in ctx.tick("sync").sample(dut.fired.stop, dut.fired.go,
                                                                count):
            if stop or go:
                fired.append(("stop" if stop else "go", at))

    async def control_side(ctx):
        await round_trip(ctx, dut)                  # the round after reset
        ctx.set(dut.settings.setting, 0x1234_5678)
        seen_before = ctx.get(count)
        cycles = await round_trip(ctx, dut)
        assert cycles < 12, cycles
        snapshot = ctx.get(dut.snapshot.count)
        assert snapshot >= seen_before, "the snapshot is taken after the request"
        assert ctx.get(dut.snapshot.twice) == 2 * snapshot, "one instant for all counters"
        assert ctx.get(dut.applied.setting) == 0x1234_5678
        for _ in range(20):                          # no round: it holds still
            await ctx.tick("ctl")
            assert ctx.get(dut.snapshot.count) == snapshot

        # A command crosses on its own, once; while `hold`, it waits (and shows in flight).
        ctx.set(dut.hold, 1)
        ctx.set(dut.commands.go, 1)
        await ctx.tick("ctl")
        ctx.set(dut.commands.go, 0)
        for _ in range(10):
            await ctx.tick("ctl")
            assert ctx.get(dut.in_flight.go)
        assert fired == []
        ctx.set(dut.hold, 0)
        for _ in range(12):
            await ctx.tick("ctl")
        assert [name for name, _ in fired] == ["go"] and not ctx.get(dut.in_flight.go)
        # The snapshot of the round that carried it was taken after the command fired.
        assert ctx.get(dut.snapshot.count) > fired[0][1]

        # Two commands given in different cycles, both fire, once each.
        ctx.set(dut.commands.stop, 1)
        await ctx.tick("ctl")
        ctx.set(dut.commands.stop, 0)
        ctx.set(dut.commands.go, 1)
        await ctx.tick("ctl")
        ctx.set(dut.commands.go, 0)
        for _ in range(30):
            await ctx.tick("ctl")
        assert sorted(name for name, _ in fired) == ["go", "go", "stop"]

    sim.add_process(core_side)
    sim.add_testbench(control_side)
    sim.run()
