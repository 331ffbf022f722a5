"""The stream count as a build option (`Core(streams=)`, CAPS): an 8-stream core, as the
Colorlight's image has it, in Verilator. Its streams run and measure exactly; the rows and
stream numbers it does not carry touch nothing; and the host refuses them before the unit
is touched."""
import dataclasses

import pytest

from wirestamp import regmap
from wirestamp.sim.runner import SMALL, run_bench
from wirestamp.streams import Stream, compile_streams
from test_rx import COUNTERS, counters_except, signed_frame, spec

STREAMS = 8


def exchange(**params):
    params.setdefault("registers", COUNTERS + ["CAPS", "STREAM_TX"])
    return run_bench("exchange", params, toplevel=SMALL)


def test_eight_streams_run_and_measure_and_row_nine_aliases_nothing():
    streams = [Stream(f"10.0.0.{i + 1}", rate=100_000 + 10_000 * i, count=10 + i,
                      frame_size=64 + i)
               for i in range(STREAMS)]
    writes = compile_streams(streams, rows=STREAMS)
    # Row 9 as a host that believed in 16 streams would write it: enabled, and row 1 of an
    # 8-row table if the write were not dropped.
    table = regmap.STREAM_TABLE
    row0 = table.unpack([v for a, v in writes if table.addr(0) <= a < table.addr(1)])
    row9 = {**row0, "dst_ip": 0x0A090909, "sizes": 1000, "count": 99}   # stream 0's profile
    writes += [(table.addr(9, w), v) for w, v in enumerate(table.pack(**row9))]
    last = STREAMS - 1
    result = exchange(writes=writes, start=True, loopback_cycles=5, run_us=130,
                      stats=list(range(STREAMS)),
                      hist=[[last, regmap.hist_bucket(40)]])
    registers = result["registers"]
    assert regmap.unpack_words(regmap.CAPS_FIELDS, [registers["CAPS"]]) == {
        "streams": STREAMS, "segments": regmap.SEGMENTS, "sizes": regmap.SIZES, "jitter": 1}
    assert registers["STREAM_TX"][:STREAMS] == [s.count for s in streams]
    sent = result["sent"]
    assert len(sent) == sum(s.count for s in streams), "nothing from row 9"
    assert all(len(bytes.fromhex(f["data"])) < 1000 for f in sent)
    for i, stream in enumerate(streams):
        stats, jitter = result["stats"][str(i)], result["jitter"][str(i)]
        assert stats["rx_packets"] == stream.count
        assert stats["rx_bytes"] == stream.count * stream.sizes[0]
        assert stats["latency_min"] == stats["latency_max"] == 40, "the 5-cycle cable"
        assert (stats["lost"], stats["reordered"], stats["duplicates"]) == (0, 0, 0)
        assert jitter["ipdv_pairs"] == stream.count - 1 and jitter["jitter_q4"] == 0
    assert result["hist"] == [streams[last].count], "the last stream's histogram"
    counters_except(registers, RX_SIGNED=sum(s.count for s in streams))


def test_a_stream_the_image_does_not_carry_is_foreign_udp():
    frames = [spec(signed_frame(seq, stream=3)) for seq in range(4)]
    frames += [spec(signed_frame(7, stream=STREAMS)),           # row 0 if it aliased
               spec(signed_frame(9, stream=STREAMS + 3)),       # row 3
               spec(signed_frame(9, stream=200))]
    result = exchange(frames=frames, start=True, run_us=20, stats=[0, 3])
    counters_except(result["registers"], RX_SIGNED=4, RX_FOREIGN_UDP=3)
    assert result["stats"]["0"]["rx_packets"] == 0
    stats = result["stats"]["3"]
    assert (stats["rx_packets"], stats["next_seq"], stats["lost"]) == (4, 4, 0)


def test_the_host_refuses_streams_the_unit_does_not_carry():
    """An 8-stream unit (CAPS), as the host sees it: more streams, or a stream beyond them,
    is one clear error before anything is written."""
    import wirestamp
    with wirestamp.open("sim://") as dev:
        dev._info = dataclasses.replace(dev.identify(), streams=STREAMS)
        writes = []
        write = dev.write
        dev.write = lambda addr, words: (writes.append(addr), write(addr, words))
        with pytest.raises(ValueError, match="9 given, the unit carries 8"):
            dev.configure([Stream("10.0.0.1", rate=10)] * (STREAMS + 1))
        assert writes == []
        for call in (dev.stream_stats, dev.histogram):
            with pytest.raises(ValueError, match=r"stream 8: the unit carries streams 0\.\.7"):
                call(STREAMS)
        dev.configure([Stream("10.0.0.1", rate=10)])
        table = regmap.STREAM_TABLE
        rows = {(a - table.base) // table.stride for a in writes
                if table.base <= a < table.base + table.rows * table.stride}
        assert rows == set(range(STREAMS)), "the rows the unit carries, and no others"
