"""The unit's USB 2.0 High-Speed device (USB 2.0 chapters 8 and 9; LUNA does the packets).

A vendor-class interface with three bulk endpoints (`protocol.Usb`):
- OUT 1 → the bridge's receive stream, IN 1 ← its transmit stream: the control link's SLIP
  frames, exactly as on the UART, so the host's `Device` is the same;
- IN 2 ← the records, raw (RECORD_BYTES each, little-endian, back to back), from the core's
  record stream through an asynchronous FIFO into the 60 MHz `usb` domain, while the bridge
  says `streaming` (RECORDS_START..RECORDS_STOP). The FIFO is deep enough to ride out the
  host's scheduling gaps (`RECORD_FIFO_BYTES`, block RAM); when it is full it holds the
  record stream back, so the core's record FIFO fills and counts what it cannot keep in
  RECORD_OVERFLOW, the one place the host reads record losses from. When no record has come
  for `IDLE_FLUSH_CYCLES`, what is buffered goes out as a short packet, so a trickle arrives
  promptly.

`descriptors()` builds the descriptors from the contract; the virtual board's pyusb backend
(`wirestamp.sim.usb_backend`) presents the same bytes.
"""
import warnings

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import AsyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ...protocol import RECORD_BYTES, Usb
from ...regmap import RECORD_FIELDS

__all__ = ["descriptors", "UsbLink", "RECORD_FIFO_BYTES", "IDLE_FLUSH_CYCLES"]

RECORD_FIFO_BYTES = 64 * 1024       # 2.7k records: 1.8 ms of 64-byte line rate
IDLE_FLUSH_CYCLES = 6000            # 100 µs at 60 MHz without a record: send what is there
RECORD_BITS = sum(width for _, width in RECORD_FIELDS)


