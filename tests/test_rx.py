"""The receive path of the whole core in Verilator: frames built with scapy go in through
cocotbext-eth's GmiiSource (or TX is cabled back to RX), and the counters, statistics,
histograms and records come out through the register bus."""
import random

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

from wirestamp import regmap
from wirestamp.sim.runner import run_bench
from wirestamp.sim.wire import internet_checksum
from wirestamp.streams import Stream, compile_streams

UNIT_MAC = "02:77:73:00:00:01"
UNIT_IP = "192.168.0.2"
COUNTERS = ["RX_FRAMES", "RX_BYTES", "RX_FCS_ERRORS", "RX_ERRORS", "RX_RUNTS", "RX_GIANTS",
            "RX_PREAMBLE_ERRORS", "RX_OTHER", "RX_IP_ERRORS", "RX_IP_OTHER", "RX_FOREIGN_UDP",
            "RX_SIGNED", "ARP_RX", "ARP_TX", "ICMP_RX", "ICMP_TX", "REPLY_DROPPED"]


def signed_frame(seq, stream=0, tx_ns=0, size=64, flags=0):
    signature = regmap.pack_signature(stream, seq, tx_ns, flags)
    packet = Ether(dst=UNIT_MAC, src="02:00:00:00:00:09") / \
        IP(src="10.0.0.1", dst=UNIT_IP, flags="DF") / UDP(sport=5001, dport=5000) / signature
    return bytes(packet) + bytes(size - 4 - len(packet))


def spec(frame, **extra):
    return {"data": bytes(frame).hex(), **extra}


def exchange(**params):
    params.setdefault("registers", COUNTERS)
    return run_bench("exchange", params)


def counters_except(registers, **expected):
    """All counters zero except those named (RX_FRAMES and RX_BYTES are left out)."""
    for name in COUNTERS[2:]:
        assert registers[name] == expected.get(name, 0), name


@pytest.mark.parametrize("cable", [1, 7, 100])
def test_loopback_latency_is_the_cable(cable):
    # Line rate, 64-byte frames, looped back through `cable` cycles: every latency is the
    # cable's, exactly (so a zero-length cable would read 0 ns).
    writes = compile_streams([Stream("10.0.0.1", rate="line", count=100)])
    result = exchange(writes=writes, start=True, loopback_cycles=cable, run_us=75,
                      stats=[0], records=100, hist=[[0, regmap.hist_bucket(cable * 8)]])
    stats = result["stats"]["0"]
    assert stats["rx_packets"] == 100 and stats["rx_bytes"] == 6400
    assert stats["latency_min"] == stats["latency_max"] == cable * 8
    assert stats["latency_sum"] == 100 * cable * 8
    assert stats["latency_sumsq"] == 100 * (cable * 8) ** 2
    assert (stats["lost"], stats["reordered"], stats["duplicates"]) == (0, 0, 0)
    assert result["hist"] == [100]
    records = result["records"]
    assert [r["seq"] for r in records] == list(range(100))
    assert all(r["rx_ns"] - r["tx_ns"] == cable * 8 and r["length"] == 64 for r in records)
    assert {b["rx_ns"] - a["rx_ns"] for a, b in zip(records, records[1:])} == {672}
    registers = result["registers"]
    assert registers["RX_FRAMES"] == registers["RX_SIGNED"] == 100
    counters_except(registers, RX_SIGNED=100)


def test_signature_frames_at_line_rate_on_a_drifting_clock():
    # The link partner's clock is 250 ppm slow: every frame still lands, each one stamped.
    frames = [spec(signed_frame(seq, stream=3, tx_ns=seq)) for seq in range(300)]
    result = exchange(frames=frames, start=True, run_us=210, rx_period_ps=8002, stats=[3],
                      records=300)
    assert result["registers"]["RX_SIGNED"] == 300
    assert result["stats"]["3"]["rx_packets"] == 300
    records = result["records"]
    assert [r["seq"] for r in records] == list(range(300))
    gaps = {b["rx_ns"] - a["rx_ns"] for a, b in zip(records, records[1:])}
    assert gaps <= {672, 680}, "one frame every 84 byte times of the slower clock"


