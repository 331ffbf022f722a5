"""The unit's USB device (`hdl/ctl/usb.py`: LUNA's device with wirestamp's endpoints) in the
Amaranth simulator, driven by a host model at the UTMI interface (USB 2.0 chapter 8 packets:
tokens with CRC5, data with CRC16, handshakes). LUNA runs a UTMI bus with full-speed timing;
the packets and endpoints are those of High Speed. Covered: enumeration (descriptors of the
device, configuration and strings, SET_ADDRESS, SET_CONFIGURATION), a control-protocol
request and its reply through EP1 to the real bridge, records through EP2 in full 512-byte
packets while backlogged, a NAK when empty, and the idle flush's short packet."""
import warnings

import numpy as np
import pytest

pytest.importorskip("luna")

from amaranth import Module                                              # noqa: E402
from amaranth.hdl import DomainRenamer                                   # noqa: E402
from amaranth.sim import Simulator                                       # noqa: E402

from wirestamp.protocol import RECORD_BYTES, Deframer, Frame, Op, Usb, encode  # noqa: E402
from wirestamp.records import WIRE_DTYPE                                 # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from luna.gateware.interface.utmi import UTMIInterface               # noqa: E402

from wirestamp.hdl.ctl.bridge import Bridge                              # noqa: E402
from wirestamp.hdl.ctl.usb import UsbLink, descriptors                  # noqa: E402

OUT, IN, SETUP = 0xE1, 0x69, 0x2D
DATA0, DATA1, ACK, NAK, STALL = 0xC3, 0x4B, 0xD2, 0x5A, 0x1E
LINE_J = 0b01                       # full-speed idle (USB 2.0 table 7-2)


def crc5(value):
    """USB token CRC (USB 2.0 8.3.5.1) over the 11 bits of address and endpoint."""
    crc = 0x1F
    for i in range(11):
        bit = (value >> i) & 1
        crc = ((crc >> 1) ^ 0x14) if (crc ^ bit) & 1 else crc >> 1
    return crc ^ 0x1F


def crc16(data):
    """USB data CRC (USB 2.0 8.3.5.2), sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return (crc ^ 0xFFFF).to_bytes(2, "little")


class UtmiHost:
    """A USB host at the UTMI interface, in an async testbench (`usb` domain)."""

    def __init__(self, ctx, utmi):
        self.ctx, self.utmi, self.address = ctx, utmi, 0
        self.toggles = {}

    async def idle(self, cycles=1):
        await self.ctx.tick("usb").repeat(cycles)

    async def send(self, packet):
        ctx, utmi = self.ctx, self.utmi
        await self.idle(10)                     # inter-packet gap, before: the device's
        ctx.set(utmi.rx_active, 1)              # answer may come right after the packet
        await self.idle()
        for byte in packet:
            ctx.set(utmi.rx_data, byte)
            ctx.set(utmi.rx_valid, 1)
            await self.idle()
        ctx.set(utmi.rx_valid, 0)
        ctx.set(utmi.rx_active, 0)

    async def receive(self, timeout=2000):
        """The device's next packet (PID first, CRC16 checked and removed), or None."""
        ctx, utmi = self.ctx, self.utmi
        for _ in range(timeout):
            if ctx.get(utmi.tx_valid):
                break
            await self.idle()
        else:
            return None
        packet = bytearray()
        while ctx.get(utmi.tx_valid):
            packet.append(ctx.get(utmi.tx_data))
            await self.idle()
        if packet[0] in (DATA0, DATA1):
            assert crc16(packet[1:-2]) == bytes(packet[-2:]), "bad CRC16 from the device"
            return bytes(packet[:-2])
        return bytes(packet)

    async def token(self, pid, endpoint):
        fields = self.address | endpoint << 7
        value = fields | crc5(fields) << 11
        await self.send([pid, value & 0xFF, value >> 8])

    async def data(self, pid, payload):
        await self.send([pid, *payload, *crc16(payload)])

    async def setup(self, request_type, request, value=0, index=0, length=0):
        await self.token(SETUP, 0)
        await self.data(DATA0, bytes([request_type, request]) + value.to_bytes(2, "little")
                        + index.to_bytes(2, "little") + length.to_bytes(2, "little"))
        assert await self.receive() == bytes([ACK])

    async def control_in(self, request, value, length):
        await self.setup(0x80, request, value, 0, length)
        data, toggle = b"", DATA1
        while True:
            await self.token(IN, 0)
            packet = await self.receive()
            if packet[0] == NAK:
                continue
            assert packet[0] == toggle
            await self.send([ACK])
            data += packet[1:]
            toggle ^= DATA0 ^ DATA1
            if len(packet) - 1 < 64 or len(data) >= length:
                break
        await self.token(OUT, 0)                    # status stage
        await self.data(DATA1, b"")
        assert await self.receive() == bytes([ACK])
        return data

    async def control_out(self, request, value):
        await self.setup(0x00, request, value)
        for _ in range(100):
            await self.token(IN, 0)                 # status stage: a zero-length DATA1
            packet = await self.receive()
            if packet[0] != NAK:
                break
        assert packet == bytes([DATA1])
        await self.send([ACK])

    async def bulk_out(self, endpoint, payload):
        toggle = self.toggles.get(endpoint, DATA0)
        await self.token(OUT, endpoint)
        await self.data(toggle, payload)
        assert await self.receive() == bytes([ACK])
        self.toggles[endpoint] = toggle ^ DATA0 ^ DATA1

    async def bulk_in(self, endpoint):
        """The payload of one IN transaction, or None for a NAK."""
        key = endpoint | 0x80
        toggle = self.toggles.get(key, DATA0)
        await self.token(IN, endpoint)
        packet = await self.receive()
        if packet[0] == NAK:
            return None
        assert packet[0] == toggle, f"data toggle {packet[0]:#x}, expected {toggle:#x}"
        await self.send([ACK])
        self.toggles[key] = toggle ^ DATA0 ^ DATA1
        return packet[1:]


