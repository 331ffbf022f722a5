"""The crossings on two unrelated clocks. The control crossing: settings arrive, each command
fires once, and the snapshot is of one instant after the request, holding still until the next
round. The receive FIFO: every entry it accepts comes out once, in order, however the two
clocks and the reader's pace differ, and it refuses entries when full. The skid buffer between
stages: the same, on one clock, at full rate when nothing stalls."""
import random

import pytest
from amaranth import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from wirestamp.hdl.ctl.crossing import ControlCrossing
from wirestamp.hdl.buffer import CrossingFifo, SkidBuffer


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


def test_a_frozen_round_captures_only_what_the_core_holds_unless_it_carries_a_capture():
    dut = ControlCrossing({}, ("snapshot", "go"), {"count": 48, "held": 48},
                          always=("held",), capturing=("snapshot",))
    m = Module()
    m.submodules.dut = dut
    count = Signal(48)
    m.d.sync += count.eq(count + 1)
    m.d.comb += [dut.live.count.eq(count), dut.live.held.eq(count)]
    sim = Simulator(m)
    sim.add_clock(8e-9, domain="sync")
    sim.add_clock(16.5e-9, domain="ctl")

    async def command(ctx, name):
        ctx.set(getattr(dut.commands, name), 1)
        await ctx.tick("ctl")
        ctx.set(getattr(dut.commands, name), 0)
        await ctx.tick("ctl").repeat(14)

    async def control_side(ctx):
        await round_trip(ctx, dut)
        ctx.set(dut.freeze, 1)
        await command(ctx, "snapshot")              # the round that carries it captures
        frozen = ctx.get(dut.snapshot.count)
        assert ctx.get(dut.snapshot.held) == frozen
        for _ in range(3):                          # rounds under `freeze`: held still...
            await round_trip(ctx, dut)
            assert ctx.get(dut.snapshot.count) == frozen
            assert ctx.get(dut.snapshot.held) > frozen      # ... but for `always`
        await command(ctx, "go")                    # another command does not capture
        assert ctx.get(dut.snapshot.count) == frozen
        await command(ctx, "snapshot")              # a new snapshot
        again = ctx.get(dut.snapshot.count)
        assert again > frozen
        ctx.set(dut.freeze, 0)                      # let go: every round captures again
        await round_trip(ctx, dut)
        assert ctx.get(dut.snapshot.count) > again

    sim.add_testbench(control_side)
    sim.run()


@pytest.mark.parametrize("write_ns, read_ns, read_every, pause", [
    (8.0, 8.0016, 1, False),    # the PHY's clock 200 ppm fast of the core's
    (7.0, 9.0, 1, False),       # a much faster writer: the FIFO fills
    (8.0, 8.0, 3, False),       # a reader taking one in three cycles
    (8.0, 8.0, 1, True),        # a reader that stops a while: the FIFO fills to the last entry
])
def test_receive_fifo_keeps_every_accepted_entry(write_ns, read_ns, read_every, pause):
    fifo = CrossingFifo(16, depth=16, w_domain="rx")
    m = Module()
    m.domains.rx = ClockDomain("rx")
    m.submodules.fifo = fifo
    sim = Simulator(m)
    sim.add_clock(write_ns * 1e-9, domain="rx")
    sim.add_clock(read_ns * 1e-9, domain="sync")
    written, read, refused = [], [], []

    async def writer(ctx):
        value = 0
        ctx.set(fifo.i.valid, 1)
        for _ in range(600):
            ctx.set(fifo.i.payload, value)
            _, _, ready = await ctx.tick("rx").sample(fifo.i.ready)
            if ready:
                written.append(value)
                value += 1
            else:
                refused.append(value)
        ctx.set(fifo.i.valid, 0)

    async def reader(ctx):
        for cycle in range(3000):
            taking = cycle % read_every == 0 and not (pause and 50 <= cycle < 400)
            ctx.set(fifo.o.ready, taking)
            _, _, ready, data = await ctx.tick("sync").sample(fifo.o.valid, fifo.o.payload)
            if taking and ready:
                read.append(data)

    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run()
    assert read == written, "each accepted entry once, in order, none invented"
    assert len(written) >= 0.95 * min(600, 600 * write_ns / (read_ns * read_every)) - 350 * pause
    # A writer faster than the reader meets a full FIFO; one at the reader's pace never does.
    assert bool(refused) == (write_ns < read_ns * 0.99 or read_every > 1 or pause)


@pytest.mark.parametrize("write_odds, read_odds", [(1.0, 1.0), (1.0, 0.5), (0.5, 1.0), (0.6, 0.4)])
def test_skid_buffer_passes_every_word_once_in_order(write_odds, read_odds):
    buffer = SkidBuffer(16)
    sim = Simulator(buffer)
    sim.add_clock(8e-9)
    chance = random.Random(f"{write_odds} {read_odds}")
    written, read = [], []
    cycles = 400

    async def bench(ctx):
        value = 0
        for _ in range(cycles):
            writing, reading = chance.random() < write_odds, chance.random() < read_odds
            ctx.set(buffer.i.valid, writing)
            ctx.set(buffer.i.payload, value)
            ctx.set(buffer.o.ready, reading)
            # `i.ready` and the output come from flip-flops: what they show now holds at the edge.
            if writing and ctx.get(buffer.i.ready):
                written.append(value)
                value += 1
            if reading and ctx.get(buffer.o.valid):
                read.append(ctx.get(buffer.o.payload))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert read == written[:len(read)], "each word once, in order, none invented"
    assert len(written) - len(read) <= 2, "it holds two words at most"
    if write_odds == read_odds == 1.0:
        assert len(read) >= cycles - 2, "a word in and out every cycle"