def test_bad_frames_land_in_their_counters_and_leave_records_alone():
    good = signed_frame
    ip_bad = bytearray(good(1))
    ip_bad[24] ^= 0xFF                                 # IPv4 header checksum
    options = Ether(dst=UNIT_MAC) / IP(dst=UNIT_IP, options=b"\x01\x01\x01\x00") / UDP() / (b"x" * 20)
    fragment = Ether(dst=UNIT_MAC) / IP(dst=UNIT_IP, flags="MF") / UDP() / (b"x" * 20)
    frames = [
        spec(good(0)),
        spec(good(1) + b"\0\0\0\0", raw=True),         # FCS wrong (four zero bytes)
        spec(good(1), errors=[30]),                    # rx_er in the middle
        spec(bytes(good(1))[:50], min_len=0),          # runt: 54 bytes with FCS
        spec(bytes(good(1)) + bytes(1500)),            # giant: 1568 bytes
        spec(bytes(ip_bad)),
        spec(Ether(dst=UNIT_MAC, type=0x88B5) / (b"\0" * 50)),   # other ethertype
        spec(Ether(dst=UNIT_MAC) / IP(dst=UNIT_IP) / UDP(dport=53) / (b"\0" * 30)),  # foreign
        spec(good(1, stream=regmap.MAX_STREAMS)),     # a stream no image carries: foreign
        spec(options), spec(fragment),
        spec(good(1), preamble="555555555555aad5"),   # no SFD in place
        spec(good(1)),
    ]
    result = exchange(frames=frames, start=True, run_us=30, stats=[0], records=3)
    registers = result["registers"]
    counters_except(registers, RX_FCS_ERRORS=1, RX_ERRORS=1, RX_RUNTS=1, RX_GIANTS=1,
                    RX_IP_ERRORS=1, RX_OTHER=1, RX_FOREIGN_UDP=2, RX_IP_OTHER=2,
                    RX_PREAMBLE_ERRORS=1, RX_SIGNED=2)
    assert registers["RX_FRAMES"] == 8
    assert [r["seq"] for r in result["records"][:2]] == [0, 1]
    assert result["records"][2]["length"] == 0, "nothing else was recorded"
    stats = result["stats"]["0"]
    assert (stats["rx_packets"], stats["lost"], stats["next_seq"]) == (2, 0, 2)


def reference_sequence_counts(seqs, window=regmap.SEQ_WINDOW):
    """The algorithm of docs/receive.md, in Python."""
    next_seq, lost, reordered, duplicates, seen = 0, 0, 0, 0, set()
    for s in seqs:
        if s >= next_seq:
            lost += s - next_seq
            next_seq = s + 1
            seen.add(s)
        elif next_seq - s <= window and s in seen:
            duplicates += 1
        else:
            reordered += 1
            lost -= 1
            if next_seq - s <= window:
                seen.add(s)
    return {"lost": lost, "reordered": reordered, "duplicates": duplicates,
            "next_seq": next_seq}


def test_loss_reorder_and_duplicates_are_counted_exactly():
    rng = random.Random(1)
    seqs = []
    for s in range(400):
        if rng.random() < 0.1:
            continue                          # lost
        seqs.append(s)
        if rng.random() < 0.05:
            seqs.append(s)                    # duplicated
    for _ in range(30):                       # reorder: swap neighbours
        i = rng.randrange(len(seqs) - 3)
        seqs[i], seqs[i + 2] = seqs[i + 2], seqs[i]
    seqs += [5, 399, 3]                       # old duplicates, and one far too late
    expected = reference_sequence_counts(seqs)
    assert expected["lost"] > 10 and expected["reordered"] > 10 and expected["duplicates"] > 10
    frames = [spec(signed_frame(s, stream=1)) for s in seqs]
    result = exchange(frames=frames, start=True, run_us=300, stats=[1])
    stats = result["stats"]["1"]
    assert {k: stats[k] for k in expected} == expected
    assert stats["rx_packets"] == len(seqs)


def test_histogram_counts_land_in_the_reference_buckets():
    frames, records = [], 40
    rng = random.Random(3)
    tx = [rng.randrange(0, 60_000) for _ in range(records)]
    frames = [spec(signed_frame(i, stream=2, tx_ns=t)) for i, t in enumerate(tx)]
    first = exchange(frames=frames, start=True, run_us=35, records=records)
    buckets = [regmap.hist_bucket(r["rx_ns"] - r["tx_ns"]) for r in first["records"]]
    wanted = sorted(set(buckets)) + [regmap.HIST_OVERFLOW]
    # Same frames again on a fresh core, now reading the buckets (the run is deterministic).
    second = exchange(frames=frames, start=True, run_us=35, hist=[[2, b] for b in wanted],
                      records=records)
    assert [r["rx_ns"] for r in second["records"]] == [r["rx_ns"] for r in first["records"]]
    assert second["hist"] == [buckets.count(b) for b in wanted]
    # The jitter rows against the reference over the records' latencies, in arrival order.
    third = exchange(frames=frames, start=True, run_us=35, stats=[2], records=records)
    from test_jitter import reference
    assert third["jitter"]["2"] == reference([r["rx_ns"] - r["tx_ns"]
                                              for r in third["records"]])


