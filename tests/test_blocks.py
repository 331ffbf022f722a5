"""Blocks on their own, in the Amaranth simulator, under random back-pressure and random
valid/ready stalls, swept over stall patterns and seeds in the manner of verilog-ethernet's
TestFactory: the generator (every frame whole and right, its stamp the SFD's time), the
scheduler (every stream's sequence numbers whole and in order, nothing late), the tracker
(the statistics and histogram of records that come at random, against a Python reference),
the profile engine (each stream's rate, tick by tick, against its compiled profile), the
parser (every kind of frame into its one counter, pulse and record, whatever the gaps
between its bytes) and the responder (ARP and echo replies, checked with scapy). The
generator and the responder rest on how the MAC takes a frame (a pause at its start, then a
byte every cycle); their docstrings say so, and the tests check them at the edge of what
they allow.
The whole core's benches (test_tx, test_rx) test them together."""
import random
import zlib

import pytest

from helpers import fcs, simulate
from test_rx import reference_sequence_counts
from wirestamp import regmap
from wirestamp.hdl.gen.generator import Generator
from wirestamp.hdl.gen.profile import SegmentRow, StreamRow
from wirestamp.hdl.gen.scheduler import Grant, Scheduler
from wirestamp.hdl.rx.tracker import Tracker
from wirestamp.sim.wire import WireFrame
from wirestamp.streams import Stream, compile_streams

# Stall patterns: the chance that a cycle stalls, and how long a stall lasts (cycles).
PATTERNS = {"none": (0.0, 1), "half": (0.5, 1), "bursts": (0.05, 40), "heavy": (0.7, 6)}


class Stalls:
    """Whether a cycle is stalled, by `pattern` (PATTERNS), seeded."""

    def __init__(self, pattern, seed):
        self.chance, self.longest = PATTERNS[pattern]
        self.draws, self.left = random.Random(seed), 0

    def stalled(self):
        if self.left:
            self.left -= 1
            return True
        if self.draws.random() < self.chance:
            self.left = self.draws.randrange(self.longest)
            return True
        return False


def tables(streams, rows=regmap.MAX_STREAMS):
    """The stream and segment table rows `compile_streams` writes, as layout constants."""
    words = dict(compile_streams(streams, rows))

    def row(table, layout, index):
        fields = table.unpack([words.get(table.addr(index, w), 0) for w in range(table.row_words)])
        if "slope" in fields and fields["slope"] >> 63:
            fields["slope"] -= 1 << 64
        return layout.const(fields)
    return ([row(regmap.STREAM_TABLE, StreamRow, i) for i in range(rows)],
            [row(regmap.SEGMENT_TABLE, SegmentRow, i) for i in range(regmap.SEGMENTS)])


def table(addr, data, rows):
    """A testbench serving `rows` as a synchronous memory: `data` is the row at the previous
    cycle's `addr`."""
    async def serve(ctx):
        async for _, _, at in ctx.tick().sample(addr):
            ctx.set(data, rows[at % len(rows)])
    return serve


# The MAC's start of a frame as the generator sees it in the core: two skid buffers take up to
# four bytes, then the MAC sends the preamble (8 cycles) before it takes more.
MAC_START = {"after": 4, "hold": 8}


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("seed", [1, 2])
def test_generator_frames_are_whole_and_stamped_under_back_pressure(pattern, seed):
    run_generator(pattern, seed, **MAC_START)


def test_generator_needs_its_sink_to_pause_once_in_a_frames_first_15_bytes():
    """The invariant in `Generator`'s docstring, at its edge: one cycle of pause after byte
    15 is enough for the IPv4 checksum."""
    run_generator("none", 3, after=15, hold=1)


