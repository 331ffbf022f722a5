"""The gateware control bridge against the host's protocol module, on the Amaranth simulator:
reads, burst writes, retried writes, damaged frames, and record streaming."""
import random

import pytest
from amaranth.sim import Simulator

from wirestamp import regmap
from wirestamp.hdl.ctl.bridge import Bridge
from wirestamp.protocol import RECORD_BYTES, Deframer, ErrorCode, Frame, Op, encode

ERROR = Op.ERROR


def run(requests, registers=None, records=(), stream_records=False, cycles=6000,
        link_every=1):
    """Send encoded `requests` (bytes), emulate a register bus over `registers` (dict), offer
    `records`; the link takes a byte every `link_every` cycles. Return (decoded replies,
    deframer errors, registers, writes seen)."""
    dut = Bridge()
    registers = dict(registers or {})
    writes, sent = [], bytearray()
    sim = Simulator(dut)
    sim.add_clock(8e-9)

    async def host(ctx):
        for request in requests:
            for byte in request:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, byte)
                await ctx.tick().until(dut.rx.ready)
            ctx.set(dut.rx.valid, 0)
            await ctx.tick().repeat(400)        # like a host that waits for its reply

    async def bus(ctx):
        # Reads answer after 1 to 4 cycles (the core's latency varies), from the address the
        # bridge holds until then.
        wait = None
        async for _, _, r_en, w_en, addr, w_data in ctx.tick().sample(
                dut.bus.r_en, dut.bus.w_en, dut.bus.addr, dut.bus.w_data):
            ctx.set(dut.bus.r_valid, 0)
            if w_en:
                registers[addr] = w_data
                writes.append((addr, w_data))
            if r_en:
                wait = addr % 4
            elif wait is not None:
                wait -= 1
            if wait == 0:
                ctx.set(dut.bus.r_data, registers.get(addr, 0xDEAD0000 | addr))
                ctx.set(dut.bus.r_valid, 1)
                wait = None

    async def link(ctx):
        cycle = 0
        async for _, _, valid, ready, byte in ctx.tick().sample(dut.tx.valid, dut.tx.ready,
                                                                dut.tx.payload):
            if valid and ready:
                sent.append(byte)
            cycle += 1
            ctx.set(dut.tx.ready, cycle % link_every == 0)

    async def source(ctx):
        for rec in records:
            ctx.set(dut.records.valid, 1)
            ctx.set(dut.records.payload, rec)
            await ctx.tick().until(dut.records.ready)
        ctx.set(dut.records.valid, 0)

    sim.add_testbench(host)
    sim.add_testbench(bus, background=True)
    sim.add_testbench(link, background=True)
    sim.add_testbench(source, background=True)

    async def wait(ctx):
        await ctx.tick().repeat(cycles)
    sim.add_testbench(wait)
    sim.run()
    deframer = Deframer()
    return deframer.feed(bytes(sent)), deframer.errors, registers, writes


@pytest.mark.parametrize("link_every", [1, 3])     # a link as fast as the bridge, or slower
def test_burst_read_and_write(link_every):
    regs = {0x100 + i: 0x11111111 * i for i in range(8)}
    words = [0xC0DB00FF, 0xDBDBC0C0, 7]          # END and ESC bytes inside the data
    replies, errors, regs, writes = run([encode(Frame.read(1, 0x100, 8)),
                                         encode(Frame.write(2, 0x2000, words)),
                                         encode(Frame.read(3, 0x2000, 3))], regs,
                                        cycles=20000, link_every=link_every)
    assert errors == 0
    assert replies[0] == Frame(1, Op.READ_REPLY, b"".join(
        (0x11111111 * i).to_bytes(4, "little") for i in range(8)))
    assert replies[1] == Frame(2, Op.WRITE_REPLY)
    assert replies[2].words() == words
    assert writes == [(0x2000 + i, w) for i, w in enumerate(words)]


def test_a_retried_write_acts_once():
    write = encode(Frame.write(9, 4, [regmap.CONTROL_START]))
    replies, _, _, writes = run([write, write, encode(Frame.write(10, 4, [2]))])
    assert replies == [Frame(9, Op.WRITE_REPLY)] * 2 + [Frame(10, Op.WRITE_REPLY)]
    assert writes == [(4, regmap.CONTROL_START), (4, 2)]


def test_sessions_are_told_apart_and_each_keeps_its_retries():
    """Two clients (sessions 3 and 200) that pick tags independently: B's new WRITE with A's
    last tag is executed (before contract 2.0 it was taken for A's retry and dropped), and
    A's retry after B wrote is still a retry (one remembered tag for all would execute it
    again)."""
    a = encode(Frame.write(9, 0x10, [1], session=3))
    b = encode(Frame.write(9, 0x10, [2], session=200))         # the same tag, another client
    b_next = encode(Frame.write(10, 0x10, [3], session=200))
    replies, _, _, writes = run([a, b, a, b_next, b_next])
    assert replies == [Frame(9, Op.WRITE_REPLY)] * 3 + [Frame(10, Op.WRITE_REPLY)] * 2
    assert writes == [(0x10, 1), (0x10, 2), (0x10, 3)]


def test_damaged_and_malformed_frames_change_nothing():
    good = bytearray(encode(Frame.write(5, 0x10, [0x12345678])))
    damaged = bytes(good[:3]) + bytes([good[3] ^ 0x40]) + bytes(good[4:])
    rng = random.Random(2)
    noise = bytes(rng.randrange(256) for _ in range(40)).replace(b"\xc0", b"") + b"\xc0"
    malformed = encode(Frame(6, Op.READ, b"\x00\x01"))
    unknown = encode(Frame(7, 0x55, b""))
    replies, _, _, writes = run([damaged, noise, malformed, unknown,
                                 encode(Frame.read(8, 0x10))], {0x10: 1})
    assert writes == []
    errors = [r for r in replies if r.op == ERROR]
    assert [r.body for r in errors][-2:] == [bytes([ErrorCode.MALFORMED]),
                                             bytes([ErrorCode.UNKNOWN_OP])]
    assert errors[0].body == bytes([ErrorCode.CRC])
    assert replies[-1] == Frame(8, Op.READ_REPLY, (1).to_bytes(4, "little"))


def test_records_stream_between_replies():
    records = [{"stream": i % 3, "flags": 0, "length": 64, "seq": i, "rx_ns": 1000 * i + 777,
                "latency_ns": 777} for i in range(20)]
    replies, errors, _, _ = run([encode(Frame(1, Op.RECORDS_START))], records=records,
                                cycles=12000)
    assert errors == 0 and replies[0] == Frame(1, Op.WRITE_REPLY)
    body = b"".join(r.body for r in replies[1:] if r.op == Op.RECORDS)
    got = [regmap.unpack_words(regmap.RECORD_FIELDS, [
        int.from_bytes(body[i + j:i + j + 4], "little") for j in range(0, RECORD_BYTES, 4)])
        for i in range(0, len(body), RECORD_BYTES)]
    assert got == records
