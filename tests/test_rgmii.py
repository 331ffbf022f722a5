"""RGMII ↔ GMII adapter (firmware/rgmii.py) with behavioural DDR registers, in the Amaranth
simulator: the nibbles and control bits on each clock edge as RGMII v2.0 specifies."""
import random
from types import SimpleNamespace

from amaranth import ClockDomain, ClockSignal, Module, Signal
from amaranth.sim import Simulator

from wirestamp.firmware.rgmii import RgmiiPhy

PERIOD = 8e-9


def pins():
    return SimpleNamespace(tx_clk=Signal(), tx_ctl=Signal(), tx_data=Signal(4),
                           rx_clk=Signal(), rx_ctl=Signal(), rx_data=Signal(4))


def with_rx_domain(phy):
    m = Module()
    m.submodules.phy = phy
    m.domains.rx = ClockDomain("rx")
    m.d.comb += ClockSignal("rx").eq(phy.rx_clk)
    return m


def test_transmit_nibbles_and_control():
    random.seed(3)
    frame = [(random.randrange(256), 1, int(i == 5)) for i in range(12)] + [(0, 0, 0)] * 3
    port = pins()
    dut = RgmiiPhy(port, simulation=True)
    seen = []

    async def drive(ctx):
        for data, enable, error in frame:
            ctx.set(dut.gmii_tx.txd, data)
            ctx.set(dut.gmii_tx.tx_en, enable)
            ctx.set(dut.gmii_tx.tx_er, error)
            await ctx.tick()

    async def sample(ctx):
        for _ in range(len(frame) + 2):
            await ctx.tick()
            await ctx.delay(PERIOD / 4)           # in the rising half
            low, ctl_rise, clock_high = (ctx.get(port.tx_data), ctx.get(port.tx_ctl),
                                         ctx.get(port.tx_clk))
            await ctx.delay(PERIOD / 2)           # in the falling half
            high, ctl_fall, clock_low = (ctx.get(port.tx_data), ctx.get(port.tx_ctl),
                                         ctx.get(port.tx_clk))
            assert (clock_high, clock_low) == (1, 0)
            seen.append((high << 4 | low, ctl_rise, ctl_rise ^ ctl_fall))

    sim = Simulator(with_rx_domain(dut))
    sim.add_clock(PERIOD)
    sim.add_testbench(drive)
    sim.add_testbench(sample)
    sim.run()
    start = next(i for i, (_, enable, _) in enumerate(seen) if enable)
    assert seen[start:start + len(frame)] == frame, (seen, frame)


def test_receive_pairs_rising_and_falling_nibbles():
    random.seed(4)
    frame = [(random.randrange(256), 1, int(i == 7)) for i in range(16)]
    port = pins()
    dut = RgmiiPhy(port, simulation=True)
    got = []

    async def phy(ctx):
        """The PHY's side: data centred on each edge of rx_clk (2 ns of skew either way)."""
        for data, enable, error in [(0, 0, 0)] * 2 + frame + [(0, 0, 0)] * 4:
            ctx.set(port.rx_data, data & 15)
            ctx.set(port.rx_ctl, enable)
            await ctx.delay(PERIOD / 4)
            ctx.set(port.rx_clk, 1)
            await ctx.delay(PERIOD / 4)
            ctx.set(port.rx_data, data >> 4)
            ctx.set(port.rx_ctl, enable ^ error)
            await ctx.delay(PERIOD / 4)
            ctx.set(port.rx_clk, 0)
            await ctx.delay(PERIOD / 4)

    async def mac(ctx):
        for _ in range(len(frame) + 5):
            await ctx.tick("rx")
            if ctx.get(dut.gmii_rx.rx_dv):
                got.append((ctx.get(dut.gmii_rx.rxd), 1, ctx.get(dut.gmii_rx.rx_er)))

    sim = Simulator(with_rx_domain(dut))
    sim.add_clock(PERIOD)
    sim.add_testbench(phy)
    sim.add_testbench(mac)
    sim.run()
    assert got == frame, (got, frame)