def run_generator(pattern, seed, after, hold):
    """Frames of three streams through the generator, taken by a sink that stalls by
    `pattern` and pauses `hold` cycles after each frame's first `after` bytes; each frame
    must be whole and right (`WireFrame`), its stamp the SFD's time."""
    streams = [Stream("10.0.0.1", dst_port=7, dst_mac="02:00:00:00:00:aa", frame_size=[64, 333],
                      ttl=9, dscp=5, rate=1000),
               Stream("192.0.2.9", src_ip="172.16.0.1", src_port=4000, frame_size=[1518, 90],
                      rate=1000),
               Stream("10.1.1.1", frame_size=[100, 64, 77], rate=1000)]
    rows, _ = tables(streams)
    dut = Generator()
    draws = random.Random(seed)
    grants = [(draws.randrange(len(streams)), seq) for seq in range(16)]
    frames, stamps = [], []

    async def grant(ctx):
        for stream, seq in grants:
            await ctx.tick().repeat(draws.randrange(1, 4))
            ctx.set(dut.grants.valid, 1)
            ctx.set(dut.grants.payload, Grant.const({"stream": stream, "seq": seq, "last": 0}))
            await ctx.tick().until(dut.grants.ready)
            ctx.set(dut.grants.valid, 0)

    async def sink(ctx):
        """Takes bytes when not stalled; pulses `sfd` a few cycles into each frame, as the
        MAC does after the preamble, with `now` at a new value."""
        stalls, frame, sfd_in = Stalls(pattern, seed), bytearray(), None
        now, held = 10_000, 0
        while len(frames) < len(grants):
            waiting = held and len(frame) >= after
            ready = not stalls.stalled() and not waiting
            held = max(0, held - waiting)
            ctx.set(dut.frames.ready, ready)
            ctx.set(dut.sfd, sfd_in == 0)
            if sfd_in == 0:
                stamps.append(now)
            sfd_in = None if sfd_in is None or sfd_in == 0 else sfd_in - 1
            _, _, valid, payload = await ctx.tick().sample(dut.frames.valid, dut.frames.payload)
            now += 8
            ctx.set(dut.now, now)
            if valid and ready:
                if not frame:
                    sfd_in, held = draws.randrange(1, 8), hold
                frame.append(payload.data)
                if payload.last:
                    frames.append(bytes(frame))
                    frame = bytearray()

    simulate(dut, grant, sink, background=[
        table(dut.stream_addr, dut.stream_row, rows)])
    places = [0] * len(streams)
    for (stream, seq), raw, stamp in zip(grants, frames, stamps):
        decoded = WireFrame({"data": (raw + zlib.crc32(raw).to_bytes(4, "little")).hex(),
                             "preamble": "55555555555555d5", "sfd_ns": stamp, "error": False})
        sizes = streams[stream].sizes
        assert decoded.size == sizes[places[stream] % len(sizes)]
        places[stream] += 1
        assert (decoded.stream, decoded.seq, decoded.tx_ns) == (stream, seq, stamp)
        assert decoded.packet.dst == streams[stream].dst_mac.lower()


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("built", [regmap.MAX_STREAMS, 8])
def test_scheduler_grants_every_packet_in_order_under_back_pressure(pattern, built):
    # Five streams together just under line rate (of 64-byte frames); counts end them. The
    # grants' taker stalls by `pattern`.
    streams = [Stream(f"10.0.0.{i}", rate=rate, count=count, frame_size=64)
               for i, (rate, count) in enumerate([(400_000, 20), (300_000, 10), (400_000, 30),
                                                  (200_000, 6), (100_000, 4)])]
    rows, segments = tables(streams, built)
    dut = Scheduler(built)
    got = {i: [] for i in range(len(streams))}
    lasts = []
    result = {}

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        stalls = Stalls(pattern, built)
        await ctx.tick().repeat(4)
        while ctx.get(dut.running):
            ready = not stalls.stalled()
            ctx.set(dut.grants.ready, ready)
            _, _, valid, grant = await ctx.tick().sample(dut.grants.valid, dut.grants.payload)
            if valid and ready:
                got[grant.stream].append(grant.seq)
                if grant.last:
                    lasts.append(grant.stream)
        result["late"] = ctx.get(dut.late)
        await ctx.tick().repeat(built)      # the host's copy of the counts: a sweep behind
        result["sent"] = []
        for i in range(len(streams)):
            ctx.set(dut.sent_select, i)
            await ctx.tick()
            result["sent"].append(ctx.get(dut.sent))

    simulate(dut, bench, background=[
        table(dut.stream_addr, dut.stream_row, rows),
        table(dut.segment_addr, dut.segment_row, segments)])
    assert result["late"] == 0
    for i, stream in enumerate(streams):
        assert got[i] == list(range(stream.count)), f"stream {i}"
    assert sorted(lasts) == list(range(len(streams)))
    assert result["sent"] == [s.count for s in streams]