def unit(utmi):
    """UsbLink and the real bridge; the bridge's register bus answers word `a` with 3·a."""
    m = Module()
    m.submodules.link = link = UsbLink(utmi, handle_clocking=False)
    m.submodules.bridge = bridge = DomainRenamer("ctl")(Bridge(streaming_port=True))
    m.d.comb += [bridge.rx.payload.eq(link.rx.payload), bridge.rx.valid.eq(link.rx.valid),
                 link.rx.ready.eq(bridge.rx.ready),
                 link.tx.payload.eq(bridge.tx.payload), link.tx.valid.eq(bridge.tx.valid),
                 bridge.tx.ready.eq(link.tx.ready), link.streaming.eq(bridge.streaming)]
    m.d.ctl += [bridge.bus.r_valid.eq(bridge.bus.r_en), bridge.bus.r_data.eq(bridge.bus.addr * 3)]
    return m, link


def test_enumeration_control_frames_and_records():
    utmi = UTMIInterface()
    m, link = unit(utmi)
    sim = Simulator(m)
    sim.add_clock(1 / 60e6, domain="usb")
    sim.add_clock(1 / 62.5e6, domain="ctl")
    collection = descriptors("0")
    records = np.zeros(100, dtype=WIRE_DTYPE)          # as the core hands them over
    records["stream"], records["seq"] = 3, np.arange(100)
    records["rx_ns"], records["latency_ns"] = np.arange(100) * 672, 3000
    pushed, finished = [], []

    async def host(ctx):
        ctx.set(utmi.line_state, LINE_J)
        ctx.set(utmi.tx_ready, 1)
        usb = UtmiHost(ctx, utmi)
        await usb.idle(200)
        device = await usb.control_in(6, 0x0100, 18)                    # GET_DESCRIPTOR
        assert device == collection.get_descriptor_bytes(1)
        await usb.control_out(5, 5)                                      # SET_ADDRESS
        usb.address = 5
        await usb.idle(20)
        whole = collection.get_descriptor_bytes(2)
        assert await usb.control_in(6, 0x0200, len(whole)) == whole
        product = await usb.control_in(6, 0x0302, 255)
        assert product[2:].decode("utf-16-le") == Usb.PRODUCT
        await usb.control_out(9, 1)                                      # SET_CONFIGURATION

        assert await usb.bulk_in(Usb.RECORDS_IN & 0x7F) is None          # empty: NAK

        # A READ through EP1 to the bridge, and its reply.
        await usb.bulk_out(Usb.CONTROL_OUT, encode(Frame.read(7, 0x10, 2)))
        deframer, replies = Deframer(), []
        for _ in range(200):
            payload = await usb.bulk_in(Usb.CONTROL_IN & 0x7F)
            if payload:
                replies += deframer.feed(payload)
            if replies:
                break
        assert replies == [Frame(7, Op.READ_REPLY, (0x30).to_bytes(4, "little")
                                 + (0x33).to_bytes(4, "little"))]

        # RECORDS_START, then 100 records come; EP2 sends them raw.
        await usb.bulk_out(Usb.CONTROL_OUT, encode(Frame(8, Op.RECORDS_START)))
        for _ in range(200):
            payload = await usb.bulk_in(Usb.CONTROL_IN & 0x7F)
            if payload and deframer.feed(payload):
                break
        pushed.append(True)                     # the record bench may go
        for _ in range(100_000):
            if ctx.get(link.streaming) and len(pushed) == 2:
                break
            await usb.idle()
        await usb.idle(400)                     # all 100 in the FIFO
        got, sizes = b"", []
        for _ in range(1000):
            if len(got) >= records.nbytes:
                break
            payload = await usb.bulk_in(Usb.RECORDS_IN & 0x7F)
            if payload is None:
                await usb.idle(50)
                continue
            sizes.append(len(payload))
            got += payload
        assert got == records.tobytes()
        assert sizes[:-1] == [512] * (len(sizes) - 1) and sizes[-1] == records.nbytes % 512, \
            sizes        # full packets while backlogged, then the idle flush's short one
        assert await usb.bulk_in(Usb.RECORDS_IN & 0x7F) is None
        finished.append(True)

    async def record_source(ctx):
        while not pushed:
            await ctx.tick("ctl")
        while not ctx.get(link.streaming):
            await ctx.tick("ctl")
        raw = records.tobytes()
        for i in range(len(records)):
            one = raw[RECORD_BYTES * i:RECORD_BYTES * (i + 1)]
            ctx.set(link.records.payload, int.from_bytes(one, "little"))
            ctx.set(link.records.valid, 1)
            await ctx.tick("ctl").until(link.records.ready)      # taken: the FIFO had room
            ctx.set(link.records.valid, 0)
            await ctx.tick("ctl").repeat(3)
        pushed.append(True)

    sim.add_testbench(host)
    sim.add_testbench(record_source, background=True)
    sim.run()                     # until the host is done (every loop in it is bounded)
    assert finished and len(pushed) == 2
