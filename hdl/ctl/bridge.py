"""The control bridge: the wire protocol of `wirestamp.protocol` (SLIP framing, RFC 1055;
CRC-16/CCITT-FALSE) turned into register-bus reads and writes, and record streaming.

Bytes come in from the link (`rx`) and go out to it (`tx`); the UART, or the virtual board's
pipe, sits on the other side (with a FIFO in front of `rx`, since `rx` waits while a reply or a
records frame goes out). One request is handled at a time: it is unescaped into a frame buffer
while its CRC is checked; at END a good frame is executed and answered, a bad one is answered
with ERROR and changes nothing. A WRITE carrying the tag of the last WRITE executed for its
session (the byte after its data; a small memory holds each session's last tag, and whether
it has one) is acknowledged again without writing again, so a client may safely retry a
request whose reply it lost, and two clients' WRITEs are never taken for each other's
retries. Between requests, when streaming is on, waiting records go out in RECORDS frames.
"""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.crc.catalog import CRC16_CCITT_FALSE
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...protocol import (END, ESC, ESC_END, ESC_ESC, MAX_BODY, MAX_BURST, RECORD_BYTES,
                         RECORD_TAG, SESSIONS, ErrorCode, Op)
from ...regmap import RECORD_FIELDS
from ..buffer import SkidBuffer
from ..fanout import copies, load_in_shares
from .bank import RegisterBus

__all__ = ["Bridge", "FrameTx"]

RECORDS_PER_FRAME = 8
OutByte = data.StructLayout({"data": 8, "last": 1})
Record = data.StructLayout(dict(RECORD_FIELDS))


class FrameTx(wiring.Component):
    """Frame content in (`last` on its final byte); out: the content and its CRC-16
    (big-endian), SLIP-escaped, then END."""
    frame: In(stream.Signature(OutByte))
    tx: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = CRC16_CCITT_FALSE(8).create()
        byte = Signal(8)            # the raw byte being sent
        last = Signal()             # ... is the last content byte
        phase = Signal(2)           # 0 content, 1 CRC high byte, 2 CRC low byte
        first = Signal(init=1)
        # The CRC takes each content byte from `byte`, in its first cycle of SEND (not from
        # the input, which comes through the bridge's multiplexers).
        fresh, starts = Signal(), Signal()
        escaped = (byte == END) | (byte == ESC)
        with m.FSM():
            with m.State("TAKE"):
                m.d.comb += self.frame.ready.eq(1)
                with m.If(self.frame.valid):
                    m.d.sync += [byte.eq(self.frame.p.data), last.eq(self.frame.p.last),
                                 phase.eq(0), first.eq(0), fresh.eq(1), starts.eq(first)]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [crc.data.eq(byte), crc.valid.eq(fresh),
                             crc.start.eq(fresh & starts)]
                m.d.sync += fresh.eq(0)
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(Mux(escaped, ESC, byte))]
                with m.If(self.tx.ready):
                    m.next = "SEND_DONE"
                    with m.If(escaped):
                        m.next = "ESCAPE"
            with m.State("ESCAPE"):
                m.d.comb += [self.tx.valid.eq(1),
                             self.tx.payload.eq(Mux(byte == END, ESC_END, ESC_ESC))]
                with m.If(self.tx.ready):
                    m.next = "SEND_DONE"
            with m.State("SEND_DONE"):
                with m.If((phase == 0) & ~last):
                    m.next = "TAKE"
                with m.Elif(phase == 0):
                    m.d.sync += [byte.eq(crc.crc[8:]), phase.eq(1)]
                    m.next = "SEND"
                with m.Elif(phase == 1):
                    m.d.sync += [byte.eq(crc.crc[:8]), phase.eq(2)]
                    m.next = "SEND"
                with m.Else():
                    m.next = "END"
            with m.State("END"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(END)]
                with m.If(self.tx.ready):
                    m.d.sync += first.eq(1)
                    m.next = "TAKE"
        return m


