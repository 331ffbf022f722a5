"""The `usb://` transport: a unit's USB 2.0 High-Speed link through pyusb (libusb-1.0).

USB 2.0 chapter 9 (enumeration, descriptors) and 5.8 (bulk transfers); the endpoints are the
contract's (`protocol.Usb`): control frames on bulk OUT 1 / IN 1, exactly the SLIP frames of
the serial link, so `Device` is the same; raw records on bulk IN 2.

pyusb is synchronous, so two reader threads keep a read pending on each IN endpoint, with
large reads (64 KiB: 128 High-Speed packets) into preallocated buffers, and hand the bytes
over through bounded buffers. When the records buffer is full its reader waits: the unit's
FIFO then fills and counts every record it cannot keep (`RECORD_OVERFLOW`), so nothing is
lost without a count. A device that goes away mid-run (unplugged) makes the next read or
write raise `LinkError` within the read timeout.

    usb://                      the first unit with wirestamp's VID:PID (protocol.Usb)
    usb://1209:0001?serial=S    a VID:PID and a serial number
"""
import array
import contextlib
import errno
import threading

from .protocol import RECORD_BYTES, Usb

__all__ = ["UsbTransport", "find_units"]

READ_BYTES = 64 * 1024          # one bulk read: 128 packets of 512 bytes
RECORD_BUFFER = 64 << 20        # record bytes read and not yet taken; the reader waits past it
CONTROL_BUFFER = 1 << 20
UDEV_HINT = ("add the udev rule in docs/usb.md (SUBSYSTEM==\"usb\", ATTRS{idVendor}==\"1209\", "
             "ATTRS{idProduct}==\"0001\", MODE=\"0660\", TAG+=\"uaccess\") and replug the unit")


def _link_error(message):
    from .device import LinkError
    return LinkError(message)


def _backend(backend):
    if backend is not None:
        return backend
    try:
        import usb.backend.libusb1
    except ImportError:
        raise _link_error("usb://: pyusb is not installed (pip install pyusb)") from None
    found = usb.backend.libusb1.get_backend()
    if found is None:
        raise _link_error("usb://: no libusb-1.0 backend found: install the system library "
                          "(apt-get install libusb-1.0-0; macOS: brew install libusb)")
    return found


def find_units(vid=Usb.VID, pid=Usb.PID, backend=None):
    """The units on USB as [(serial number or None, pyusb device)]."""
    import usb.core
    import usb.util
    units = []
    for device in usb.core.find(find_all=True, idVendor=vid, idProduct=pid,
                                backend=_backend(backend)):
        try:
            serial = usb.util.get_string(device, device.iSerialNumber) \
                if device.iSerialNumber else None
        except (usb.core.USBError, ValueError):
            serial = None           # no permission to ask: still listed
        units.append((serial, device))
    return units


