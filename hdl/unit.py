"""The unit as a board (or a UART-level bench) sees it: the core and its control link (in the
`ctl` domain, `CONTROL_HZ`)."""
from amaranth import Module, Mux
from amaranth.hdl import DomainRenamer
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from .core import CONTROL_HZ, Core
from .ctl.link import ControlLink
from .ctl.mdio import MdioPins
from .mac.gmii import GmiiRx, GmiiTx
from .time import Reference

__all__ = ["Unit", "UsbUnit"]


class Unit(wiring.Component):
    gmii_tx: Out(GmiiTx())
    gmii_rx: In(GmiiRx())
    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    mdio: Out(MdioPins())              # the PHYs' management pins (`ctl`)
    pps: Out(1)                        # the timebase's reference outputs (`time.Reference`)
    square: Out(1)

    def __init__(self, baud=3_000_000, **options):
        """`options`: the core's build options (`Core`: `streams`, `jitter`)."""
        self._baud, self._options = baud, options
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core(**self._options)
        m.submodules.link = link = DomainRenamer("ctl")(ControlLink(self._baud, CONTROL_HZ))
        connect(m, link.bus, core.bus)
        connect(m, core.records, link.records)
        connect(m, core.gmii_tx, wiring.flipped(self.gmii_tx))
        connect(m, wiring.flipped(self.gmii_rx), core.gmii_rx)
        connect(m, core.mdio, wiring.flipped(self.mdio))
        m.d.comb += [link.uart_rx.eq(self.uart_rx), self.uart_tx.eq(link.uart_tx)]
        _reference(m, core, self)
        return m


def _reference(m, core, unit):
    m.submodules.reference = reference = Reference()
    m.d.comb += [reference.now.eq(core.now), unit.pps.eq(reference.pps),
                 unit.square.eq(reference.square)]


class UsbUnit(wiring.Component):
    """The unit with a USB 2.0 link (`ctl.usb.UsbLink`) and the UART as a fallback: both
    reach the register bus through `ctl.arbiter.BusArbiter`. Records go to USB's EP2 while
    the USB bridge streams (RECORDS_START on USB), else to the UART's RECORDS frames. `ulpi`
    is the board's ULPI resource; the `usb` domain is the caller's (the ULPI clock)."""
    gmii_tx: Out(GmiiTx())
    gmii_rx: In(GmiiRx())
    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    mdio: Out(MdioPins())              # the PHYs' management pins (`ctl`)
    pps: Out(1)
    square: Out(1)

    def __init__(self, ulpi, baud=3_000_000, serial="0", **options):
        self._ulpi, self._baud, self._serial, self._options = ulpi, baud, serial, options
        super().__init__()

    def elaborate(self, platform):
        from .ctl.arbiter import BusArbiter
        from .ctl.bridge import Bridge
        from .ctl.usb import UsbLink
        m = Module()
        m.submodules.core = core = Core(**self._options)
        m.submodules.uart = uart = DomainRenamer("ctl")(ControlLink(self._baud, CONTROL_HZ))
        m.submodules.usb = usb = UsbLink(self._ulpi, serial=self._serial)
        m.submodules.usb_bridge = bridge = DomainRenamer("ctl")(Bridge(streaming_port=True))
        m.submodules.arbiter = arbiter = DomainRenamer("ctl")(BusArbiter())
        connect(m, usb.rx, bridge.rx)
        connect(m, bridge.tx, usb.tx)
        connect(m, bridge.bus, arbiter.a)
        connect(m, uart.bus, arbiter.b)
        connect(m, arbiter.bus, core.bus)
        to_usb = bridge.streaming
        m.d.comb += [
            usb.streaming.eq(to_usb),
            usb.records.payload.eq(core.records.payload),
            usb.records.valid.eq(core.records.valid & to_usb),
            uart.records.payload.eq(core.records.payload),
            uart.records.valid.eq(core.records.valid & ~to_usb),
            core.records.ready.eq(Mux(to_usb, usb.records.ready, uart.records.ready)),
            bridge.records.valid.eq(0),
        ]
        connect(m, core.gmii_tx, wiring.flipped(self.gmii_tx))
        connect(m, wiring.flipped(self.gmii_rx), core.gmii_rx)
        connect(m, core.mdio, wiring.flipped(self.mdio))
        m.d.comb += [uart.uart_rx.eq(self.uart_rx), self.uart_tx.eq(uart.uart_tx)]
        _reference(m, core, self)
        return m
