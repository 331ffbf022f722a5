"""The usb:// transport (pyusb) against the virtual board: `sim://?link=usb` runs the
transport's own code through `usb.core`, with a backend that presents the gateware's
descriptors and carries the bulk transfers to the board. No USB stack is needed (this
machine has none)."""
import errno
import subprocess
import sys
import time

import pytest

import wirestamp
from wirestamp.protocol import Usb
from wirestamp.run import run_measurement
from wirestamp.streams import Stream

usb = pytest.importorskip("usb")
import usb.backend  # noqa: E402
import usb.core  # noqa: E402
ECHO_MAC = "02:00:00:00:00:09"


def echo_stream(**options):
    return Stream("10.0.0.9", dst_mac=ECHO_MAC, **options)


def test_descriptors_are_the_contracts():
    from wirestamp.hdl.ctl.usb import descriptors
    from wirestamp.sim.usb_backend import parse_descriptors
    device, configuration, interfaces, endpoints, strings = parse_descriptors(descriptors("7"))
    assert (device.idVendor, device.idProduct, device.bcdUSB) == (Usb.VID, Usb.PID, 0x0200)
    assert interfaces[0].bInterfaceClass == Usb.VENDOR_CLASS
    assert [(e.bEndpointAddress, e.bmAttributes, e.wMaxPacketSize) for e in endpoints] == \
        [(Usb.CONTROL_OUT, 2, 512), (Usb.CONTROL_IN, 2, 512), (Usb.RECORDS_IN, 2, 512)]
    assert strings[device.iSerialNumber][2:].decode("utf-16-le") == "7"


def test_every_record_at_line_rate_over_usb(tmp_path):
    with wirestamp.open("sim://?dut=echo&delay=3us&link=usb") as device:
        assert type(device.transport).__mro__[1].__name__ == "UsbTransport"
        summary = run_measurement(device, [echo_stream(rate="line", count=20_000)], tmp_path,
                                  progress=False)
    stream, records = summary["streams"][0], summary["records"]
    assert stream["tx_packets"] == stream["rx_packets"] == 20_000 and stream["lost"] == 0
    assert records["received"] == records["expected"] == 20_000
    assert records["fifo_overflow"] == 0 and records["lost"] == 0
    assert stream["latency_ns"]["min"] == stream["latency_ns"]["max"] == 3000


def test_counts_equal_the_echo_models_truth_over_usb(tmp_path):
    url = "sim://?dut=echo&delay=3us&loss=0.03&dup=0.02&reorder=0.02&seed=11&link=usb"
    with wirestamp.open(url) as device:
        summary = run_measurement(device, [echo_stream(rate=200_000, count=3000)], tmp_path,
                                  progress=False)
        truth = dict(device.transport.truth)
    stream = summary["streams"][0]
    assert truth["drop"] > 30 and truth["duplicate"] > 30 and truth["hold"] > 30
    assert stream["lost"] == truth["drop"]
    assert stream["duplicates"] == truth["duplicate"] and stream["reordered"] == truth["hold"]
    assert stream["rx_packets"] == 3000 - truth["drop"] + truth["duplicate"]
    assert summary["records"]["received"] == stream["rx_packets"]


def test_no_libusb_backend_is_one_clear_error(monkeypatch):
    import usb.backend.libusb1
    from wirestamp.usb_link import UsbTransport
    monkeypatch.setattr(usb.backend.libusb1, "get_backend", lambda *a, **k: None)
    with pytest.raises(wirestamp.LinkError, match="no libusb-1.0 backend.*libusb-1.0-0"):
        UsbTransport()


def test_no_device_says_so():
    import usb.backend
    from wirestamp.usb_link import UsbTransport

    class Empty(usb.backend.IBackend):
        def enumerate_devices(self):
            return iter(())
    with pytest.raises(wirestamp.LinkError, match="no unit.*plugged in"):
        UsbTransport(backend=Empty())


def board(**options):
    from wirestamp.sim.virtual import SimTransport
    return SimTransport(usb_records=True, **options)


def test_a_missing_serial_lists_the_units_found():
    from wirestamp.sim.usb_backend import SimUsbBackend
    from wirestamp.usb_link import UsbTransport
    sim = board()
    try:
        with pytest.raises(wirestamp.LinkError, match="no unit with serial 42.*serials 0"):
            UsbTransport(serial="42", backend=SimUsbBackend(sim))
    finally:
        sim.close()


def test_permission_denied_names_the_udev_rule():
    from wirestamp.sim.usb_backend import SimUsbBackend
    from wirestamp.usb_link import UsbTransport

    class Denied(SimUsbBackend):
        def claim_interface(self, dev_handle, intf):
            raise usb.core.USBError("Access denied (insufficient permissions)",
                                    errno=errno.EACCES)
    sim = board()
    try:
        with pytest.raises(wirestamp.LinkError, match="permission denied.*udev rule"):
            UsbTransport(backend=Denied(sim))
    finally:
        sim.close()


def test_a_unit_claimed_by_another_program_is_refused_in_one_line():
    from wirestamp.sim.usb_backend import SimUsbBackend
    from wirestamp.usb_link import UsbTransport

    class Busy(SimUsbBackend):
        def claim_interface(self, dev_handle, intf):
            raise usb.core.USBError("Resource busy", errno=errno.EBUSY)
    sim = board()
    try:
        with pytest.raises(wirestamp.LinkError, match="in use by another program; stop it"):
            UsbTransport(backend=Busy(sim))
    finally:
        sim.close()


def test_unplugged_mid_run_is_a_link_error_without_a_hang():
    from wirestamp.sim.usb_backend import SimUsbBackend
    from wirestamp.usb_link import UsbTransport
    sim = board(dut="echo", delay="3us")
    backend = SimUsbBackend(sim)
    device = wirestamp.Device(UsbTransport(backend=backend, timeout=0.05), timeout=0.2,
                              retries=2)
    try:
        device.configure([echo_stream(rate=50_000, count=100_000)])
        device.start()
        records = device.records(poll=0.05)
        assert sum(len(next(records)) for _ in range(40)) > 0
        backend.gone = True                       # pulled out
        began = time.monotonic()
        with pytest.raises(wirestamp.LinkError, match="unplugged"):
            for _ in range(10_000):
                next(records)
        assert time.monotonic() - began < 5
    finally:
        device.close()
        sim.close()


def test_usb_url_on_a_machine_without_the_unit_is_one_line():
    result = subprocess.run([sys.executable, "-m", "wirestamp.cli", "info", "--device", "usb://"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and result.stderr.count("\n") == 1, result.stderr
    assert "usb://" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_usb_url_is_refused():
    with pytest.raises(ValueError, match="VID:PID"):
        wirestamp.open("usb://nonsense")
