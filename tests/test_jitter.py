"""Jitter in hardware (RFC 3550 §6.4.1, RFC 3393), of every packet: the block alone against a
Python reference, then the whole unit on the virtual board against the same reference run
over its records, with an echo whose delays are drawn from a distribution."""
import dataclasses
import random

import numpy as np

import wirestamp
from wirestamp import regmap
from wirestamp.hdl.rx.jitter import Jitter
from wirestamp.streams import Stream

from helpers import simulate

ECHO_MAC = "02:00:00:00:00:09"


def reference(latencies):
    """RFC 3550's J (in 1/16 ns, the division rounding down as the gateware's does) and
    RFC 3393's IPDV over consecutive `latencies` (ns) of one stream, in arrival order."""
    j, d = 0, np.diff(np.asarray(latencies, dtype=np.int64))
    for magnitude in np.abs(d):
        j += (int(magnitude) * 16 - j) >> 4
    if not len(d):
        return None
    return {"jitter_q4": j, "ipdv_min": int(d.min()), "ipdv_max": int(d.max()),
            "ipdv_abs_sum": int(np.abs(d).sum()), "ipdv_pairs": len(d)}


def test_block_against_the_reference():
    """Three streams interleaved, latencies up and down by up to 100 µs, some negative
    stamps' differences clamped to 0, records as close together as the block allows, and a
    START that comes while a record is under way (kept, then done)."""
    rng = random.Random(7)
    dut = Jitter()
    sent = {s: [] for s in range(3)}
    results = {}

    async def bench(ctx):
        await ctx.tick()
        for phase in range(2):
            for s in sent:
                sent[s] = []
            for i in range(300):
                stream = rng.randrange(3)
                tx = 10**9 + 1000 * i
                latency = rng.choice([rng.randrange(0, 100_000), 5000, -20])
                while not ctx.get(dut.ready):
                    await ctx.tick()
                ctx.set(dut.record, {"stream": stream, "flags": 0, "length": 64, "seq": i,
                                     "tx_ns": tx, "rx_ns": tx + latency})
                ctx.set(dut.record_valid, 1)
                await ctx.tick()
                ctx.set(dut.record_valid, 0)
                sent[stream].append(max(latency, 0))
                if phase == 0 and i == 299:         # START mid-record: results cleared
                    await ctx.tick().repeat(2)
                    ctx.set(dut.start, 1)
                    await ctx.tick()
                    ctx.set(dut.start, 0)
            await ctx.tick().repeat(10)
        for s in sent:
            ctx.set(dut.stats_select, s)
            await ctx.tick().repeat(2)
            results[s] = {name: ctx.get(getattr(dut.stats, name)) for name, _ in
                          regmap.JITTER_FIELDS}

    simulate(dut, bench, clock_s=16e-9)
    for s, latencies in sent.items():
        assert len(latencies) > 50
        assert results[s] == reference(latencies), s


def test_virtual_board_is_exact_against_its_records():
    """Two streams through an echo with uniformly drawn delays; every record comes back, so
    the reference over each stream's latencies in arrival order must equal the unit's rows,
    and a second run starts from cleared rows."""
    streams = [Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=100_000, count=400),
               Stream("10.0.0.9", dst_mac=ECHO_MAC, rate=70_000, count=300, frame_size=200,
                      dst_port=5002)]
    with wirestamp.open("sim://?dut=echo&delay=uniform:2us-30us&seed=3") as dev:
        for run in range(2):
            dev.configure(streams)
            dev.start()
            records = []
            for chunk in dev.records():
                records.append(chunk)
                if sum(map(len, records)) >= 700 and not dev.running():
                    break
            rows = np.concatenate(records)
            for index in range(2):
                mine = rows[rows["stream"] == index]
                latencies = mine["rx_ns"].astype(np.int64) - mine["tx_ns"].astype(np.int64)
                expected = reference(latencies)
                stats = dev.stream_stats(index)
                assert stats.rx_packets == len(mine) == streams[index].count
                assert np.ptp(latencies) > 5000                 # the delays did vary
                assert stats.jitter_ns == expected["jitter_q4"] / 16
                assert (stats.ipdv_min_ns, stats.ipdv_max_ns) == (expected["ipdv_min"],
                                                                  expected["ipdv_max"])
                assert stats.ipdv_mean_abs_ns == expected["ipdv_abs_sum"] / expected["ipdv_pairs"]
        # What the host makes of an image without the jitter unit (CAPS): no figures.
        dev._info = dataclasses.replace(dev.identify(), jitter=False)
        assert dev.stream_stats(0).jitter_ns is None and dev.stream_stats(0).ipdv_max_ns is None


def test_an_image_says_what_it_carries_in_caps():
    """`Core(streams=, jitter=)`: CAPS says how many streams the image carries and whether
    it has the jitter unit (the host then gives no jitter figures rather than zeros)."""
    from amaranth.sim import Simulator
    from wirestamp.hdl.core import Core
    caps = {}
    for options in ({"jitter": False}, {"jitter": True}, {"streams": 8}):
        dut = Core(**options)
        sim = Simulator(dut)
        for domain, period in (("sync", 8e-9), ("ctl", 16e-9), ("rx", 8e-9)):
            sim.add_clock(period, domain=domain)

        async def bench(ctx, key=tuple(options.items())):
            ctx.set(dut.bus.addr, regmap.register("CAPS").addr)
            ctx.set(dut.bus.r_en, 1)
            await ctx.tick("ctl")
            ctx.set(dut.bus.r_en, 0)
            (data,) = await ctx.tick("ctl").sample(dut.bus.r_data).until(dut.bus.r_valid)
            caps[key] = regmap.unpack_words(regmap.CAPS_FIELDS, [data])
        sim.add_testbench(bench)
        sim.run()
    full = {"streams": 16, "segments": regmap.SEGMENTS, "sizes": regmap.SIZES, "jitter": 1}
    assert caps[(("jitter", True),)] == full
    assert regmap.register("CAPS").reset == regmap.caps() == regmap.pack_fields(
        regmap.CAPS_FIELDS, full)
    assert caps[(("jitter", False),)] == {**full, "jitter": 0}
    assert caps[(("streams", 8),)] == {**full, "streams": 8}
