"""The register bank built from the contract, and the timebase it trims."""
from helpers import simulate
from wirestamp import regmap
from wirestamp.hdl.ctl.bank import RegisterBank, RegisterBus
from wirestamp.hdl.time import Timebase


async def bus_write(ctx, bus, addr, value):
    ctx.set(bus.addr, addr)
    ctx.set(bus.w_data, value)
    ctx.set(bus.w_en, 1)
    await ctx.tick()
    ctx.set(bus.w_en, 0)
    await ctx.tick().repeat(RegisterBus.WRITE_LATENCY - 1)     # the write has landed


async def bus_read(ctx, bus, addr):
    ctx.set(bus.addr, addr)
    ctx.set(bus.r_en, 1)
    await ctx.tick()
    ctx.set(bus.r_en, 0)
    await ctx.tick().repeat(RegisterBus.READ_LATENCY - 1)
    assert ctx.get(bus.r_valid), "r_valid READ_LATENCY cycles after r_en"
    return ctx.get(bus.r_data)


def test_registers_behave_as_the_map_says():
    dut = RegisterBank()
    seen = {}

    async def bench(ctx):
        reg = regmap.register
        seen["id"] = await bus_read(ctx, dut.bus, reg("ID").addr)
        seen["caps"] = await bus_read(ctx, dut.bus, reg("CAPS").addr)
        seen["increment"] = await bus_read(ctx, dut.bus, reg("TIME_INCREMENT").addr)
        await bus_write(ctx, dut.bus, reg("TIME_INCREMENT").addr, 0x0800_0123)
        seen["increment_after"] = await bus_read(ctx, dut.bus, reg("TIME_INCREMENT").addr)
        seen["increment_port"] = ctx.get(dut.time_increment)
        # 64-bit: reading the low word latches the high word.
        ctx.set(dut.tx_frames, 0x1234_5678_9ABC_DEF0)
        low = await bus_read(ctx, dut.bus, reg("TX_FRAMES").addr)
        ctx.set(dut.tx_frames, 0xFFFF_FFFF_FFFF_FFFF)
        high = await bus_read(ctx, dut.bus, reg("TX_FRAMES").addr + 1)
        seen["tx_frames"] = high << 32 | low
        # A 32-bit register whose pair has nothing in its low word (CONTROL is write-only).
        ctx.set(dut.status, 0x8000_0001)
        seen["status"] = await bus_read(ctx, dut.bus, reg("STATUS").addr)
        ctx.set(dut.stream_tx, 99)
        seen["stream5"] = await bus_read(ctx, dut.bus, reg("STREAM_TX").addr + 2 * 5)
        seen["stream_select"] = ctx.get(dut.stream_tx_select)
        # A write-only command register strobes for exactly one cycle.
        ctx.set(dut.bus.addr, reg("CONTROL").addr)
        ctx.set(dut.bus.w_data, regmap.CONTROL_START)
        ctx.set(dut.bus.w_en, 1)
        await ctx.tick()
        ctx.set(dut.bus.w_en, 0)
        await ctx.tick().repeat(RegisterBus.WRITE_LATENCY - 2)
        seen["strobe_early"] = ctx.get(dut.control_strobe)
        await ctx.tick()                    # WRITE_LATENCY cycles after w_en
        seen["strobe"] = [ctx.get(dut.control_strobe), ctx.get(dut.control)]
        await ctx.tick()
        seen["strobe_after"] = ctx.get(dut.control_strobe)
        # A table write enables exactly its word of its row.
        table = regmap.SEGMENT_TABLE
        ctx.set(dut.bus.addr, table.addr(9, 4))
        ctx.set(dut.bus.w_data, 0xCAFE)
        ctx.set(dut.bus.w_en, 1)
        await ctx.tick().repeat(RegisterBus.WRITE_LATENCY - 1)   # the memory writes next
        seen["table"] = (ctx.get(dut.segment_table.addr), ctx.get(dut.segment_table.en),
                         ctx.get(dut.stream_table.en))
        ctx.set(dut.bus.addr, table.addr(9, table.row_words))   # past the row: ignored
        await ctx.tick().repeat(RegisterBus.WRITE_LATENCY - 1)
        seen["past_row"] = ctx.get(dut.segment_table.en)

    simulate(dut, bench)
    assert seen["id"] == int.from_bytes(b"WSTP", "big")
    assert seen["caps"] == regmap.register("CAPS").reset
    assert seen["increment"] == 8 << 24
    assert seen["increment_after"] == seen["increment_port"] == 0x0800_0123
    assert seen["tx_frames"] == 0x1234_5678_9ABC_DEF0
    assert seen["status"] == 0x8000_0001
    assert seen["stream5"] == 99 and seen["stream_select"] == 5
    assert seen["strobe_early"] == 0
    assert seen["strobe"] == [1, regmap.CONTROL_START] and seen["strobe_after"] == 0
    assert seen["table"] == (9, 1 << 4, 0)
    assert seen["past_row"] == 0


def test_timebase_follows_its_trimmed_increment():
    dut = Timebase()
    seen = []

    async def bench(ctx):
        await ctx.tick().repeat(10)
        seen.append(ctx.get(dut.now))
        # +100 ppm: 8.0008 ns per cycle.
        ctx.set(dut.increment, round(8.0008 * (1 << 24)))
        start = ctx.get(dut.now)
        await ctx.tick().repeat(10_000)
        seen.append(ctx.get(dut.now) - start)

    simulate(dut, bench)
    assert seen[0] == 80
    assert seen[1] in (80_007, 80_008)   # 80 008 ns, less what is still in the fraction


def test_timebase_steps_evenly_across_its_carry():
    # The low 16 ns bits wrap at 65 536 ns (cycle 8192); the high bits take the carry a cycle
    # later, and `now` must not show it.
    dut = Timebase()
    seen = []

    async def bench(ctx):
        await ctx.tick().repeat(8185)
        for _ in range(15):
            seen.append(ctx.get(dut.now))
            await ctx.tick()

    simulate(dut, bench)
    assert seen[0] == 8185 * 8
    assert [b - a for a, b in zip(seen, seen[1:])] == [8] * 14
