"""A small FIFO between a stream's source and its sink, registered on both sides.

The source sees a `ready` that comes from a flip-flop (the FIFO's level), not through the
sink's logic, and the sink sees data and `valid` from flip-flops (SyncFIFOBuffered's output
register), not from the FIFO's LUT RAM: no path crosses from one side's logic into the other's
in the same cycle. Full rate is kept: a byte can go in and out each cycle.
"""
from amaranth import Value
from amaranth.lib.fifo import SyncFIFOBuffered

__all__ = ["buffered"]


def buffered(m, name, source, sink):
    """Connect stream interfaces `source` (its producer's side) and `sink` (its consumer's
    side) through a SyncFIFOBuffered (two entries and the output register), added to `m` as
    `name`."""
    fifo = m.submodules[name] = SyncFIFOBuffered(width=len(Value.cast(source.payload)), depth=3)
    m.d.comb += [
        fifo.w_data.eq(source.payload), fifo.w_en.eq(source.valid),
        source.ready.eq(fifo.w_rdy),
        sink.payload.eq(fifo.r_data), sink.valid.eq(fifo.r_rdy),
        fifo.r_en.eq(sink.ready),
    ]