def tracker_reference(records):
    """What the tracker keeps of `records` [(seq, latency, length)] of one stream."""
    latencies = [lat for _, lat, _ in records]
    seqs = [seq for seq, _, _ in records]
    counts = reference_sequence_counts(seqs)
    hist = {}
    for lat in latencies:
        hist[regmap.hist_bucket(lat)] = hist.get(regmap.hist_bucket(lat), 0) + 1
    return {"rx_packets": len(records), "rx_bytes": sum(n for _, _, n in records),
            "latency_min": min(latencies), "latency_max": max(latencies),
            "latency_sum": sum(latencies), "latency_sumsq": sum(x * x for x in latencies),
            **counts}, hist


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_tracker_keeps_exact_statistics_of_records_that_come_at_random(pattern):
    draws = random.Random(hash(pattern) % 1000)
    dut = Tracker(streams=4)
    records, order = {s: [] for s in range(4)}, []     # per stream; all, in arrival order
    for _ in range(160):
        stream = draws.randrange(4)
        base = len(records[stream])
        seq = max(0, base + draws.choice([0, 0, 0, 1, 3, -2, -5]))     # loss, late, dups
        record = (seq, draws.choice([8, 40, 300, 5000, 123_456]), draws.randrange(64, 1519))
        records[stream].append(record)
        order.append((stream, record))
    stats, hist = {}, {}

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.tick().until(~dut.busy)
        stalls = Stalls(pattern, 7)
        for stream, (seq, latency, length) in order:
            while stalls.stalled():
                await ctx.tick()
            await ctx.tick().until(dut.ready)
            ctx.set(dut.record, {"stream": stream, "flags": 0, "length": length, "seq": seq,
                                 "tx_ns": 1_000_000, "rx_ns": 1_000_000 + latency})
            ctx.set(dut.record_valid, 1)
            await ctx.tick()
            ctx.set(dut.record_valid, 0)
        await ctx.tick().repeat(20)
        for stream in records:
            ctx.set(dut.stats_select, stream)
            await ctx.tick().repeat(2)
            stats[stream] = {name: ctx.get(getattr(dut.stats, name))
                             for name, _ in regmap.STATS_FIELDS}
            for bucket in {regmap.hist_bucket(lat) for _, lat, _ in records[stream]} | {0}:
                ctx.set(dut.hist_select, stream * regmap.HIST_BUCKETS + bucket)
                await ctx.tick().repeat(regmap.HIST_COUNT_CYCLES)
                hist[stream, bucket] = ctx.get(dut.hist_count)

    simulate(dut, bench, clock_s=16e-9)
    for stream, mine in records.items():
        expected, buckets = tracker_reference(mine)
        for name, value in expected.items():
            assert stats[stream][name] == value, (stream, name)
        for (s, bucket), count in hist.items():
            if s == stream:
                assert count == buckets.get(bucket, 0), (stream, bucket)


