"""16-byte records (`regmap.RECORD_FIELDS`): the gateware's record FIFO (`hdl/rx/records.py`)
puts epoch marks where the RX stamps' high bits change and after a resync, clips and flags a
latency outside 32 bits, counts every record the full FIFO cannot take (a lost mark takes
its record with it); the host's `RecordDecoder` unrolls them into whole stamps, across reads."""
import numpy as np

from wirestamp import regmap
from wirestamp.hdl.rx.records import DEPTH, RecordFifo
from wirestamp.records import RECORD_DTYPE, WIRE_DTYPE, RecordDecoder, encode_records

from helpers import simulate

EPOCH = 1 << 32


def packets(rx_list, latency=1000):
    rows = np.zeros(len(rx_list), dtype=RECORD_DTYPE)
    rows["stream"], rows["length"], rows["seq"] = 2, 64, np.arange(len(rx_list))
    rows["rx_ns"] = rx_list
    rows["tx_ns"] = rows["rx_ns"] - np.uint64(latency)
    return rows


def run_fifo(rows, resync_before=(), read=True, clips=()):
    """Push `rows` through RecordFifo 50 cycles apart; returns (wire bytes read, overflow)."""
    dut = RecordFifo()
    out = []

    async def bench(ctx):
        ctx.set(dut.sample, 1)
        ctx.set(dut.records.ready, int(read))
        await ctx.tick().repeat(2)                      # RECORD_SAMPLE is registered
        for i, row in enumerate(rows):
            if i in resync_before:
                ctx.set(dut.resync, 1)
                await ctx.tick()
                ctx.set(dut.resync, 0)
            tx = int(row["tx_ns"]) if i not in clips else int(row["rx_ns"]) + 5   # future
            ctx.set(dut.record, {"stream": int(row["stream"]), "flags": int(row["flags"]) | 0x20,
                                 "length": int(row["length"]), "seq": int(row["seq"]),
                                 "tx_ns": tx, "rx_ns": int(row["rx_ns"])})
            ctx.set(dut.record_valid, 1)
            await ctx.tick()
            ctx.set(dut.record_valid, 0)
            await ctx.tick().repeat(49)
        await ctx.tick().repeat(10)
        out.append(ctx.get(dut.overflow))

    async def reader(ctx):
        async for _, _, valid, ready, payload in ctx.tick().sample(
                dut.records.valid, dut.records.ready, dut.records.payload):
            if valid and ready:
                out.append(payload.as_value().value.to_bytes(16, "little"))

    simulate(dut, bench, background=[reader], clock_s=16e-9)
    return b"".join(out[:-1]), out[-1]


def test_epoch_marks_clipping_and_resync_decode_to_whole_stamps():
    rx = [3 * EPOCH - 2000, 3 * EPOCH - 1000, 3 * EPOCH + 5, 3 * EPOCH + 900, 5 * EPOCH + 1]
    rows = packets(rx)
    wire, overflow = run_fifo(rows, resync_before={3}, clips={4})
    entries = np.frombuffer(wire, dtype=WIRE_DTYPE)
    marks = entries[(entries["flags"] & regmap.RECORD_EPOCH) != 0]
    # First record, epoch change, resync, epoch change: four marks, each with its high bits.
    assert list(marks["seq"]) == [2, 3, 3, 5] and overflow == 0
    decoded = RecordDecoder().decode(wire)
    assert list(decoded["rx_ns"]) == rx
    assert list(decoded["tx_ns"][:4]) == [r - 1000 for r in rx[:4]]
    assert decoded["tx_ns"][4] == 0 and decoded["flags"][4] == regmap.RECORD_CLIPPED
    assert list(decoded["flags"][:4]) == [0] * 4        # the packet's own bits past 0 dropped


def test_a_clipped_records_unknown_stamp_is_null_in_the_file(tmp_path):
    import pyarrow.parquet as pq
    from wirestamp.records import RecordWriter, SequenceExtender
    from wirestamp.run import ingest
    rows = packets([EPOCH + 100, EPOCH + 900, EPOCH + 5000])
    rows["tx_ns"][1] = rows["rx_ns"][1] + 5              # from the future: clipped
    decoded = RecordDecoder().decode(encode_records(rows))
    with RecordWriter(tmp_path / "r.parquet") as writer:
        assert ingest(decoded, 3, SequenceExtender(), writer) == (3, 0)
    table = pq.read_table(tmp_path / "r.parquet").to_pydict()
    assert table["latency_ns"] == [1000, None, 1000]
    assert table["tx_ns"] == [EPOCH - 900, None, EPOCH + 4000]
    assert table["rx_ns"] == [EPOCH + 100, EPOCH + 900, EPOCH + 5000]


def test_the_encoder_matches_the_gateware():
    rx = [EPOCH + 10, EPOCH + 700, 2 * EPOCH + 3]
    rows = packets(rx, latency=512)
    wire, _ = run_fifo(rows)
    assert wire == encode_records(rows)


def test_a_full_fifo_counts_every_record_and_a_lost_mark_takes_its_record():
    # Nobody reads: DEPTH entries fit (a mark and DEPTH − 1 records), then every further
    # record is lost; one of them needed a mark (the epoch changed), and was lost with it.
    n = DEPTH + 20
    rx = [EPOCH + 672 * i for i in range(n - 10)] + [2 * EPOCH + 672 * i for i in range(10)]
    wire, overflow = run_fifo(packets(rx), read=False)
    assert wire == b"" and overflow == n - (DEPTH - 1)


def test_decoder_across_reads_and_before_the_first_mark():
    rows = packets([7 * EPOCH + 100 * i for i in range(10)])
    wire = encode_records(rows)
    decoder = RecordDecoder()
    split = np.concatenate([decoder.decode(wire[:16 * 4]), decoder.decode(wire[16 * 4:])])
    assert (split == rows).all() and decoder.undecodable == 0
    late = RecordDecoder()                      # started after the mark went by
    assert len(late.decode(wire[16:])) == 0 and late.undecodable == 10
    assert len(late.decode(encode_records(rows[:3]))) == 3
