"""Buffers between stages, each with `lib.stream` ports `i` (towards the source) and `o`
(towards the sink): `SkidBuffer`, a two-entry buffer registered on both sides; `CrossingFifo`,
an asynchronous FIFO between clock domains.

Through a `SkidBuffer`, the source sees a `ready` that comes from a flip-flop (whether the spare
entry is taken), not through the sink's logic, and the sink sees data and `valid` from
flip-flops: no path crosses from one side's logic into the other's in the same cycle. Full
rate is kept: a byte can go in and out each cycle. Both entries are flip-flops (a FIFO in LUT
RAM took the RAM-capable LUTs the 25F is short of).
"""
from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer", "CrossingFifo"]


class SkidBuffer(wiring.Component):
    """Two entries: the output register and a spare. `i.ready` is "the spare is free"; a
    payload taken while the output cannot move on waits in the spare, and moves out first."""

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        spare = Signal.like(self.i.payload)
        # The stream ports' `ready` and `valid` start low; these registers are what they show.
        spare_free, full = Signal(init=1), Signal()
        m.d.comb += [self.i.ready.eq(spare_free), self.o.valid.eq(full)]
        accepted = self.i.valid & spare_free
        with m.If(~full | self.o.ready):            # the output register moves on
            with m.If(~spare_free):
                m.d.sync += [self.o.payload.eq(spare), full.eq(1), spare_free.eq(1)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), full.eq(accepted)]
        with m.Elif(accepted):
            m.d.sync += [spare.eq(self.i.payload), spare_free.eq(0)]
        return m


def _gray(value):
    return value ^ (value >> 1)


def _binary(gray):
    bits = [gray[-1]]
    for bit in reversed(gray[:-1]):
        bits.insert(0, bits[0] ^ bit)
    return Cat(*bits)


class CrossingFifo(wiring.Component):
    """An asynchronous FIFO (Gray-coded pointers through two flip-flops each way, as in
    Cummings, "Simulation and Synthesis Techniques for Asynchronous FIFO Design", style 2) whose
    write side decides from registers only: `i.ready` is registered, computed from the level a
    cycle earlier with one entry of margin. So the write side's pointer follows `i.valid` through
    one LUT and a short carry chain, where lib.fifo.AsyncFIFO runs from the synchronised read
    pointer through its full test into the same carry chain (the receive clock's worst path,
    8.2 ns in one build, and the records' way to `ctl` in another). Both sides must come out of
    reset together. `i` is in `w_domain`, `o` in `r_domain`."""

    def __init__(self, shape, depth, w_domain, r_domain="sync"):
        assert depth & (depth - 1) == 0, "a power of two"
        self.depth, self._shape, self._w, self._r = depth, shape, w_domain, r_domain
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        bits = self.depth.bit_length()          # one more than the address: full vs empty
        m.submodules.storage = storage = Memory(shape=self._shape, depth=self.depth, init=[])
        write, read = storage.write_port(domain=self._w), storage.read_port(domain=self._r)

        produce, produce_next, produce_gray = Signal(bits), Signal(bits), Signal(bits)
        consume, consume_next, consume_gray = Signal(bits), Signal(bits), Signal(bits)

        # Write side. `i.ready` is a register: `ready`.
        ready = Signal(init=1)
        m.d.comb += self.i.ready.eq(ready)
        do_write = self.i.valid & ready
        m.d.comb += produce_next.eq(produce + do_write)
        m.d[self._w] += [produce.eq(produce_next), produce_gray.eq(_gray(produce_next))]
        consume_gray_w, consume_w = Signal(bits), Signal(bits)
        m.submodules.consume_cdc = FFSynchronizer(consume_gray, consume_gray_w, o_domain=self._w)
        m.d[self._w] += [consume_w.eq(_binary(consume_gray_w)),
                         # At most one write lands before this is seen: keep a place for it.
                         ready.eq((produce - consume_w)[:bits] < self.depth - 1)]
        m.d.comb += [write.addr.eq(produce[:-1]), write.data.eq(self.i.payload),
                     write.en.eq(do_write)]

        # Read side.
        produce_gray_r = Signal(bits)
        m.submodules.produce_cdc = FFSynchronizer(produce_gray, produce_gray_r,
                                                  o_domain=self._r)
        do_read = self.o.ready & self.o.valid
        m.d.comb += [consume_next.eq(consume + do_read),
                     self.o.valid.eq(consume_gray != produce_gray_r),
                     read.addr.eq(consume_next[:-1]), self.o.payload.eq(read.data)]
        m.d[self._r] += [consume.eq(consume_next), consume_gray.eq(_gray(consume_next))]
        return m