def profile_reference(segments, loop, visits):
    """The rate the profile engine hands a stream at each of its first `visits` ticks
    (`compile_profile`'s segments: the start rate, plus the slope each tick after, for
    `ticks` ticks), and the visit at which it ends (None: it does not)."""
    frac, rates, index = regmap.RATE_FRAC_BITS, [], 0
    rate, left = segments[0].rate << frac, segments[0].ticks
    for visit in range(visits):
        if visit:
            if left == 1:
                if index == len(segments) - 1 and not loop:
                    return rates, visit
                index = (index + 1) % len(segments)
                rate, left = segments[index].rate << frac, segments[index].ticks
            else:
                rate += segments[index].slope
                left -= left != 0
        rates.append(rate >> frac)
    return rates, None


@pytest.mark.parametrize("built", [regmap.MAX_STREAMS, 8])
def test_profile_engine_hands_each_stream_its_profile_tick_by_tick(built):
    from fractions import Fraction

    from wirestamp.hdl.gen.profile import ProfileEngine
    from wirestamp.rates import Constant, Ramp, Segments, compile_profile
    tick = Fraction(regmap.TICK_CYCLES, regmap.CLOCK_HZ)          # seconds
    streams = [
        Stream("10.0.0.1", rate=Ramp(0, 90_000, 6 * tick)),
        Stream("10.0.0.4", rate=Constant(40_000)),                      # forever
        Stream("10.0.0.2", rate=Segments([(10_000, 10_000, 3 * tick), (50_000, 20_000, 4 * tick),
                                          (70_000, 70_000, 2 * tick)])),
        Stream("10.0.0.3", rate=Segments([(30_000, 60_000, 3 * tick), (60_000, 30_000, 3 * tick)],
                                         loop=True)),
    ]
    rows, segments = tables(streams, built)
    dut = ProfileEngine(built)
    visits, seen = 24, {}

    async def bench(ctx):
        await ctx.tick().repeat(2)          # the tables answer (they hold still from here)
        ctx.set(dut.start, 1)               # (visits from before it may still come out)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(regmap.TICK_CYCLES * (visits + 2)):
            _, _, onehot, arm, rate, end = await ctx.tick().sample(
                dut.slot_onehot, dut.arm_onehot, dut.rate, dut.end)
            for slot in range(regmap.TICK_CYCLES):     # from each slot's arming on
                if onehot >> slot & 1 and (slot in seen or arm >> slot & 1):
                    got = seen.setdefault(slot, {"rates": [], "armed": 0, "end": None})
                    got["armed"] += arm >> slot & 1
                    if slot < built and end and got["end"] is None:
                        got["end"] = len(got["rates"])
                    if got["end"] is None:
                        got["rates"].append(rate)

    simulate(dut, bench, background=[
        table(dut.stream_addr, dut.stream_row, rows),
        table(dut.segment_addr, dut.segment_row, segments)])
    for i, stream in enumerate(streams):
        _, hw = compile_profile(stream.profile)
        rates, ends = profile_reference(hw, stream.profile.loop, visits)
        assert seen[i]["rates"][:len(rates)] == rates, f"stream {i}"
        assert seen[i]["end"] == ends and seen[i]["armed"] == 1, f"stream {i}"
    for slot in range(len(streams), regmap.TICK_CYCLES):     # no profile, or no stream at all
        assert seen.get(slot, {"armed": 0})["armed"] == (slot < built), f"slot {slot}"


UNIT_MAC, UNIT_IP, PEER_MAC = 0x02_77_73_00_00_01, 0xC0A80002, "02:00:00:00:00:09"


