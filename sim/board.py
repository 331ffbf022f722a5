"""The virtual board's gateware: the core, its control bridge, the wire and the DUT models,
as one simulation-only design.

    host bytes ─ ctl FIFO ─ bridge ─ core ─ GMII TX ─┬─ loopback cable (1 cycle) ─┐
         "@C" lines ─┘                                ├─ EchoModel ───────────────┼─ GMII RX
                                                      └─ "@W0" lines  Injector ───┘ ("@W1" lines)

The UART is left out (it has benches of its own): control bytes come in on `ctl` and leave as
printed lines. `board_main.cpp` clocks it in a plain Verilator loop and feeds `ctl` and
`inject` from its standard input. Printed lines (Verilog `$write`, one whole
line per call so lines never interleave):
    @C k <32 hex>         the bridge's next k control bytes (the final k of the 16)
    @W<d> ns              a frame's SFD on the wire, direction d (0: unit → DUT, 1: DUT → unit)
    @B<d> <32 hex>        its next 16 bytes
    @E<d> k <32 hex>      its last k bytes (the final k of the 16) — FCS included
and the echo model's lines (`models.py`).
"""
from amaranth import Cat, ClockDomain, ClockSignal, Module, Mux, ResetSignal, Signal
from amaranth.hdl import DomainRenamer
from amaranth.hdl import Format, Print
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, connect

from .. import regmap
from ..hdl.core import Core
from ..hdl.ctl.bridge import Bridge
from ..hdl.mac.gmii import FrameByte
from ..protocol import END, RECORD_BYTES
from .models import DELAY_TABLE, EchoModel, Injector
from .phy import PhyModel

__all__ = ["VirtualBoard", "DUTS"]

DUTS = ("loopback", "echo", "linux")
LOOPBACK, ECHO, LINUX = range(len(DUTS))
RESET_CYCLES = 16


class VirtualBoard(wiring.Component):
    """Every input is registered and the reset is made inside: Verilator re-evaluates any logic
    fed by a top-level input at every evaluation, which would double the cost of a cycle."""
    clk: In(1)
    ctl_clk: In(1)             # half of clk, rising with every other clk edge (`ctl`)
    ctl: In(stream.Signature(8))
    inject: In(stream.Signature(FrameByte))
    dut: In(2)
    capture: In(1)             # print the wire's frames
    usb_records: In(1)         # records raw on "@D" lines (a USB link's EP2), not in RECORDS
                               # frames on the control link
    unplugged: In(1)           # no cable: the PHY reports link down, and no frame passes
    drop_below: In(33)
    duplicate_below: In(33)
    hold_below: In(33)
    seed: In(32)
    octave: In(32)             # the echo's exponential tail (models.EchoModel), 0: none
    table_addr: In(range(DELAY_TABLE))
    table_data: In(32)
    table_en: In(1)
    queue_frames: In(8)        # the echo's capacity queue (models.EchoModel), 0: none
    frame_service: In(48)
    byte_service: In(48)

    def elaborate(self, platform):
        m = Module()
        _clock_and_reset(m, self.clk, self.ctl_clk)
        m.submodules.core = core = Core()
        m.submodules.bridge = bridge = DomainRenamer("ctl")(Bridge(streaming_port=True))
        m.submodules.ctl_fifo = fifo = AsyncFIFO(width=8, depth=4096, w_domain="sync",
                                                 r_domain="ctl")
        connect(m, bridge.bus, core.bus)
        usb_records = Signal()
        m.d.ctl += usb_records.eq(self.usb_records)
        m.d.comb += [bridge.records.payload.eq(core.records.payload),
                     bridge.records.valid.eq(core.records.valid & ~usb_records),
                     core.records.ready.eq(Mux(usb_records, bridge.streaming,
                                               bridge.records.ready))]
        with m.If(usb_records & bridge.streaming & core.records.valid):
            m.d.ctl += Print(Format(f"@D {{:0{2 * RECORD_BYTES}x}}",
                                    core.records.payload.as_value()))
        m.d.sync += [fifo.w_data.eq(self.ctl.payload), fifo.w_en.eq(self.ctl.valid)]
        m.d.comb += [self.ctl.ready.eq(fifo.w_rdy),
                     bridge.rx.payload.eq(fifo.r_data), bridge.rx.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(bridge.rx.ready), bridge.tx.ready.eq(1)]
        _control_lines(m, "ctl", bridge.tx.payload, bridge.tx.valid)

        now = Signal(48)
        m.d.sync += now.eq(now + 1)

        m.submodules.echo = echo = EchoModel()
        m.submodules.injector = injector = Injector()
        for name in ("drop_below", "duplicate_below", "hold_below", "seed", "octave", "table_addr",
                     "table_data", "table_en", "queue_frames", "frame_service", "byte_service"):
            m.d.sync += getattr(echo, name).eq(getattr(self, name))
        m.d.sync += [injector.frames.payload.eq(self.inject.payload),
                     injector.frames.valid.eq(self.inject.valid)]
        m.d.comb += self.inject.ready.eq(injector.frames.ready)
        dut, capture, plugged = Signal.like(self.dut), Signal(), Signal()
        m.d.sync += [dut.eq(self.dut), capture.eq(self.capture), plugged.eq(~self.unplugged)]

        # The PHY's management interface, on the core's MDIO pins (pulled up).
        m.submodules.phy = phy = DomainRenamer("ctl")(PhyModel())
        mdio = core.mdio
        line = (~mdio.oe | mdio.o) & (~phy.oe | phy.o)
        m.d.comb += [mdio.i.eq(line), phy.mdio.eq(line), phy.mdc.eq(mdio.mdc),
                     phy.link.eq(plugged)]

        tx = core.gmii_tx
        sent = tx.tx_en & plugged
        m.d.comb += [echo.request.txd.eq(tx.txd), echo.request.tx_en.eq(sent & (dut == ECHO)),
                     echo.request.tx_er.eq(tx.tx_er)]
        cable = Signal.like(tx.txd), Signal(), Signal()
        m.d.sync += Cat(*cable).eq(Cat(tx.txd, sent, tx.tx_er))
        towards_unit = {LOOPBACK: cable, ECHO: (echo.reply.txd, echo.reply.tx_en, echo.reply.tx_er),
                        LINUX: (injector.gmii.txd, injector.gmii.tx_en, injector.gmii.tx_er)}
        rx = core.gmii_rx
        with m.Switch(dut):
            for dut, (data, enable, error) in towards_unit.items():
                with m.Case(dut):
                    m.d.comb += [rx.rxd.eq(data), rx.rx_dv.eq(enable & plugged),
                                 rx.rx_er.eq(error & plugged)]

        with m.If(capture):
            _tap(m, 0, tx.txd, sent, now)
            _tap(m, 1, rx.rxd, rx.rx_dv, now)
        return m


