"""The unit as a board (or a UART-level bench) sees it: the core and its control link (in the
`ctl` domain, `CONTROL_HZ`)."""
from amaranth import Module
from amaranth.hdl import DomainRenamer
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from .core import CONTROL_HZ, Core
from .ctl.link import ControlLink
from .mac.gmii import GmiiRx, GmiiTx

__all__ = ["Unit"]


class Unit(wiring.Component):
    gmii_tx: Out(GmiiTx())
    gmii_rx: In(GmiiRx())
    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)

    def __init__(self, baud=3_000_000):
        self._baud = baud
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core()
        m.submodules.link = link = DomainRenamer("ctl")(ControlLink(self._baud, CONTROL_HZ))
        connect(m, link.bus, core.bus)
        connect(m, core.records, link.records)
        connect(m, core.gmii_tx, wiring.flipped(self.gmii_tx))
        connect(m, wiring.flipped(self.gmii_rx), core.gmii_rx)
        m.d.comb += [link.uart_rx.eq(self.uart_rx), self.uart_tx.eq(link.uart_tx)]
        return m