def run_responder(requests, pattern, seed, after, hold, stall_before=None):
    """`requests` (frames without FCS, each an ICMP echo request or an ARP request for the
    unit) into the responder as MacRx and the parser hand them over; its replies taken by a
    sink that stalls by `pattern` (before a reply's byte `stall_before` only, when given),
    pausing `hold` cycles after each reply's first `after` bytes. Returns the replies'
    bytes."""
    from wirestamp.hdl.net.headers import UDPFrameHead
    from wirestamp.hdl.rx.responder import Responder
    dut = Responder()
    replies = []

    async def receive(ctx):
        ctx.set(dut.unit_mac, UNIT_MAC)
        ctx.set(dut.unit_ip, UNIT_IP)
        for frame in requests:
            ctx.set(dut.frame.start, 1)
            await ctx.tick()
            ctx.set(dut.frame.start, 0)
            for index, byte in enumerate(frame):
                ctx.set(dut.frame.byte_valid, 1)
                ctx.set(dut.frame.byte, byte)
                ctx.set(dut.frame.index, index)
                await ctx.tick()
            ctx.set(dut.frame.byte_valid, 0)
            head = frame[:UDPFrameHead.size // 8].ljust(UDPFrameHead.size // 8, b"\0")
            ctx.set(dut.head, int.from_bytes(head, "little"))
            ctx.set(dut.frame_length, len(frame) + 4)
            await ctx.tick().repeat(3)              # the parser decides
            verdict = dut.arp_request if frame[12:14] == b"\x08\x06" else dut.icmp_echo
            ctx.set(verdict, 1)
            await ctx.tick()
            ctx.set(verdict, 0)
            count = len(replies)
            while len(replies) == count:            # one at a time: nothing is dropped
                await ctx.tick()

    async def sink(ctx):
        stalls, reply, held = Stalls(pattern, seed), bytearray(), 0
        while len(replies) < len(requests):
            waiting = held and len(reply) >= after
            stalling = stall_before is None or len(reply) < stall_before
            ready = not (stalling and stalls.stalled()) and not waiting
            held = max(0, held - waiting)
            ctx.set(dut.frames.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.frames.valid, dut.frames.payload)
            if valid and ready:
                if not reply:
                    held = hold
                reply.append(payload.data)
                if payload.last:
                    replies.append(bytes(reply))
                    reply = bytearray()

    simulate(dut, receive, sink)
    return replies


def echo_request(size, seed):
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether
    body = random.Random(seed).randbytes(size)
    return bytes(Ether(dst="02:77:73:00:00:01", src=PEER_MAC) /
                 IP(src="192.168.0.9", dst="192.168.0.2", id=seed, ttl=33) /
                 ICMP(type=8, id=0x1234, seq=seed) / body)


def check_reply(request, reply):
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import ARP, Ether
    from wirestamp.sim.wire import internet_checksum
    asked, got = Ether(request), Ether(reply)
    assert got.dst == asked.src and got.src == "02:77:73:00:00:01"
    if ARP in asked:
        assert got[ARP].op == 2 and got[ARP].psrc == "192.168.0.2"
        assert (got[ARP].hwdst, got[ARP].pdst) == (asked[ARP].hwsrc, asked[ARP].psrc)
        return
    assert len(reply) == len(request)
    assert (got[IP].src, got[IP].dst) == (asked[IP].dst, asked[IP].src)
    assert internet_checksum(bytes(got[IP])[:20]) == 0
    assert got[ICMP].type == 0 and internet_checksum(bytes(got[ICMP])) == 0
    assert bytes(got[ICMP].payload) == bytes(asked[ICMP].payload), "the echo's data"


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_responder_replies_are_right_when_paused_in_their_first_41_bytes(pattern):
    """ARP and echo replies, with stalls by `pattern` in a reply's first 41 bytes and the
    MAC's pause at its start, then none, as the MAC takes them: the invariant in
    `Responder`'s docstring, at its edge."""
    from scapy.layers.l2 import ARP, Ether
    arp = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC) /
                ARP(op=1, hwsrc=PEER_MAC, psrc="192.168.0.9", pdst="192.168.0.2")) + bytes(18)
    requests = [echo_request(18, 1), arp, echo_request(1000, 2), echo_request(1472, 3), arp]
    seed = sorted(PATTERNS).index(pattern)
    replies = run_responder(requests, pattern, seed, stall_before=41, **MAC_START)
    assert len(replies) == len(requests)
    for request, reply in zip(requests, replies):
        check_reply(request, reply)


