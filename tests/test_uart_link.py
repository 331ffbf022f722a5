"""The whole unit driven through its UART by cocotbext-uart, with the host's protocol module:
register reads and writes, and corrupted or truncated frames that are answered with ERROR and
change nothing."""
from wirestamp import regmap
from wirestamp.protocol import END, Deframer, ErrorCode, Frame, Op, encode
from wirestamp.sim.runner import UNIT, run_bench


def talk(*chunks, **params):
    result = run_bench("uart_exchange", {"chunks": [bytes(c).hex() for c in chunks], **params},
                       module="wirestamp.sim.uart_bench", toplevel=UNIT)
    deframer = Deframer()
    return deframer.feed(bytes.fromhex(result["received"])), deframer.errors


def test_identify_and_write_through_the_uart():
    increment = regmap.register("TIME_INCREMENT").addr
    replies, errors = talk(encode(Frame.read(1, regmap.register("ID").addr, 4)),
                           encode(Frame.write(2, increment, [0x0800_0042])),
                           encode(Frame.read(3, increment)))
    assert errors == 0
    assert replies[0].words() == [regmap.ID, regmap.VERSION, regmap.register("CAPS").reset,
                                  regmap.CLOCK_HZ]
    assert replies[1] == Frame(2, Op.WRITE_REPLY)
    assert replies[2].words() == [0x0800_0042]


def test_corrupt_and_truncated_frames_change_nothing():
    increment = regmap.register("TIME_INCREMENT").addr
    write = bytearray(encode(Frame.write(5, increment, [0x0900_0000])))
    corrupt = bytes(write[:6]) + bytes([write[6] ^ 0x10]) + bytes(write[7:])
    truncated = bytes(write[:5])                        # the rest is lost on the line
    replies, _ = talk(corrupt, truncated, bytes([END]),
                      encode(Frame.read(6, increment)))
    errors = [r for r in replies if r.op == Op.ERROR]
    assert len(errors) == 2 and all(r.body == bytes([ErrorCode.CRC]) for r in errors)
    assert replies[-1] == Frame(6, Op.READ_REPLY, (8 << 24).to_bytes(4, "little"))
