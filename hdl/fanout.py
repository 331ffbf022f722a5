"""Registers copied for fan-out.

One flip-flop that feeds several hundred loads (the address or write enable of a row of LUT
RAMs, the choice behind a wide register) cannot reach them all within 8 ns on the ECP5: the
routing alone took 7–8 ns. `copies` gives registers that the caller loads with the same value,
each driving a share of the loads. Yosys would merge registers with the same inputs, so their
names carry `TAG` and the board build marks the flip-flops behind such names `keep`
(`KEEP_COPIES`, run after the design is read). Simulation needs nothing of this.
"""
from amaranth import Signal

__all__ = ["copies", "shares", "KEEP_COPIES"]

TAG = "fanout"
KEEP_COPIES = f"setattr -set keep 1 w:*_{TAG}* %ci1:+$dff[Q] t:$dff %i"


def copies(shape, count, name):
    """`count` registers of `shape` for the caller to load alike."""
    return [Signal(shape, name=f"{name}_{TAG}{index}") for index in range(count)]


def shares(width, count):
    """A `width`-bit register cut into `count` slices, one per copy of what steers it."""
    part = -(-width // count)
    return [slice(part * index, part * (index + 1)) for index in range(count)]