def parser_frames(seed, streams):
    """Frames of every kind the parser sorts, shuffled, each with what it must become: its
    counter, the pulse it raises (or None) and, for a signature datagram, its record."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether
    from wirestamp.sim.wire import internet_checksum
    draws = random.Random(seed)
    unit, target, other = "192.168.0.2", "192.168.0.9", "192.168.0.77"
    eth = Ether(dst="02:77:73:00:00:01", src=PEER_MAC)

    def ip(**fields):
        return eth / IP(src=target, dst=unit, **fields)

    def signed(stream):
        seq, tx_ns, flags = draws.randrange(2**32), draws.randrange(2**64), draws.randrange(256)
        size = draws.choice([60, 60, 100, 300, 1514])
        frame = bytes(ip(flags="DF") / UDP(sport=5001, dport=5000) /
                      regmap.pack_signature(stream, seq, tx_ns, flags))
        frame += bytes(size - len(frame))
        return frame, {"stream": stream, "flags": flags, "length": size + 4, "seq": seq,
                       "tx_ns": tx_ns}

    def bad_checksum():
        frame = bytearray(bytes(ip() / UDP() / b"x"))
        frame[24] ^= 0x40
        return bytes(frame)

    def edited(at, value):
        """A small UDP frame with its bytes from `at` set to `value`, and its IPv4 header
        checksum made right again."""
        frame = bytearray(bytes(ip() / UDP() / b"x"))
        frame[at:at + len(value)], frame[24:26] = value, bytes(2)
        frame[24:26] = internet_checksum(bytes(frame[14:34])).to_bytes(2, "big")
        return bytes(frame)

    kinds = []
    for _ in range(3):
        for stream in (0, streams - 1, draws.randrange(streams)):
            frame, record = signed(stream)
            kinds.append((frame, "signed", None, record))
    kinds += [
        (signed(streams)[0], "foreign_udp", None, None),        # a stream not built
        (signed(255)[0], "foreign_udp", None, None),
        (bytes(ip() / UDP(sport=53, dport=53) / b"just a datagram"), "foreign_udp", None, None),
        (bytes(ip() / UDP() / regmap.pack_signature(0, 1)[:10]), "foreign_udp", None, None),
        (bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC) /
               ARP(op=1, hwsrc=PEER_MAC, psrc=target, pdst=unit)), "arp_rx", "arp_request", None),
        (bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC) /
               ARP(op=1, hwsrc=PEER_MAC, psrc=target, pdst=other)), "arp_rx", None, None),
        (bytes(eth / ARP(op=2, hwsrc=PEER_MAC, psrc=target, pdst=unit)),
         "arp_rx", "arp_answer", None),
        (bytes(eth / ARP(op=2, hwsrc=PEER_MAC, psrc=other, pdst=unit)), "arp_rx", None, None),
        (bytes(ip() / ICMP(type=8) / b"ping"), "icmp_rx", "icmp_echo", None),
        (bytes(eth / IP(src=target, dst=other) / ICMP(type=8)), "ip_other", None, None),
        (bytes(ip() / ICMP(type=0)), "ip_other", None, None),
        (bytes(ip() / TCP()), "ip_other", None, None),
        (bytes(ip(options=b"\x01\x01\x01\x01") / UDP()), "ip_other", None, None),     # IHL 6
        (bytes(ip(flags="MF") / UDP() / b"part"), "ip_other", None, None),
        (bytes(ip(frag=100) / UDP() / b"part"), "ip_other", None, None),
        (bad_checksum(), "ip_errors", None, None),
        (edited(14, b"\x65"), "ip_errors", None, None),                  # version 6
        (edited(16, (19).to_bytes(2, "big")), "ip_errors", None, None),  # total length 19
        (bytes(ip(len=400) / UDP() / b"cut short"), "ip_errors", None, None),
        (bytes(Ether(dst="02:77:73:00:00:01", src=PEER_MAC, type=0x86DD) / bytes(50)),
         "other", None, None),
    ]
    kinds = [(frame + bytes(max(0, 60 - len(frame))), counter, pulse, record)
             for frame, counter, pulse, record in kinds]
    kinds += [(frame, None, None, None) for frame, *_ in kinds[:4]]     # the MAC says bad
    draws.shuffle(kinds)
    return kinds


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_parser_sorts_every_good_frame_into_one_place_whatever_its_byte_gaps(pattern):
    """Frames of every kind, byte by byte as MacRx hands them on (gaps between bytes by
    `pattern`, as a slower receive clock leaves them; `done` a cycle or more after the FCS;
    the MAC's shortest gap between frames): each good frame is counted in exactly its
    counter, raises exactly its pulse, with `head` holding it, and each signature datagram
    of a stream this build carries makes its record, every field exact. Frames the MAC
    calls bad are counted nowhere."""
    from wirestamp.hdl.rx.parser import COUNTED, Parser
    streams, seed = 8, sorted(PATTERNS).index(pattern)
    frames = parser_frames(seed, streams)
    dut = Parser(streams)
    stamps = random.Random(seed + 10)
    records, pulses, counts = [], [], {}

    async def feed(ctx):
        ctx.set(dut.unit_ip, 0xC0A80002)
        ctx.set(dut.arp_target, 0xC0A80009)
        stalls = Stalls(pattern, seed)
        for frame, counter, _, record in frames:
            wire = frame + fcs(frame)
            stamp = stamps.randrange(2**64)
            if record is not None:
                record["rx_ns"] = stamp
            ctx.set(dut.frame.stamp, stamp)
            for index, byte in enumerate(wire):
                while stalls.stalled():
                    await ctx.tick()
                ctx.set(dut.frame.byte_valid, 1)
                ctx.set(dut.frame.byte, byte)
                ctx.set(dut.frame.index, index)
                await ctx.tick()
                ctx.set(dut.frame.byte_valid, 0)
            while stalls.stalled():
                await ctx.tick()
            ctx.set(dut.frame.done, 1)
            ctx.set(dut.frame.good, counter is not None)
            ctx.set(dut.frame.length, len(wire))
            await ctx.tick()
            ctx.set(dut.frame.done, 0)
            await ctx.tick().repeat(20)         # the inter-frame gap (12) and preamble (8)
        await ctx.tick().repeat(4)
        counts.update({name: ctx.get(getattr(dut, name)) for name in COUNTED})

    async def watch(ctx):
        async for _, _, valid, arp, answer, echo, record, head, mac in ctx.tick().sample(
                dut.record_valid, dut.arp_request, dut.arp_answer, dut.icmp_echo,
                dut.record, dut.head, dut.answer_mac):
            if valid:
                records.append({name: getattr(record, name) for name, _ in regmap.PACKET_FIELDS})
            for name, raised in (("arp_request", arp), ("arp_answer", answer),
                                 ("icmp_echo", echo)):
                if raised:
                    pulses.append((name, head, mac))

    simulate(dut, feed, background=[watch])
    expected = {name: sum(counter == name for _, counter, _, _ in frames) for name in COUNTED}
    assert counts == expected
    assert records == [record for *_, record in frames if record is not None]
    assert [name for name, _, _ in pulses] == [pulse for _, _, pulse, _ in frames if pulse]
    head_bytes = len(dut.head) // 8
    raised = [frame for frame, _, pulse, _ in frames if pulse]
    for (name, head, mac), frame in zip(pulses, raised):
        assert head == int.from_bytes(frame[:head_bytes], "little"), name
        if name == "arp_answer":
            assert mac == int(PEER_MAC.replace(":", ""), 16)
