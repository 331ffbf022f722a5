"""The virtual board as a USB device, for pyusb: `sim://?link=usb`.

A pyusb backend (`usb.backend.IBackend`, USB 2.0 chapter 9's requests) that presents one
device, with the gateware's own descriptors (`wirestamp.hdl.ctl.usb.descriptors`, parsed
from their bytes), and carries its bulk transfers to the virtual board: OUT 1 and IN 1 to
its control link, IN 2 from its raw record stream (the board's `usb_records` mode). The
host then runs the `usb://` transport's own code (`wirestamp.usb_link.UsbTransport`) through
pyusb's `usb.core`, exactly as against a board; only libusb is left out.
"""
import errno
import struct
from types import SimpleNamespace

import usb.backend
import usb.core

from ..protocol import Usb

__all__ = ["SimUsbBackend", "usb_transport", "parse_descriptors"]

DEVICE, CONFIGURATION, STRING, INTERFACE, ENDPOINT = 1, 2, 3, 4, 5
_FIELDS = {
    DEVICE: ("<BBHBBBBHHHBBBB", "bLength bDescriptorType bcdUSB bDeviceClass bDeviceSubClass "
             "bDeviceProtocol bMaxPacketSize0 idVendor idProduct bcdDevice iManufacturer "
             "iProduct iSerialNumber bNumConfigurations"),
    CONFIGURATION: ("<BBHBBBBB", "bLength bDescriptorType wTotalLength bNumInterfaces "
                    "bConfigurationValue iConfiguration bmAttributes bMaxPower"),
    INTERFACE: ("<BBBBBBBBB", "bLength bDescriptorType bInterfaceNumber bAlternateSetting "
                "bNumEndpoints bInterfaceClass bInterfaceSubClass bInterfaceProtocol "
                "iInterface"),
    ENDPOINT: ("<BBBBHB", "bLength bDescriptorType bEndpointAddress bmAttributes "
               "wMaxPacketSize bInterval"),
}


def _parse(kind, raw):
    layout, names = _FIELDS[kind]
    values = struct.unpack_from(layout, raw)
    return SimpleNamespace(**dict(zip(names.split(), values)), extra_descriptors=[])


def parse_descriptors(collection):
    """(device, configuration, interfaces, endpoints, strings) from a descriptor collection's
    bytes, as a host reads them in enumeration."""
    device = _parse(DEVICE, collection.get_descriptor_bytes(DEVICE))
    whole = collection.get_descriptor_bytes(CONFIGURATION)
    configuration = _parse(CONFIGURATION, whole)
    interfaces, endpoints, at = [], [], configuration.bLength
    while at < len(whole):
        length, kind = whole[at], whole[at + 1]
        if kind == INTERFACE:
            interfaces.append(_parse(INTERFACE, whole[at:at + length]))
        elif kind == ENDPOINT:
            endpoint = _parse(ENDPOINT, whole[at:at + length])
            endpoint.bRefresh = endpoint.bSynchAddress = 0
            endpoints.append(endpoint)
        at += length
    strings = {index: raw for kind, index, raw in collection if kind == STRING}
    return device, configuration, interfaces, endpoints, strings


class SimUsbBackend(usb.backend.IBackend):
    """One virtual board as the only device on a virtual bus."""

    def __init__(self, board, serial="0"):
        from ..hdl.ctl.usb import descriptors
        self.board = board
        (self._device, self._configuration, self._interfaces, self._endpoints,
         self._strings) = parse_descriptors(descriptors(serial))
        self._device.bus, self._device.address = 1, 1
        self._device.port_number, self._device.port_numbers = 1, (1,)
        self._device.speed = 3                           # libusb's LIBUSB_SPEED_HIGH
        self._configured = 0
        self.gone = False               # "unplugged": every transfer fails with ENODEV

    def _check(self):
        if self.gone:
            raise usb.core.USBError("No such device (it may have been disconnected)",
                                    errno=errno.ENODEV)

    def enumerate_devices(self):
        if not self.gone:
            yield "wirestamp-virtual-board"

    def get_device_descriptor(self, dev):
        return self._device

    def get_configuration_descriptor(self, dev, config):
        if config:
            raise IndexError(config)
        return self._configuration

    def get_interface_descriptor(self, dev, intf, alt, config):
        if config or alt or intf >= len(self._interfaces):
            raise IndexError((intf, alt, config))
        return self._interfaces[intf]

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        if config or alt or intf or ep >= len(self._endpoints):
            raise IndexError((ep, intf, alt, config))
        return self._endpoints[ep]

    def open_device(self, dev):
        self._check()
        return dev

    def close_device(self, dev_handle):
        pass

    def set_configuration(self, dev_handle, config_value):
        self._check()
        self._configured = config_value

    def get_configuration(self, dev_handle):
        self._check()
        return self._configured

    def claim_interface(self, dev_handle, intf):
        self._check()

    def release_interface(self, dev_handle, intf):
        pass

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        self._check()
        if ep != Usb.CONTROL_OUT:
            raise usb.core.USBError("no such endpoint", errno=errno.EPIPE)
        self.board.write(bytes(data))
        return len(data)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        self._check()
        seconds = (timeout or 1000) / 1000
        if ep == Usb.CONTROL_IN:
            data = self.board.read(seconds)
        elif ep == Usb.RECORDS_IN:
            data = self.board.take_records(len(buff), seconds)
        else:
            raise usb.core.USBError("no such endpoint", errno=errno.EPIPE)
        if not data:
            self._check()
            raise usb.core.USBTimeoutError("Operation timed out", errno=errno.ETIMEDOUT)
        buff[:len(data)] = type(buff)("B", data)
        return len(data)

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        """GET_DESCRIPTOR of strings (what pyusb asks for a serial number); the rest of
        enumeration happened when the board was "plugged in"."""
        self._check()
        kind, index = wValue >> 8, wValue & 0xFF
        if bmRequestType == 0x80 and bRequest == 6 and kind == STRING and index in self._strings:
            raw = self._strings[index][:len(data)]
            data[:len(raw)] = type(data)("B", raw)
            return len(raw)
        raise usb.core.USBError("Pipe error", errno=errno.EPIPE)


def usb_transport(board, serial="0"):
    """The `usb://` transport, through pyusb, on the virtual board `board` (a SimTransport
    started with `usb_records`)."""
    from ..usb_link import UsbTransport

    class OnTheVirtualBoard(UsbTransport):
        """`UsbTransport` unchanged; closing it unplugs the board, and what the board knows
        (truth, delays, settle_s…) reads through, as with `sim://`."""
        def close(self):
            super().close()
            board.close()

        def __getattr__(self, name):
            return getattr(board, name)

    return OnTheVirtualBoard(serial=serial, backend=SimUsbBackend(board, serial), timeout=0.05)