class UsbTransport:
    def __init__(self, vid=Usb.VID, pid=Usb.PID, serial=None, backend=None, timeout=0.1):
        import usb.core
        import usb.util
        self._usb = usb
        self._args = (vid, pid, serial, backend, timeout)
        self._timeout_ms = max(int(timeout * 1000), 1)
        units = find_units(vid, pid, backend)
        chosen = [device for s, device in units if serial is None or s == serial]
        if not chosen:
            seen = ", ".join(s or "?" for s, _ in units)
            raise _link_error(
                f"usb://{vid:04x}:{pid:04x}: no unit{f' with serial {serial}' if serial else ''}"
                + (f"; found units with serials {seen}" if units else
                   "; is it plugged in, powered, and flashed with a USB image (ecpix5)? "
                   "lsusb lists what the host sees"))
        self._device = device = chosen[0]
        self.hint = (f"the unit on USB ({vid:04x}:{pid:04x}) did not answer: is it still "
                     f"plugged in? (lsusb)")
        try:
            try:
                configured = device.get_active_configuration() is not None
            except usb.core.USBError:
                configured = False
            if not configured:
                device.set_configuration()
            usb.util.claim_interface(device, Usb.INTERFACE)
        except usb.core.USBError as error:
            if error.errno == errno.EACCES:
                raise _link_error(f"usb://: permission denied for the unit: {UDEV_HINT}") \
                    from None
            if error.errno == errno.EBUSY:
                from .device import _holder
                node = f"/dev/bus/usb/{device.bus:03d}/{device.address:03d}"
                holder = _holder(node) if device.bus and device.address else None
                raise _link_error(f"usb://: the unit is in use by "
                                  f"{holder or 'another program'}; stop it, or watch the "
                                  f"unit from the program that holds it") from None
            raise _link_error(f"usb://: cannot open the unit: {error}") from None
        self._control, self._records = bytearray(), bytearray()
        self._arrived = threading.Condition()
        self._room = threading.Condition(self._arrived)
        self._failure = None
        self._closing = False
        self.control_dropped = 0
        self._readers = [threading.Thread(target=self._read, args=(Usb.CONTROL_IN, False),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(Usb.RECORDS_IN, True),
                                          daemon=True)]
        for reader in self._readers:
            reader.start()

    # The transport interface (`Device`).
    def write(self, data):
        self._raise_failure()
        try:
            self._device.write(Usb.CONTROL_OUT, data, timeout=1000)
        except self._usb.core.USBError as error:
            raise _link_error(f"usb://: write failed ({error}); was the unit unplugged?") \
                from None

    def read(self, timeout):
        """Control bytes that arrive within `timeout` seconds (or b"")."""
        with self._arrived:
            if not self._control and self._failure is None:
                self._arrived.wait(timeout)
            data = bytes(self._control)
            self._control.clear()
        if not data:
            self._raise_failure()
        return data

    def read_records(self, timeout):
        """Whole records (RECORD_BYTES each) that arrive within `timeout` seconds; a record
        split across reads stays until its rest arrives."""
        with self._arrived:
            if len(self._records) < RECORD_BYTES and self._failure is None:
                self._arrived.wait(timeout)
            whole = len(self._records) - len(self._records) % RECORD_BYTES
            data = bytes(self._records[:whole])
            del self._records[:whole]
            self._room.notify_all()
        if not data:
            self._raise_failure()
        return data

    def reopen(self):
        """The unit found and claimed afresh (after a LinkError: to stop the streams)."""
        with contextlib.suppress(Exception):
            self.close()
        return UsbTransport(*self._args)

    def close(self):
        self._closing = True
        with self._arrived:
            self._room.notify_all()
        for reader in self._readers:
            reader.join(timeout=2)
        try:
            self._usb.util.release_interface(self._device, Usb.INTERFACE)
        except self._usb.core.USBError:
            pass                    # gone already
        self._usb.util.dispose_resources(self._device)

    # Inside.
    def _raise_failure(self):
        if self._failure is not None:
            raise _link_error(self._failure)

    def _read(self, endpoint, records):
        buffer = array.array("B", bytes(READ_BYTES))
        while not self._closing:
            if records:
                with self._arrived:
                    while len(self._records) > RECORD_BUFFER and not self._closing:
                        self._room.wait(0.1)
            try:
                n = self._device.read(endpoint, buffer, timeout=self._timeout_ms)
            except self._usb.core.USBTimeoutError:
                continue
            except self._usb.core.USBError as error:
                if self._closing:
                    return
                with self._arrived:
                    self._failure = (f"usb://: the unit stopped answering on endpoint "
                                     f"{endpoint:#04x} ({error}); was it unplugged?")
                    self._arrived.notify_all()
                return
            with self._arrived:
                if records:
                    self._records += memoryview(buffer)[:n]
                elif len(self._control) + n <= CONTROL_BUFFER:
                    self._control += memoryview(buffer)[:n]
                else:
                    self.control_dropped += n
                self._arrived.notify_all()
