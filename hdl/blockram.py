"""A memory laid out for the ECP5's block RAMs so that reads leave them through no logic.

A DP16KD without its output register needs 5.8 ns from clock to data on the slowest parts
(LFE5U-25F speed 6); at 125 MHz that leaves room for a wire to a flip-flop and nothing more.
Yosys splits a memory deeper than one block into blocks by address and joins them with a
multiplexer, which does not fit. `BlockMemory` slices the memory by bits instead: every slice
is as deep as the memory and only as wide as one block is at that depth (8192 × 2, 4096 × 4,
2048 × 9, ...), so each data bit comes straight from one block. Callers register `data`
before using it.
"""
from amaranth import Elaboratable, Module
from amaranth.lib.memory import Memory, ReadPort, WritePort

__all__ = ["BlockMemory"]

# DP16KD shapes (depth, width); 512 × 36 uses the pseudo-dual-port mode.
BLOCK_SHAPES = [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]


class BlockMemory(Elaboratable):
    """`width` bits × `depth` words, synchronous read ports and one write port, no init."""

    def __init__(self, *, width, depth):
        self.width, self.depth = width, depth
        slice_width = next((w for d, w in BLOCK_SHAPES if depth <= d), None)
        if slice_width is None:
            raise ValueError(f"depth {depth} is deeper than one block RAM")
        self._bounds = [(low, min(low + slice_width, width))
                        for low in range(0, width, slice_width)]
        self._slices = [Memory(shape=high - low, depth=depth, init=[])
                        for low, high in self._bounds]
        self._ports = []        # (our port, the slices' ports)

    def read_port(self):
        port = ReadPort.Signature(addr_width=(self.depth - 1).bit_length(),
                                  shape=self.width).create()
        self._ports.append((port, [memory.read_port() for memory in self._slices]))
        return port

    def write_port(self):
        port = WritePort.Signature(addr_width=(self.depth - 1).bit_length(),
                                   shape=self.width).create()
        self._ports.append((port, [memory.write_port() for memory in self._slices]))
        return port

    def elaborate(self, platform):
        m = Module()
        for index, memory in enumerate(self._slices):
            m.submodules[f"slice{index}"] = memory
        for port, slices in self._ports:
            for (low, high), part in zip(self._bounds, slices):
                m.d.comb += [part.addr.eq(port.addr), part.en.eq(port.en)]
                if isinstance(part, WritePort):
                    m.d.comb += part.data.eq(port.data[low:high])
                else:
                    m.d.comb += port.data[low:high].eq(part.data)
        return m