def _clock_and_reset(m, clk, ctl_clk):
    """`sync` and `rx` on `clk`, `ctl` on `ctl_clk`, held in reset for the first RESET_CYCLES
    cycles."""
    m.domains.power_on = ClockDomain(reset_less=True)
    m.domains += [ClockDomain(domain) for domain in ("sync", "rx", "ctl")]
    count = Signal(range(RESET_CYCLES + 1))
    with m.If(count != RESET_CYCLES):
        m.d.power_on += count.eq(count + 1)
    for domain in ("power_on", "sync", "rx"):
        m.d.comb += ClockSignal(domain).eq(clk)
    m.d.comb += ClockSignal("ctl").eq(ctl_clk)
    for domain in ("sync", "rx", "ctl"):
        m.d.comb += ResetSignal(domain).eq(count != RESET_CYCLES)


def _control_lines(m, domain, byte, valid):
    """Print the bridge's bytes 16 to a line, and a shorter line at each frame's END byte."""
    count, bytes16 = Signal(4), Signal(128)
    shifted = Cat(byte, bytes16[:120])
    with m.If(valid):
        m.d[domain] += [bytes16.eq(shifted), count.eq(count + 1)]
        with m.If((count == 15) | (byte == END)):
            m.d[domain] += [count.eq(0), Print(Format("@C {} {:032x}", count + 1, shifted))]


def _tap(m, direction, data, enable, now):
    """Print the frames seen on one direction of the wire (see the module's docstring)."""
    inside, count = Signal(), Signal(4)
    bytes16 = Signal(128)
    shifted = Cat(data, bytes16[:120])
    with m.If(~inside & enable & (data == regmap.SFD)):
        m.d.sync += [inside.eq(1), count.eq(0),
                     Print(Format("@W{} {}", direction, now * regmap.NS_PER_CYCLE))]
    with m.Elif(inside & enable):
        m.d.sync += [bytes16.eq(shifted), count.eq(count + 1)]
        with m.If(count == 15):
            m.d.sync += Print(Format("@B{} {:032x}", direction, shifted))
    with m.Elif(inside):
        m.d.sync += [inside.eq(0), Print(Format("@E{} {} {:032x}", direction, count, bytes16))]