def test_arp_request_gets_a_correct_reply():
    request = Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:09") / \
        ARP(op=1, hwsrc="02:00:00:00:00:09", psrc="192.168.0.9", pdst=UNIT_IP)
    other = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="192.168.0.9", pdst="192.168.0.77")
    result = exchange(frames=[spec(request), spec(other)], run_us=5)
    (reply,) = result["sent"]
    packet = Ether(bytes.fromhex(reply["data"])[:-4])
    assert packet.dst == "02:00:00:00:00:09" and packet.src == UNIT_MAC
    arp = packet[ARP]
    assert (arp.op, arp.hwsrc, arp.psrc) == (2, UNIT_MAC, UNIT_IP)
    assert (arp.hwdst, arp.pdst) == ("02:00:00:00:00:09", "192.168.0.9")
    assert result["registers"]["ARP_RX"] == 2 and result["registers"]["ARP_TX"] == 1


@pytest.mark.parametrize("payload", [b"", b"ping" * 10, bytes(range(256)) * 5])
def test_icmp_echo_gets_a_correct_reply(payload):
    request = Ether(dst=UNIT_MAC, src="02:00:00:00:00:09") / \
        IP(src="192.168.0.9", dst=UNIT_IP, ttl=9) / ICMP(type=8, id=77, seq=5) / payload
    result = exchange(frames=[spec(request)], run_us=30)
    (reply,) = result["sent"]
    raw = bytes.fromhex(reply["data"])[:-4]
    packet = Ether(raw)
    assert packet.dst == "02:00:00:00:00:09" and packet.src == UNIT_MAC
    ip = packet[IP]
    assert (ip.src, ip.dst) == (UNIT_IP, "192.168.0.9")
    assert internet_checksum(bytes(ip)[:20]) == 0
    icmp = packet[ICMP]
    assert (icmp.type, icmp.code, icmp.id, icmp.seq) == (0, 0, 77, 5)
    assert internet_checksum(bytes(icmp)[:ip.len - 20]) == 0, "ICMP checksum"
    assert bytes(icmp.payload)[:len(payload)] == payload
    assert result["registers"]["ICMP_RX"] == 1 and result["registers"]["ICMP_TX"] == 1


def test_arp_resolves_a_destination_mac():
    target = regmap.register("ARP_TARGET").addr
    control = regmap.register("ARP_CONTROL").addr
    answer = Ether(dst=UNIT_MAC, src="02:00:00:00:00:42") / \
        ARP(op=2, hwsrc="02:00:00:00:00:42", psrc="192.168.0.42", hwdst=UNIT_MAC, pdst=UNIT_IP)
    result = exchange(writes=[[target, 0xC0A8002A], [control, 1]], frames=[spec(answer)],
                      run_us=5, registers=["ARP_RESULT", "ARP_TX"])
    (query,) = result["sent"]
    arp = Ether(bytes.fromhex(query["data"])[:-4])[ARP]
    assert (arp.op, arp.pdst, arp.psrc, arp.hwsrc) == (1, "192.168.0.42", UNIT_IP, UNIT_MAC)
    assert result["registers"]["ARP_RESULT"] == 1 << 48 | 0x020000000042


def test_a_reply_delays_generated_frames_by_at_most_its_own_length():
    # A stream of 64-byte frames at 1 Mpps (one every 1000 ns, the line 67% busy); a 64-byte
    # ICMP echo comes in and is answered. The frame the reply overtakes leaves later, by less
    # than the reply's 672 ns, and may push the next one a little; then the stream is back on
    # its schedule: the scheduler never stopped counting.
    writes = compile_streams([Stream("10.0.0.1", rate=1_000_000, count=60)])
    request = Ether(dst=UNIT_MAC, src="02:00:00:00:00:09") / \
        IP(src="192.168.0.9", dst=UNIT_IP) / ICMP(type=8) / (b"z" * 18)
    result = exchange(writes=writes, start=True, frames=[spec(request)], run_us=80)
    generated = [f for f in result["sent"] if bytes.fromhex(f["data"])[12:14] == b"\x08\x00"
                 and bytes.fromhex(f["data"])[23] == 17]
    assert len(generated) == 60 and len(result["sent"]) == 61
    start = generated[0]["sfd_ns"]
    moved = [f["sfd_ns"] - start - k * 1000 for k, f in enumerate(generated)
             if f["sfd_ns"] - start != k * 1000]
    assert 1 <= len(moved) <= 2 and all(0 < d < 672 for d in moved)
    assert moved[1:] <= [moved[0] - (1000 - 672)]
    for frame in generated:
        assert int(frame["data"][104:120], 16) == frame["sfd_ns"], "stamps stay exact"


