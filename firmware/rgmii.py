"""RGMII (Reduced Gigabit Media Independent Interface, v2.0) to GMII (IEEE 802.3 clause 35).

At 1 Gb/s RGMII carries a GMII byte per 125 MHz cycle on 4 data wires, both clock edges:
bits 3:0 with the rising edge, bits 7:4 with the falling one. The control wire carries the
enable on the rising edge and enable XOR error on the falling edge. The transmit clock is sent
with the data; the receive clock comes from the PHY.

The DDR registers are `io.DDRBuffer`s (IDDRX1F/ODDRX1F on ECP5). Clock-to-data skew is the
PHY's (its internal delays) or the board's; `docs/boards.md` says which per board. Amaranth
cannot simulate DDR buffers, so `simulation=True` puts a behavioural model of them in their
place (registers on each edge) for the tests.
"""
from amaranth import Cat, ClockDomain, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from ..hdl.mac.gmii import GmiiRx, GmiiTx

__all__ = ["RgmiiPhy"]

DELAY_TAP_NS = 0.025            # one DELAYG step (ECP5 sysI/O usage guide, TN1265)
MAX_DELAY_TAPS = 127


class _BehaviouralDdrOut:
    """`o[0]` leaves with the rising edge of `domain`, `o[1]` with the falling edge."""

    def __init__(self, m, pin, domain, width):
        self.o = [Signal(width), Signal(width)]
        rising, falling = Signal(width), Signal(width)
        m.d[domain] += [rising.eq(self.o[0]), falling.eq(self.o[1])]
        m.d.comb += pin.eq(Mux(ClockSignal(domain), rising, falling))


class _BehaviouralDdrIn:
    """As `io.DDRBuffer("i")`: the samples of one rising edge (`i[0]`) and of the falling edge
    after it (`i[1]`), together, one cycle later."""

    def __init__(self, m, pin, domain, fall, width):
        self.i = [Signal(width), Signal(width)]
        at_rise, at_fall = Signal(width), Signal(width)
        m.d[fall] += at_fall.eq(pin)
        m.d[domain] += [at_rise.eq(pin), self.i[0].eq(at_rise), self.i[1].eq(at_fall)]


class _DdrSamples:
    """As an input `io.DDRBuffer`'s `i`: the rising-edge sample and the falling-edge one."""

    def __init__(self, width):
        self.i = [Signal(width), Signal(width)]


class RgmiiPhy(wiring.Component):
    """GMII on the inside: `gmii_tx` in the `sync` domain (the 125 MHz transmit clock),
    `gmii_rx` in the `rx` domain, which the parent makes from `rx_clk` (the PHY's receive
    clock, out of its input buffer). `pins` has tx_clk,
    tx_ctl, tx_data[4], rx_clk, rx_ctl, rx_data[4] (an amaranth-boards `eth_rgmii` resource
    requested with dir="-", or plain signals with `simulation=True`). With `receive=False`
    the port only transmits (its receive pins stay unused): the unit then receives on another
    port."""
    gmii_tx: In(GmiiTx())
    gmii_rx: Out(GmiiRx())
    rx_clk: Out(1)

    def __init__(self, pins, simulation=False, receive=True, rx_delay_ns=0.0):
        self._pins = pins
        self._simulation = simulation
        self._receive = receive
        self._rx_delay_taps = round(rx_delay_ns / DELAY_TAP_NS)
        if not 0 <= self._rx_delay_taps <= MAX_DELAY_TAPS:
            raise ValueError(f"rx_delay_ns: {rx_delay_ns} is outside "
                             f"0..{MAX_DELAY_TAPS * DELAY_TAP_NS} ns")
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        pins = self._pins
        if self._simulation:
            m.domains.rx_fall = ClockDomain("rx_fall", clk_edge="neg", local=True)
            m.d.comb += [self.rx_clk.eq(pins.rx_clk), ClockSignal("rx_fall").eq(pins.rx_clk)]
            ddr_out = lambda pin, width: _BehaviouralDdrOut(m, pin, "sync", width)  # noqa: E731
            ddr_in = lambda pin, width: _BehaviouralDdrIn(m, pin, "rx", "rx_fall", width)  # noqa: E731
        else:
            if self._receive:
                m.submodules.rx_clk = rx_clk = io.Buffer("i", pins.rx_clk)
                m.d.comb += self.rx_clk.eq(rx_clk.i)
                platform.add_clock_constraint(pins.rx_clk.io, 125e6)

            def ddr_out(pin, width):
                buffer = io.DDRBuffer("o", pin, o_domain="sync")
                m.submodules += buffer
                return buffer

            def ddr_in(pin, width):
                if not self._rx_delay_taps:
                    buffer = io.DDRBuffer("i", pin, i_domain="rx")
                    m.submodules += buffer
                    return buffer
                # The pad, a DELAYG, then the IDDRX1F, by hand: io.DDRBuffer has no delay.
                m.submodules += (pad := io.Buffer("i", pin))
                ddr = _DdrSamples(width)
                for bit in range(width):
                    delayed = Signal(name=f"rx_delayed{bit}")
                    m.submodules += [
                        Instance("DELAYG", p_DEL_MODE="USER_DEFINED",
                                 p_DEL_VALUE=self._rx_delay_taps, i_A=pad.i[bit], o_Z=delayed),
                        Instance("IDDRX1F", i_D=delayed, i_SCLK=ClockSignal("rx"), i_RST=0,
                                 o_Q0=ddr.i[0][bit], o_Q1=ddr.i[1][bit]),
                    ]
                return ddr

        tx = self.gmii_tx
        data, control, clock = ddr_out(pins.tx_data, 4), ddr_out(pins.tx_ctl, 1), \
            ddr_out(pins.tx_clk, 1)
        m.d.comb += [data.o[0].eq(tx.txd[:4]), data.o[1].eq(tx.txd[4:]),
                     control.o[0].eq(tx.tx_en), control.o[1].eq(tx.tx_en ^ tx.tx_er),
                     clock.o[0].eq(1), clock.o[1].eq(0)]

        if not self._receive:
            return m
        rx = self.gmii_rx
        data, control = ddr_in(pins.rx_data, 4), ddr_in(pins.rx_ctl, 1)
        # A byte is a rising-edge nibble and the falling-edge one after it: i[0] and i[1].
        m.d.rx += [rx.rxd.eq(Cat(data.i[0], data.i[1])), rx.rx_dv.eq(control.i[0]),
                   rx.rx_er.eq(control.i[0] ^ control.i[1])]
        return m
