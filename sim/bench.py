"""cocotb bench of the core: a `TB` class (clock, reset, register bus, GMII capture), and a
generic test that programs the core, starts it and captures what it puts on the wire.

Runs inside the simulator process (started by `wirestamp.sim.runner.run_bench`); parameters
come in, and results go out, as JSON files named by environment variables.
"""
import json
import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, SimTimeoutError, Timer, with_timeout
from cocotb.utils import get_sim_time, get_time_from_sim_steps
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource

from .. import regmap
from ..hdl.ctl.bank import RegisterBus
from ..records import RECORD_DTYPE, RecordDecoder

CLOCK_NS = regmap.NS_PER_CYCLE
# The control clock: about half the core's, and deliberately not exactly (on a board both come
# from one PLL; the crossing must not depend on it).
CONTROL_PS = 16_500


class TB:
    def __init__(self, dut, rx_period_ps=CLOCK_NS * 1000, loopback_cycles=None):
        """`rx_period_ps`: the receive clock (a different value makes the clocks drift apart,
        as two link partners' do). `loopback_cycles`: cable TX to RX through that many
        cycles of delay instead of driving RX with a GMII source."""
        self.dut = dut
        logging.getLogger("cocotb").setLevel(logging.WARNING)
        self.sink = GmiiSink(dut.gmii_tx__txd, dut.gmii_tx__tx_er, dut.gmii_tx__tx_en, dut.clk)
        self.source = None
        dut.gmii_rx__rxd.value = 0
        dut.gmii_rx__rx_dv.value = 0
        dut.gmii_rx__rx_er.value = 0
        dut.bus__w_en.value = 0
        dut.bus__r_en.value = 0
        dut.bus__addr.value = 0
        dut.bus__w_data.value = 0
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        cocotb.start_soon(Clock(dut.rx_clk, rx_period_ps, unit="ps").start())
        cocotb.start_soon(Clock(dut.ctl_clk, CONTROL_PS, unit="ps").start())
        if loopback_cycles is None:
            self.source = GmiiSource(dut.gmii_rx__rxd, dut.gmii_rx__rx_er, dut.gmii_rx__rx_dv,
                                     dut.rx_clk)
        else:
            cocotb.start_soon(self._cable(loopback_cycles))

    async def _cable(self, cycles):
        """TX to RX through `cycles` (at least 1) clock cycles of wire: a byte on txd in one
        cycle is on rxd `cycles` cycles later."""
        dut = self.dut
        line = [(0, 0, 0)] * (cycles - 1)
        while True:
            await RisingEdge(dut.clk)
            line.append((int(dut.gmii_tx__txd.value), int(dut.gmii_tx__tx_en.value),
                         int(dut.gmii_tx__tx_er.value)))
            dut.gmii_rx__rxd.value, dut.gmii_rx__rx_dv.value, dut.gmii_rx__rx_er.value = \
                line.pop(0)

    async def reset(self):
        dut = self.dut
        dut.rst.value = dut.rx_rst.value = dut.ctl_rst.value = 1
        for _ in range(4):
            await RisingEdge(dut.ctl_clk)
        dut.rst.value = dut.rx_rst.value = dut.ctl_rst.value = 0
        await RisingEdge(dut.ctl_clk)

    async def control_cycles(self, cycles):
        await ClockCycles(self.dut.ctl_clk, cycles)

    # The register bus is on the control clock, driven right after its edges.
    async def write(self, addr, value):
        self.dut.bus__addr.value = addr
        self.dut.bus__w_data.value = value
        self.dut.bus__w_en.value = 1
        await RisingEdge(self.dut.ctl_clk)
        self.dut.bus__w_en.value = 0

    async def read(self, addr):
        self.dut.bus__addr.value = addr
        self.dut.bus__r_en.value = 1
        await RisingEdge(self.dut.ctl_clk)
        self.dut.bus__r_en.value = 0
        while True:
            await RisingEdge(self.dut.ctl_clk)
            await ReadOnly()
            if self.dut.bus__r_valid.value:
                break
        value = int(self.dut.bus__r_data.value)
        await RisingEdge(self.dut.ctl_clk)
        return value

    async def read_register(self, name, index=0):
        reg = regmap.register(name)
        addr = reg.addr + index * reg.words
        low = await self.read(addr)
        return low | (await self.read(addr + 1)) << 32 if reg.words == 2 else low

    async def timebase_offset(self):
        """Timebase reading minus simulation time (ns), both sampled at the same clock edge:
        the same sampling the GMII sink uses, so sink times map exactly onto the timebase."""
        await RisingEdge(self.dut.clk)
        return int(self.dut.now.value) - get_sim_time("ns")

    @staticmethod
    def sfd_sim_ns(frame):
        # The sink marks the first byte after the SFD; the SFD was on the wire a cycle earlier.
        return get_time_from_sim_steps(frame.sim_time_sfd, "ns") - CLOCK_NS

    def describe(self, frame, offset):
        """A captured frame as JSON: bytes (FCS included), preamble, and its SFD time on the
        timebase (`offset` = timebase - simulation time)."""
        return {"data": frame.get_payload(strip_fcs=False).hex(),
                "preamble": frame.get_preamble().hex(),
                "sfd_ns": int(self.sfd_sim_ns(frame) + offset),
                "error": bool(frame.error and any(frame.error))}


def _params():
    with open(os.environ["WIRESTAMP_BENCH_PARAMS"]) as f:
        return json.load(f)


def _result(result):
    with open(os.environ["WIRESTAMP_BENCH_RESULT"], "w") as f:
        json.dump(result, f)


