"""Buffers between stages. `buffered`: a two-entry skid buffer between a stream's source and
its sink, registered on both sides; `CrossingFifo`: an asynchronous FIFO between clock domains.

Through `buffered`, the source sees a `ready` that comes from a flip-flop (whether the spare
entry is taken), not through the sink's logic, and the sink sees data and `valid` from
flip-flops: no path crosses from one side's logic into the other's in the same cycle. Full
rate is kept: a byte can go in and out each cycle. Both entries are flip-flops (a FIFO in LUT
RAM took the RAM-capable LUTs the 25F is short of).
"""
from amaranth import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory

__all__ = ["buffered", "SkidBuffer", "CrossingFifo"]


class SkidBuffer(Elaboratable):
    """Two entries: the output register and a spare. `w_rdy` is "the spare is free"; a word
    written while the output cannot move on waits in the spare, and moves out first."""

    def __init__(self, width):
        self.w_en, self.w_data, self.w_rdy = Signal(), Signal(width), Signal(init=1)
        self.r_en, self.r_data, self.r_rdy = Signal(), Signal(width), Signal()

    def elaborate(self, platform):
        m = Module()
        spare = Signal.like(self.w_data)
        accepted = self.w_en & self.w_rdy
        with m.If(~self.r_rdy | self.r_en):         # the output register moves on
            with m.If(~self.w_rdy):
                m.d.sync += [self.r_data.eq(spare), self.r_rdy.eq(1), self.w_rdy.eq(1)]
            with m.Else():
                m.d.sync += [self.r_data.eq(self.w_data), self.r_rdy.eq(accepted)]
        with m.Elif(accepted):
            m.d.sync += [spare.eq(self.w_data), self.w_rdy.eq(0)]
        return m


def buffered(m, name, source, sink):
    """Connect stream interfaces `source` (its producer's side) and `sink` (its consumer's
    side) through a `SkidBuffer`, added to `m` as `name`."""
    buffer = m.submodules[name] = SkidBuffer(len(Value.cast(source.payload)))
    m.d.comb += [
        buffer.w_data.eq(source.payload), buffer.w_en.eq(source.valid),
        source.ready.eq(buffer.w_rdy),
        sink.payload.eq(buffer.r_data), sink.valid.eq(buffer.r_rdy),
        buffer.r_en.eq(sink.ready),
    ]


def _gray(value):
    return value ^ (value >> 1)


def _binary(gray):
    bits = [gray[-1]]
    for bit in reversed(gray[:-1]):
        bits.insert(0, bits[0] ^ bit)
    return Cat(*bits)


class CrossingFifo(Elaboratable):
    """An asynchronous FIFO (Gray-coded pointers through two flip-flops each way, as in
    Cummings, "Simulation and Synthesis Techniques for Asynchronous FIFO Design", style 2) whose
    write side decides from registers only: `w_rdy` is registered, computed from the level a
    cycle earlier with one entry of margin. So the write side's pointer follows `w_en` through
    one LUT and a short carry chain, where lib.fifo.AsyncFIFO runs from the synchronised read
    pointer through its full test into the same carry chain (the receive clock's worst path,
    8.2 ns in one build, and the records' way to `ctl` in another). Both sides must come out of
    reset together."""

    def __init__(self, width, depth, w_domain, r_domain="sync"):
        assert depth & (depth - 1) == 0, "a power of two"
        self.depth, self._w, self._r = depth, w_domain, r_domain
        self.w_en, self.w_data, self.w_rdy = Signal(), Signal(width), Signal(init=1)
        self.r_en, self.r_data, self.r_rdy = Signal(), Signal(width), Signal()

    def elaborate(self, platform):
        m = Module()
        bits = self.depth.bit_length()          # one more than the address: full vs empty
        m.submodules.storage = storage = Memory(shape=len(self.w_data), depth=self.depth,
                                                init=[])
        write, read = storage.write_port(domain=self._w), storage.read_port(domain=self._r)

        produce, produce_next, produce_gray = Signal(bits), Signal(bits), Signal(bits)
        consume, consume_next, consume_gray = Signal(bits), Signal(bits), Signal(bits)

        # Write side.
        do_write = self.w_en & self.w_rdy
        m.d.comb += produce_next.eq(produce + do_write)
        m.d[self._w] += [produce.eq(produce_next), produce_gray.eq(_gray(produce_next))]
        consume_gray_w, consume_w = Signal(bits), Signal(bits)
        m.submodules.consume_cdc = FFSynchronizer(consume_gray, consume_gray_w, o_domain=self._w)
        m.d[self._w] += [consume_w.eq(_binary(consume_gray_w)),
                         # At most one write lands before this is seen: keep a place for it.
                         self.w_rdy.eq((produce - consume_w)[:bits] < self.depth - 1)]
        m.d.comb += [write.addr.eq(produce[:-1]), write.data.eq(self.w_data),
                     write.en.eq(do_write)]

        # Read side.
        produce_gray_r = Signal(bits)
        m.submodules.produce_cdc = FFSynchronizer(produce_gray, produce_gray_r,
                                                  o_domain=self._r)
        do_read = self.r_en & self.r_rdy
        m.d.comb += [consume_next.eq(consume + do_read),
                     self.r_rdy.eq(consume_gray != produce_gray_r),
                     read.addr.eq(consume_next[:-1]), self.r_data.eq(read.data)]
        m.d[self._r] += [consume.eq(consume_next), consume_gray.eq(_gray(consume_next))]
        return m