class Bridge(wiring.Component):
    """With `streaming_port`, `streaming` says when RECORDS_START..RECORDS_STOP is on (a USB
    link's record endpoint follows it, and `records` stays idle). Only the USB unit asks for
    it: an unused port would still change the UART unit's netlist, and with it the 25F's
    placement (docs/timing.md, "Tries kept out of the code")."""

    def __init__(self, streaming_port=False):
        ports = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                 "bus": Out(RegisterBus()), "records": In(stream.Signature(Record)),
                 "errors": Out(32)}         # errors: requests refused (CRC, malformed, op)
        if streaming_port:
            ports["streaming"] = Out(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.frame_tx = frame_tx = FrameTx()
        wiring.connect(m, frame_tx.tx, wiring.flipped(self.tx))
        # Reply bytes go to the framer through a skid buffer: the byte chosen by this FSM's
        # state is stored, not steered through the framer's logic in the same cycle.
        m.submodules.out_buffer = out_buffer = SkidBuffer(OutByte)
        wiring.connect(m, out_buffer.o, frame_tx.frame)
        out = out_buffer.i
        m.submodules.crc = crc = CRC16_CCITT_FALSE(8).create()
        size = 4 + MAX_BODY
        m.submodules.buffer = buffer = Memory(shape=8, depth=1 << (size - 1).bit_length(),
                                              init=[])
        store, load = buffer.write_port(), buffer.read_port()

        length = Signal(range(size + 1))
        escaped, bad = Signal(), Signal()
        header = Signal(data.ArrayLayout(8, 5))     # tag, op, addr low, addr high, count
        tag, op = header[0], header[1]
        addr = Signal(16)           # the bus address of word `index`: a register, on the bus
        word = Signal(32)
        m.d.comb += [self.bus.addr.eq(addr), self.bus.w_data.eq(word)]
        count = Signal(range(MAX_BURST + 1))
        index = Signal(range(MAX_BURST + 1))
        byte_index = Signal(2)
        error_code = Signal(8)
        streaming = Signal()
        # Each session's last executed WRITE tag, with a bit that says it has one (all clear
        # at start). The session is the byte before the CRC, kept from the last three bytes.
        m.submodules.last_tags = last_tags = Memory(
            shape=data.StructLayout({"tag": 8, "valid": 1}), depth=SESSIONS, init=[])
        tag_write, tag_read = last_tags.write_port(), last_tags.read_port()
        tail = Signal(data.ArrayLayout(8, 3))       # the newest byte first
        session = tail[2]                           # at END: session, CRC high, CRC low
        wrote_before = Signal()
        if "streaming" in self.signature.members:
            m.d.comb += self.streaming.eq(streaming)
        records_left = Signal(range(RECORDS_PER_FRAME + 1))
        record = Signal(Record)
        record_byte = Signal(range(RECORD_BYTES))

        def emit(value, last=0):
            m.d.comb += [out.valid.eq(1), out.p.data.eq(value), out.p.last.eq(last)]

        def reply_header(name, tag_value, reply_op, then, last=False, then_set=()):
            """States `name`_TAG and `name`_OP: send the reply's tag and op, then go on (and
            set the flags `then_set`)."""
            with m.State(name + "_TAG"):
                emit(tag_value)
                with m.If(out.ready):
                    m.next = name + "_OP"
            with m.State(name + "_OP"):
                emit(reply_op, last)
                with m.If(out.ready):
                    m.d.sync += [flag.eq(1) for flag in then_set]
                    m.next = then

        # Receiving runs in registered steps, so no long path starts at the link's FIFO (a block
        # RAM, slow to its output) or ends there: the byte goes through a skid buffer (its
        # `ready` comes from a flip-flop), is unescaped (`u_*`, pulses), then stored and
        # checked by the FSM in RECEIVE.
        m.submodules.rx_buffer = rx_buffer = SkidBuffer(8)
        wiring.connect(m, wiring.flipped(self.rx), rx_buffer.i)
        received = rx_buffer.o
        in_valid, in_byte, take_in = received.valid, received.payload, received.ready
        u_data, u_end, u_bad, u_byte = Signal(), Signal(), Signal(), Signal(8)
        m.d.sync += [u_data.eq(0), u_end.eq(0), u_bad.eq(0)]
        with m.If(in_valid & take_in):
            with m.If(in_byte == END):
                m.d.sync += [escaped.eq(0), u_end.eq(1), u_bad.eq(escaped)]
            with m.Elif(escaped):
                m.d.sync += [escaped.eq(0), u_data.eq(1),
                             u_byte.eq(Mux(in_byte == ESC_END, END, ESC)),
                             u_bad.eq((in_byte != ESC_END) & (in_byte != ESC_ESC))]
            with m.Elif(in_byte == ESC):
                m.d.sync += escaped.eq(1)
            with m.Else():
                m.d.sync += [u_data.eq(1), u_byte.eq(in_byte)]

        with m.FSM():
            with m.State("RECEIVE"):
                idle = (length == 0) & ~escaped & ~in_valid & ~u_data & ~u_end
                with m.If(u_bad):
                    m.d.sync += bad.eq(1)
                with m.If(u_end):
                    with m.If(length != 0):
                        m.next = "MEASURE"
                with m.Elif(u_data):
                    m.d.comb += take_in.eq(1)
                    with m.If(length == size):
                        m.d.sync += bad.eq(1)
                    with m.Else():
                        m.d.comb += [store.addr.eq(length), store.data.eq(u_byte),
                                     store.en.eq(1), crc.data.eq(u_byte), crc.valid.eq(1),
                                     crc.start.eq(length == 0)]
                        m.d.sync += [length.eq(length + 1),
                                     tail.eq(Cat(u_byte, tail[0], tail[1]))]
                        with m.If(length < 5):
                            m.d.sync += header[length[:3]].eq(u_byte)
                with m.Elif(idle & streaming & self.records.valid):
                    m.d.sync += records_left.eq(RECORDS_PER_FRAME)
                    m.next = "RECORDS_TAG"
                with m.Else():
                    m.d.comb += take_in.eq(1)

            # The frame's tests, registered one by one (length counts tag, op, address, body
            # and CRC: a READ's body is the count, a WRITE's whole words and the session).
            corrupt, read_ok, write_ok = Signal(), Signal(), Signal()
            write_words = Signal(range(size))
            m.d.comb += tag_read.addr.eq(session)       # read in MEASURE, there in CHECK
            with m.State("MEASURE"):
                m.d.sync += [
                    corrupt.eq(bad | (length < 4) | ~crc.match_detected),
                    read_ok.eq((length == 7) & (header[4] >= 1) & (header[4] <= MAX_BURST)),
                    write_ok.eq((length >= 11) & (length[:2] == 3) &
                                (length <= 4 + 2 + 4 * MAX_BURST + 1)),
                    write_words.eq((length - 7) >> 2),
                ]
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += wrote_before.eq(tag_read.data.valid & (tag_read.data.tag == tag))
                m.d.sync += [length.eq(0), bad.eq(0), index.eq(0), byte_index.eq(0),
                             addr.eq(Cat(header[2], header[3])), count.eq(header[4])]
                with m.If(corrupt):
                    m.d.sync += error_code.eq(ErrorCode.CRC)
                    m.next = "ERROR_TAG"
                with m.Elif(op == Op.READ):
                    with m.If(read_ok):
                        m.next = "READ_TAG"
                    with m.Else():
                        m.d.sync += error_code.eq(ErrorCode.MALFORMED)
                        m.next = "ERROR_TAG"
                with m.Elif(op == Op.WRITE):
                    with m.If(write_ok):
                        m.d.sync += count.eq(write_words)
                        m.next = "WRITE_LOAD"
                    with m.Else():
                        m.d.sync += error_code.eq(ErrorCode.MALFORMED)
                        m.next = "ERROR_TAG"
                with m.Elif((op == Op.RECORDS_START) | (op == Op.RECORDS_STOP)):
                    m.d.sync += streaming.eq(op == Op.RECORDS_START)
                    m.next = "ACK_TAG"
                with m.Else():
                    m.d.sync += error_code.eq(ErrorCode.UNKNOWN_OP)
                    m.next = "ERROR_TAG"

            # READ: tag, READ_REPLY, then each word, little-endian.
            reply_header("READ", tag, Op.READ_REPLY, "READ_BUS")
            with m.State("READ_BUS"):
                m.d.comb += self.bus.r_en.eq(1)
                m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                with m.If(self.bus.r_valid):
                    m.d.sync += [word.eq(self.bus.r_data), byte_index.eq(0)]
                    m.next = "READ_SEND"
            with m.State("READ_SEND"):
                final = (index + 1 == count) & (byte_index == 3)
                emit(word.word_select(byte_index, 8), final)
                with m.If(out.ready):
                    m.d.sync += byte_index.eq(byte_index + 1)
                    with m.If(final):
                        m.next = "RECEIVE"
                    with m.Elif(byte_index == 3):
                        m.d.sync += [index.eq(index + 1), addr.eq(addr + 1)]
                        m.next = "READ_BUS"

            # WRITE: each word from the buffer (bytes 4 + 4i ...), unless this tag was done.
            with m.State("WRITE_LOAD"):
                with m.If(wrote_before):
                    m.next = "ACK_TAG"
                with m.Else():
                    m.d.comb += load.addr.eq(Cat(byte_index, index) + 4)
                    m.next = "WRITE_BYTE"
            with m.State("WRITE_BYTE"):
                # Shifted in at the top (little-endian: the first byte ends lowest), so the
                # buffer's block RAM output feeds flip-flops directly.
                m.d.sync += [word.eq(Cat(word[8:], load.data)), byte_index.eq(byte_index + 1)]
                m.next = "WRITE_LOAD"
                with m.If(byte_index == 3):
                    m.next = "WRITE_BUS"
            with m.State("WRITE_BUS"):
                m.d.comb += self.bus.w_en.eq(1)
                m.d.sync += [index.eq(index + 1), addr.eq(addr + 1)]
                with m.If(index + 1 == count):
                    m.d.comb += [tag_write.addr.eq(session), tag_write.en.eq(1),
                                 tag_write.data.tag.eq(tag), tag_write.data.valid.eq(1)]
                    m.next = "ACK_TAG"
                with m.Else():
                    m.next = "WRITE_LOAD"

            reply_header("ACK", tag, Op.WRITE_REPLY, "RECEIVE", last=True)

            reply_header("ERROR", tag, Op.ERROR, "ERROR_CODE")
            with m.State("ERROR_CODE"):
                emit(error_code, 1)
                with m.If(out.ready):
                    m.d.sync += self.errors.eq(self.errors + 1)
                    m.next = "RECEIVE"

            # RECORDS: up to RECORDS_PER_FRAME whole records (RECORD_BYTES each), little-endian.
            # The record goes out of a shift register, loaded and shifted in quarters under
            # copies of the flags that steer it.
            taking = copies(1, 4, "record_take")        # in RECORD_TAKE
            sending = copies(1, 4, "record_send")       # in RECORD_SEND
            reply_header("RECORDS", RECORD_TAG, Op.RECORDS, "RECORD_TAKE", then_set=taking)
            with m.State("RECORD_TAKE"):
                m.d.comb += self.records.ready.eq(1)
                m.d.sync += [record_byte.eq(0), records_left.eq(records_left - 1),
                             *(copy.eq(0) for copy in taking), *(copy.eq(1) for copy in sending)]
                m.next = "RECORD_SEND"
            with m.State("RECORD_SEND"):
                more = (records_left != 0) & self.records.valid
                final = (record_byte == RECORD_BYTES - 1) & ~more
                emit(record.as_value()[:8], final)
                with m.If(out.ready):
                    m.d.sync += record_byte.eq(record_byte + 1)
                    with m.If(final):
                        m.d.sync += [copy.eq(0) for copy in sending]
                        m.next = "RECEIVE"
                    with m.Elif(record_byte == RECORD_BYTES - 1):
                        m.d.sync += [*(copy.eq(0) for copy in sending),
                                     *(copy.eq(1) for copy in taking)]
                        m.next = "RECORD_TAKE"
        sent = [copy & out.ready for copy in sending]
        load_in_shares(m, record, [(taking, self.records.payload), (sent, record.as_value() >> 8)])
        return m