def _luna():
    """LUNA's device parts (luna-usb, the [usb] extra); its import-time deprecation warnings
    are about Amaranth 0.6, which the project does not use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from luna.gateware.usb.usb2.device import USBDevice
        from luna.gateware.usb.usb2.endpoints.stream import (USBStreamInEndpoint,
                                                             USBStreamOutEndpoint)
        from usb_protocol.emitters.descriptors.standard import DeviceDescriptorCollection
    return USBDevice, USBStreamInEndpoint, USBStreamOutEndpoint, DeviceDescriptorCollection


def descriptors(serial="0"):
    """The device's descriptors (usb_protocol's DeviceDescriptorCollection)."""
    *_, DeviceDescriptorCollection = _luna()
    collection = DeviceDescriptorCollection()
    with collection.DeviceDescriptor() as device:
        device.bcdUSB = 2.00
        device.idVendor, device.idProduct = Usb.VID, Usb.PID
        device.iManufacturer, device.iProduct = Usb.MANUFACTURER, Usb.PRODUCT
        device.iSerialNumber = serial
        device.bNumConfigurations = 1
    with collection.ConfigurationDescriptor() as configuration:
        configuration.bConfigurationValue = 1
        with configuration.InterfaceDescriptor() as interface:
            interface.bInterfaceNumber = Usb.INTERFACE
            interface.bInterfaceClass = Usb.VENDOR_CLASS
            for address in (Usb.CONTROL_OUT, Usb.CONTROL_IN, Usb.RECORDS_IN):
                with interface.EndpointDescriptor() as endpoint:
                    endpoint.bEndpointAddress = address
                    endpoint.bmAttributes = 0x02                 # bulk
                    endpoint.wMaxPacketSize = Usb.MAX_PACKET
    return collection


class UsbLink(wiring.Component):
    """`bus` is LUNA's PHY interface (a ULPI resource, or a UTMI interface in simulation);
    the streams are in `ctl` (the bridge's domain), the device in `usb`, which the caller
    defines (from the ULPI clock on a board)."""
    rx: Out(stream.Signature(8))            # to the bridge (OUT 1)
    tx: In(stream.Signature(8))             # from the bridge (IN 1)
    records: In(stream.Signature(RECORD_BITS))
    streaming: In(1)

    def __init__(self, bus, serial="0", handle_clocking=True):
        self._bus, self._serial, self._clocking = bus, serial, handle_clocking
        super().__init__()

    def elaborate(self, platform):
        USBDevice, InEndpoint, OutEndpoint, _ = _luna()
        m = Module()
        m.submodules.device = device = USBDevice(bus=self._bus,
                                                 handle_clocking=self._clocking)
        device.add_standard_control_endpoint(descriptors(self._serial))
        control_out = OutEndpoint(endpoint_number=Usb.CONTROL_OUT & 0x7F,
                                  max_packet_size=Usb.MAX_PACKET)
        control_in = InEndpoint(endpoint_number=Usb.CONTROL_IN & 0x7F,
                                max_packet_size=Usb.MAX_PACKET)
        records_in = InEndpoint(endpoint_number=Usb.RECORDS_IN & 0x7F,
                                max_packet_size=Usb.MAX_PACKET)
        for endpoint in (control_out, control_in, records_in):
            device.add_endpoint(endpoint)
        m.d.comb += device.connect.eq(1)

        # Control frames: ctl ⇄ usb through small asynchronous FIFOs.
        m.submodules.to_bridge = to_bridge = AsyncFIFOBuffered(
            width=8, depth=1024, w_domain="usb", r_domain="ctl")
        m.submodules.from_bridge = from_bridge = AsyncFIFOBuffered(
            width=8, depth=1024, w_domain="ctl", r_domain="usb")
        m.d.comb += [
            to_bridge.w_data.eq(control_out.stream.payload),
            to_bridge.w_en.eq(control_out.stream.valid),
            control_out.stream.ready.eq(to_bridge.w_rdy),
            self.rx.payload.eq(to_bridge.r_data), self.rx.valid.eq(to_bridge.r_rdy),
            to_bridge.r_en.eq(self.rx.ready),
            from_bridge.w_data.eq(self.tx.payload), from_bridge.w_en.eq(self.tx.valid),
            self.tx.ready.eq(from_bridge.w_rdy),
            control_in.stream.payload.eq(from_bridge.r_data),
            control_in.stream.valid.eq(from_bridge.r_rdy),
            from_bridge.r_en.eq(control_in.stream.ready),
            control_in.flush.eq(~from_bridge.r_rdy),     # a reply goes out as soon as it ends
        ]

        # Records: whole records into the FIFO, bytes out of it towards EP2.
        depth = RECORD_FIFO_BYTES // RECORD_BYTES
        m.submodules.record_fifo = fifo = AsyncFIFOBuffered(
            width=RECORD_BITS, depth=depth, w_domain="ctl", r_domain="usb")
        m.d.comb += [fifo.w_data.eq(self.records.payload),
                     fifo.w_en.eq(self.records.valid & self.streaming),
                     self.records.ready.eq(fifo.w_rdy)]
        record = Signal(RECORD_BITS)
        byte = Signal(range(RECORD_BYTES))
        holding = Signal()
        m.d.comb += fifo.r_en.eq(~holding)
        with m.If(~holding & fifo.r_rdy):
            m.d.usb += [record.eq(fifo.r_data), holding.eq(1), byte.eq(0)]
        m.d.comb += [records_in.stream.payload.eq(record.word_select(byte, 8)),
                     records_in.stream.valid.eq(holding)]
        with m.If(holding & records_in.stream.ready):
            m.d.usb += byte.eq(byte + 1)
            with m.If(byte == RECORD_BYTES - 1):
                m.d.usb += holding.eq(0)
        idle = Signal(range(IDLE_FLUSH_CYCLES + 1))
        with m.If(holding | fifo.r_rdy):
            m.d.usb += idle.eq(0)
        with m.Elif(idle != IDLE_FLUSH_CYCLES):
            m.d.usb += idle.eq(idle + 1)
        m.d.comb += records_in.flush.eq(idle == IDLE_FLUSH_CYCLES)
        return m