def test_record_sampling_and_overflow_are_counted():
    sample = regmap.register("RECORD_SAMPLE").addr
    frames = [spec(signed_frame(s)) for s in range(30)]
    result = exchange(writes=[[sample, 3]], frames=frames, start=True, run_us=25, records=11,
                      registers=["RECORD_LEVEL", "RECORD_OVERFLOW", "RX_SIGNED"])
    # 10 records, and the epoch mark before the run's first (hdl/rx/records.py).
    assert result["registers"]["RECORD_LEVEL"] == 11 and result["registers"]["RX_SIGNED"] == 30
    assert [r["seq"] for r in result["records"]] == list(range(2, 30, 3)) + [0]
    # Nobody reads: the FIFO (512: the mark and 511 records) fills and the rest is counted,
    # not lost silently.
    frames = [spec(signed_frame(s)) for s in range(520)]
    result = exchange(frames=frames, start=True, run_us=360,
                      registers=["RECORD_LEVEL", "RECORD_OVERFLOW"])
    assert result["registers"] == {"RECORD_LEVEL": 512, "RECORD_OVERFLOW": 9}


def test_bad_frames_at_line_rate_mixed_with_a_stream():
    """Every kind of bad frame, back to back at line rate among a stream's datagrams: each is
    counted where it belongs, and the stream's statistics and records stay exact (each
    record's RX stamp is where its frame starts on the wire: the wire time of everything
    before it)."""
    good = signed_frame
    checksum = bytearray(good(0))
    checksum[24] ^= 0xFF
    bad = {       # kind: (spec, the counter it lands in)
        "fcs": (spec(good(0) + b"\0\0\0\0", raw=True), "RX_FCS_ERRORS"),
        "rx_er": (spec(good(0), errors=[30]), "RX_ERRORS"),
        "runt": (spec(good(0)[:50], min_len=0), "RX_RUNTS"),
        "giant": (spec(good(0, size=1514) + bytes(60)), "RX_GIANTS"),
        "no_sfd": (spec(good(0), preamble="555555555555aad5"), "RX_PREAMBLE_ERRORS"),
        "ip_checksum": (spec(bytes(checksum)), "RX_IP_ERRORS"),
        "truncated": (spec(Ether(dst=UNIT_MAC) / IP(dst=UNIT_IP, len=400) / UDP() / bytes(20)),
                      "RX_IP_ERRORS"),         # the IP datagram claims more than the frame
        "ethertype": (spec(Ether(dst=UNIT_MAC, type=0x88B5) / bytes(50)), "RX_OTHER"),
        "ip_options": (spec(Ether(dst=UNIT_MAC) / IP(dst=UNIT_IP, options=b"\x01\x01\x01\x00")
                            / UDP() / bytes(20)), "RX_IP_OTHER"),
        "foreign_udp": (spec(Ether(dst=UNIT_MAC) / IP(dst=UNIT_IP) / UDP(dport=53) / bytes(30)),
                        "RX_FOREIGN_UDP"),
        "unknown_stream": (spec(good(0, stream=regmap.MAX_STREAMS)), "RX_FOREIGN_UDP"),
    }
    draws = random.Random(5)
    frames, expected, seq = [], {}, 0
    start = 0                               # the next frame's start on the wire (ns)
    for _ in range(320):
        if draws.random() < 0.5:
            kind = draws.choice(sorted(bad))
            frame, counter = bad[kind]
            expected[counter] = expected.get(counter, 0) + 1
        else:
            frame = spec(good(seq, stream=2, tx_ns=start, size=draws.choice([64, 100, 700])))
            seq += 1
        frames.append(frame)
        data = bytes.fromhex(frame["data"])
        length = len(data) if frame.get("raw") else max(len(data), frame.get("min_len", 60)) + 4
        start += (length + regmap.FRAME_OVERHEAD) * regmap.NS_PER_CYCLE
    result = exchange(frames=frames, start=True, run_us=start // 1000 + 20, stats=[2],
                      records=seq + 1)
    registers = result["registers"]
    counters_except(registers, RX_SIGNED=seq, **expected)
    assert len(expected) == 9 and seq > 100, "every counter had its kind"
    records = result["records"]
    assert [r["seq"] for r in records[:seq]] == list(range(seq))
    assert records[seq]["length"] == 0, "nothing else was recorded"
    # The stamps: latency = rx − tx with tx = the frame's start on the wire from the first, so
    # every latency is the same (the path's constant), and the gaps are the wire's.
    latencies = {r["rx_ns"] - r["tx_ns"] for r in records[:seq]}
    assert len(latencies) == 1
    stats = result["stats"]["2"]
    assert (stats["rx_packets"], stats["lost"], stats["reordered"], stats["duplicates"]) == \
        (seq, 0, 0, 0)
    assert stats["latency_min"] == stats["latency_max"] == latencies.pop()
    assert stats["rx_bytes"] == sum(r["length"] for r in records[:seq])
