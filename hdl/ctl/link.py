"""The control link: UART, a receive FIFO (so requests are not lost while a reply or a records
frame is going out), and the bridge to the register bus."""
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out, connect

from .bank import RegisterBus
from .bridge import Bridge, Record
from .uart import UartRx, UartTx

__all__ = ["ControlLink"]


class ControlLink(wiring.Component):
    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    bus: Out(RegisterBus())
    records: In(stream.Signature(Record))

    def __init__(self, baud, clock_hz):
        self._baud, self._clock_hz = baud, clock_hz
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self._baud, self._clock_hz)
        m.submodules.tx = tx = UartTx(self._baud, self._clock_hz)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=512)
        m.submodules.bridge = bridge = Bridge()
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx),
                     fifo.w_data.eq(rx.data.payload), fifo.w_en.eq(rx.data.valid),
                     rx.data.ready.eq(fifo.w_rdy),
                     bridge.rx.valid.eq(fifo.r_rdy), bridge.rx.payload.eq(fifo.r_data),
                     fifo.r_en.eq(bridge.rx.ready)]
        connect(m, bridge.tx, tx.data)
        connect(m, bridge.bus, wiring.flipped(self.bus))
        connect(m, wiring.flipped(self.records), bridge.records)
        return m
