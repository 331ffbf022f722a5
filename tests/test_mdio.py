"""PHY management (`hdl/ctl/mdio.py`) against the virtual board's PHY (`sim/phy.py`): clause 22
reads and writes, BMSR's latching-low link bit, an absent PHY reading all ones, a command
while busy ignored, and the frame's bits on the wire as IEEE 802.3 22.2.4 draws them."""
from amaranth import Module, Signal

from wirestamp import regmap
from wirestamp.hdl.ctl.mdio import MdioMaster
from wirestamp.sim.phy import PHY_ID, PhyModel

from helpers import simulate


def bench_pair(address=1):
    m = Module()
    m.submodules.master = master = MdioMaster()
    m.submodules.phy = phy = PhyModel(address)
    line = Signal()
    # An open-drain-like bus with a pull-up: whoever drives it sets it.
    m.d.comb += [
        line.eq((~master.pins.oe | master.pins.o) & (~phy.oe | phy.o)),
        master.pins.i.eq(line), phy.mdc.eq(master.pins.mdc), phy.mdio.eq(line),
    ]
    return m, master, phy, line


async def transact(ctx, master, phy, reg, write=False, data=0):
    ctx.set(master.command.payload, {"phy": phy, "reg": reg, "write": write, "data": data})
    ctx.set(master.command.valid, 1)
    await ctx.tick().until(master.command.ready)
    ctx.set(master.command.valid, 0)
    await ctx.tick()
    assert ctx.get(master.result.busy)
    cycles = 0
    while ctx.get(master.result.busy):
        await ctx.tick()
        cycles += 1
    assert cycles < regmap.MDIO_CYCLES + 4
    return ctx.get(master.result.data)


def test_reads_writes_and_the_latching_link_bit():
    m, master, phy, _ = bench_pair(address=1)
    seen = {}

    async def bench(ctx):
        ctx.set(phy.link, 1)
        seen["id"] = (await transact(ctx, master, 1, 2)) << 16 | await transact(ctx, master, 1, 3)
        seen["absent"] = await transact(ctx, master, 7, 2)
        await ctx.tick()
        seen["bmsr_up"] = await transact(ctx, master, 1, 1)   # latched low since reset
        seen["bmsr_up2"] = await transact(ctx, master, 1, 1)
        ctx.set(phy.link, 0)
        await ctx.tick().repeat(10)
        ctx.set(phy.link, 1)
        seen["after_drop"] = await transact(ctx, master, 1, 1)
        seen["after_drop2"] = await transact(ctx, master, 1, 1)
        await transact(ctx, master, 1, 0, write=True, data=0x0140)
        seen["bmcr"] = await transact(ctx, master, 1, 0)
        await transact(ctx, master, 2, 0, write=True, data=0x0000)    # someone else's
        seen["bmcr_kept"] = await transact(ctx, master, 1, 0)

    simulate(m, bench, clock_s=16e-9)
    assert seen["id"] == PHY_ID
    assert seen["absent"] == 0xFFFF
    link = 1 << 2
    assert not seen["bmsr_up"] & link and seen["bmsr_up2"] & link
    assert not seen["after_drop"] & link and seen["after_drop2"] & link
    assert seen["bmcr"] == 0x0140 and seen["bmcr_kept"] == 0x0140


def test_frame_bits_on_the_wire_and_a_command_while_busy():
    """Sample the line at each MDC rising edge: a write frame is the preamble, 01, 01, the
    addresses, 10 and the data, MSB first; a second command offered mid-frame is not taken."""
    m, master, phy, line = bench_pair(address=3)
    bits, taken = [], []

    async def bench(ctx):
        ctx.set(master.command.payload, {"phy": 3, "reg": 9, "write": 1, "data": 0xA5C3})
        ctx.set(master.command.valid, 1)
        await ctx.tick()
        ctx.set(master.command.payload, {"phy": 3, "reg": 4, "write": 1, "data": 0x1234})
        for _ in range(regmap.MDIO_CYCLES // 2):
            taken.append(ctx.get(master.command.ready))
            await ctx.tick()
        ctx.set(master.command.valid, 0)
        await ctx.tick().repeat(regmap.MDIO_CYCLES)

    async def probe(ctx):
        last = 0
        async for _, _, mdc, value in ctx.tick().sample(master.pins.mdc, line):
            if mdc and not last:
                bits.append(value)
            last = mdc

    simulate(m, bench, background=[probe], clock_s=16e-9)
    frame = "".join(map(str, bits[:64]))
    expected = "1" * 32 + "01" + "01" + "00011" + "01001" + "10" + format(0xA5C3, "016b")
    assert frame == expected
    assert not any(taken)


def test_the_host_reads_and_writes_the_virtual_boards_phy():
    """`Device.mdio_write`/`phys` through the whole path: forcing 100 Mb/s full duplex in BMCR
    (auto-negotiation off) is what `phys` then reports, and a bad field touches nothing."""
    import pytest

    import wirestamp
    with wirestamp.open("sim://") as device:
        assert [p.speed for p in device.phys()] == ["1000 Mb/s full duplex"]
        device.mdio_write(1, 0, 1 << 13 | 1 << 8)
        assert device.mdio_read(1, 0) == 1 << 13 | 1 << 8
        assert [p.speed for p in device.phys()] == ["100 Mb/s full duplex (forced)"]
        with pytest.raises(ValueError, match="mdio.reg"):
            device.mdio_read(1, 32)
