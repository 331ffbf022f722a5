"""Two control links on one register bus (the ECPIX-5's USB link and its UART fallback).

Each master's strobes (a read's `r_en` with its address, a write's `w_en` with address and
data) enter a FIFO of its own the cycle they are given, so nothing a master does is lost
while the other holds the bus, and each master's requests keep their order (a read after
its own writes sees them). The bus serves the FIFOs in turn: a write is one strobe; a read
holds its address until the bank's `r_valid` and hands `r_data` back to its master, which
waits for it (`RegisterBus`). A bridge has at most one frame of writes in flight: MAX_BURST
entries, the FIFOs' depth.
"""
from amaranth import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ...protocol import MAX_BURST
from .bank import RegisterBus

__all__ = ["BusArbiter"]

Request = data.StructLayout({"write": 1, "addr": 16, "data": 32})


class BusArbiter(wiring.Component):
    a: In(RegisterBus())
    b: In(RegisterBus())
    bus: Out(RegisterBus())

    def elaborate(self, platform):
        m = Module()
        masters = (self.a, self.b)
        fifos = []
        for i, master in enumerate(masters):
            fifo = SyncFIFOBuffered(width=Request.size, depth=MAX_BURST)
            m.submodules[f"requests_{i}"] = fifo
            m.d.comb += [fifo.w_data.eq(Cat(master.w_en, master.addr, master.w_data)),
                         fifo.w_en.eq(master.r_en | master.w_en)]
            fifos.append(fifo)
        turn = Signal()                 # whose FIFO is looked at first
        serving = Signal()
        request = Signal(Request)
        reading = Signal()
        m.d.comb += [self.bus.addr.eq(request.addr), self.bus.w_data.eq(request.data)]
        for master in masters:
            m.d.sync += master.r_valid.eq(0)
        with m.If(reading):
            with m.If(self.bus.r_valid):
                m.d.sync += reading.eq(0)
                for i, master in enumerate(masters):
                    with m.If(serving == i):
                        m.d.sync += [master.r_valid.eq(1), master.r_data.eq(self.bus.r_data)]
        with m.Else():
            ready_a, ready_b = fifos[0].r_rdy, fifos[1].r_rdy
            take_a = ready_a & (~ready_b | (turn == 0))
            take_b = ready_b & ~take_a
            m.d.comb += [fifos[0].r_en.eq(take_a), fifos[1].r_en.eq(take_b)]
            for i, take in enumerate((take_a, take_b)):
                with m.If(take):
                    head = data.View(Request, fifos[i].r_data)
                    m.d.sync += [request.eq(head), serving.eq(i), turn.eq(1 - i),
                                 reading.eq(~head.write)]
        # The strobe goes out the cycle after the request is taken, from registers.
        taken = Signal()
        m.d.sync += taken.eq(fifos[0].r_en | fifos[1].r_en)
        m.d.comb += [self.bus.w_en.eq(taken & request.write),
                     self.bus.r_en.eq(taken & ~request.write)]
        return m