@cocotb.test()
async def capture(dut):
    """Program the core with `writes`, START, capture `frames` frames (or until `timeout_us`),
    then read `registers`. Each frame: bytes (hex, FCS included), SFD time on the timebase.
    With `stop_after`, STOP is written once that many frames have arrived; `final_writes`
    are written after the capture, before the registers are read."""
    params = _params()
    tb = TB(dut)
    await tb.reset()
    for addr, value in params.get("writes", []):
        await tb.write(addr, value)
    offset = await tb.timebase_offset()
    await tb.write(regmap.register("CONTROL").addr, regmap.CONTROL_START)
    await tb.control_cycles(regmap.START_CLEAR_CYCLES)

    frames = []

    async def collect():
        while len(frames) < params["frames"]:
            if len(frames) == params.get("stop_after"):
                await tb.write(regmap.register("CONTROL").addr, regmap.CONTROL_STOP)
            frames.append(tb.describe(await tb.sink.recv(), offset))

    timed_out = False
    try:
        await with_timeout(collect(), params.get("timeout_us", 10_000), "us")
    except SimTimeoutError:
        timed_out = True
    await Timer(params.get("settle_ns", 2000), "ns")
    await RisingEdge(dut.ctl_clk)
    for addr, value in params.get("final_writes", []):
        await tb.write(addr, value)
    await tb.control_cycles(RegisterBus.WRITE_LATENCY + 2)   # the core registers commands
    registers = {}
    for name in params.get("registers", []):
        reg = regmap.register(name)
        registers[name] = [await tb.read_register(name, i) for i in range(reg.count)]
        if reg.count == 1:
            registers[name] = registers[name][0]
    _result({"frames": frames, "timed_out": timed_out, "registers": registers,
             "end_ns": int(get_sim_time("ns") + offset)})


def _frame(spec):
    """A GmiiFrame from {"data": hex (padded to "min_len", 60 unless given, and FCS added,
    unless "raw"), "errors": [byte indexes with rx_er], "preamble": hex}."""
    payload = bytes.fromhex(spec["data"])
    frame = GmiiFrame.from_raw_payload(payload) if spec.get("raw") else \
        GmiiFrame.from_payload(payload, min_len=spec.get("min_len", 60))
    if "preamble" in spec:
        frame.data = bytearray(bytes.fromhex(spec["preamble"])) + frame.data[8:]
    if spec.get("errors"):
        frame.error = [int(i - 8 in spec["errors"]) for i in range(len(frame.data))]
    return frame


@cocotb.test()
async def exchange(dut):
    """The whole core: program `writes`, optionally START, send `frames` into RX (or cable TX
    to RX with `loopback_cycles`), run `run_us`, capture TX, then read `registers`, the
    `stats` of the listed streams, `hist` [stream, bucket] counts, and pop `records`."""
    params = _params()
    tb = TB(dut, rx_period_ps=params.get("rx_period_ps", CLOCK_NS * 1000),
            loopback_cycles=params.get("loopback_cycles"))
    await tb.reset()
    for addr, value in params.get("writes", []):
        await tb.write(addr, value)
    offset = await tb.timebase_offset()
    if params.get("start"):
        await tb.write(regmap.register("CONTROL").addr, regmap.CONTROL_START)
        await tb.control_cycles(regmap.START_CLEAR_CYCLES)
    for spec in params.get("frames", []):
        await tb.source.send(_frame(spec))
    await Timer(params.get("run_us", 20), "us")
    await RisingEdge(dut.ctl_clk)
    sent = []
    while not tb.sink.empty():
        sent.append(tb.describe(tb.sink.recv_nowait(), offset))
    result = {"sent": sent, "registers": {}, "stats": {}, "jitter": {}, "hist": [], "records": []}
    for name in params.get("registers", []):
        reg = regmap.register(name)
        values = [await tb.read_register(name, i) for i in range(reg.count)]
        result["registers"][name] = values[0] if reg.count == 1 else values
    stats = regmap.register("STATS")
    for stream in params.get("stats", []):
        await tb.write(regmap.register("STATS_SELECT").addr, stream)
        await tb.control_cycles(RegisterBus.WRITE_LATENCY + 2)   # the tracker's 2 cycles
        words = [await tb.read(stats.addr + i) for i in range(stats.words)]
        result["stats"][str(stream)] = regmap.unpack_words(regmap.STATS_FIELDS, words,
                                                           regmap.STATS_SIGNED)
        jitter = regmap.register("JITTER")
        words = [await tb.read(jitter.addr + i) for i in range(jitter.words)]
        result["jitter"][str(stream)] = regmap.unpack_words(regmap.JITTER_FIELDS, words,
                                                            regmap.JITTER_SIGNED)
    for stream, bucket in params.get("hist", []):       # the read itself waits for the count
        await tb.write(regmap.register("HIST_SELECT").addr, regmap.pack_fields(
            regmap.HIST_SELECT_FIELDS, {"stream": stream, "bucket": bucket}))
        result["hist"].append(await tb.read_register("HIST_COUNTS", 0))
    # `records` records, read from RECORD one by one as the host's decoder takes them (an
    # epoch mark is an entry of the FIFO too, and yields no record).
    record, decoder = regmap.register("RECORD"), RecordDecoder()
    for _ in range(2 * params.get("records", 0)):
        if len(result["records"]) == params.get("records", 0):
            break
        words = [await tb.read(record.addr + i) for i in range(record.words)]
        rows = decoder.decode(b"".join(w.to_bytes(4, "little") for w in words))
        result["records"] += [{name: int(row[name]) for name in RECORD_DTYPE.names}
                              for row in rows]
    _result(result)
