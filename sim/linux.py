"""The Linux kernel as the virtual board's DUT (`sim://?dut=linux`, needs root).

A TAP device (Documentation/networking/tuntap.rst) is moved into a network namespace made for
the run; the kernel there owns `ip` on it, answers ARP, and `wirestamp reflect` echoes the
unit's datagrams back from inside it. Frames the unit sends are written to the TAP device;
frames the kernel sends are injected into the unit's receive side. The namespace, the TAP
device and the reflector are removed on `close`, whatever happened.

The virtual board's time is simulation time and the kernel's is wall time, so the round trip
in the unit's records mixes the two; the stack times come from wall clocks alone: the
reflector's log (kernel receive, application receive, application send) and this module's
`tap_log` (when a frame was written to the TAP device and when the reply was read from it),
both CLOCK_REALTIME, joined by (stream, seq) in `split_stack_times`.
"""
import atexit
import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .. import regmap
from ..records import SequenceExtender, join_key
from ..reflect import read_log

__all__ = ["LinuxDut", "TAP_DTYPE", "split_stack_times", "unavailable"]

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
UNIT_IP, DUT_IP, UNIT_MAC = "10.77.0.2", "10.77.0.1", "02:77:73:00:00:01"
SIGNATURE_AT = regmap.HEADER_BYTES     # where the signature starts
TAP_DTYPE = np.dtype([("stream", "<u1"), ("seq", "<u8"), ("to_kernel_ns", "<i8"),
                      ("from_kernel_ns", "<i8")])
TAP_LOG_ROWS = 1 << 16          # the newest rows are kept; memory stays flat


def unavailable():
    """Why the Linux DUT cannot run here, or None."""
    if os.geteuid() != 0:
        return "the Linux DUT needs root (a TAP device and a network namespace)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode:
        return "the Linux DUT needs iproute2's `ip netns` (apt-get install iproute2)"
    if not Path("/dev/net/tun").exists():
        return "the Linux DUT needs /dev/net/tun"
    return None


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _namespaces():
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers():
    """What runs killed without cleaning up left behind (SIGKILL, a crash): namespaces
    `wirestamp-PID` and folders `wirestamp-linux-PID-…` whose process is gone, with the
    reflectors still running inside those namespaces. Returns the names removed."""
    removed = []
    for name in _namespaces():
        match = re.fullmatch(r"wirestamp-(\d+)", name)
        if match and not _alive(int(match[1])):
            _kill_inside(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            removed.append(name)
    for folder in Path(tempfile.gettempdir()).glob("wirestamp-linux-*-*"):
        match = re.fullmatch(r"wirestamp-linux-(\d+)-.*", folder.name)
        if match and not _alive(int(match[1])):
            named = folder / "netns"        # a namespace named by netns=: made by that run
            if named.exists():
                name = named.read_text().strip()
                if name in _namespaces():
                    _kill_inside(name)
                    subprocess.run(["ip", "netns", "del", name], capture_output=True)
                    removed.append(name)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def _kill_inside(name):
    """Every process in namespace `name` (the reflector a dead run left)."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                          text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _exit_on_sigterm():
    """SIGTERM's default ends the process without atexit: the namespace would stay. Where
    nobody has set a handler, SIGTERM becomes SystemExit(143) instead, so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


class LinuxDut:
    def __init__(self, inject, netns=None, ip=None, port=5001):
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        remove_leftovers()
        if netns and netns in _namespaces():
            raise RuntimeError(f"netns={netns}: that namespace exists already; wirestamp "
                               f"makes its own and will not take over (or delete) another")
        self.netns = netns or f"wirestamp-{os.getpid()}"
        self._made_netns = False
        self.ip, self.unit_ip, self.unit_mac, self.port = ip or DUT_IP, UNIT_IP, UNIT_MAC, port
        self._inject = inject
        self._tap = None
        self._reflector = None
        self._workdir = tempfile.TemporaryDirectory(prefix=f"wirestamp-linux-{os.getpid()}-")
        self._log_path = Path(self._workdir.name) / "reflections.bin"
        self._pending = {}          # (stream, seq) → row in tap_log, for the reply's time
        self._sequences = SequenceExtender()    # tap_log's seq: extended, as the reflector's
        self.tap_log = np.zeros(TAP_LOG_ROWS, dtype=TAP_DTYPE)
        self._rows = 0
        self.reflections = None
        self._stop = threading.Event()
        atexit.register(self.close)     # the namespace goes even if nobody closes us
        _exit_on_sigterm()
        try:
            self._setup()
        except Exception:
            self.close()
            raise
        self._reader = threading.Thread(target=self._read_tap, daemon=True)
        self._reader.start()

    def _setup(self):
        name = f"wst{os.getpid() % 100000}"
        self._tap = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self._tap, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        self.mac = Path(f"/sys/class/net/{name}/address").read_text().strip()
        _ip("netns", "add", self.netns)
        self._made_netns = True
        # Which namespace this run made, for `remove_leftovers` should it die by SIGKILL.
        (Path(self._workdir.name) / "netns").write_text(self.netns)
        _ip("link", "set", "dev", name, "netns", self.netns)
        _ip("-n", self.netns, "addr", "add", f"{self.ip}/24", "dev", name)
        _ip("-n", self.netns, "link", "set", "lo", "up")
        _ip("-n", self.netns, "link", "set", name, "up")
        # Its own session, as the virtual board's: a terminal's Ctrl-C is for the host, which
        # ends the reflector (SIGTERM) after the run's last reply. `-P`: the working folder
        # is not put on sys.path, so a folder named wirestamp there cannot shadow the package.
        errors = Path(self._workdir.name) / "reflect.err"
        with open(errors, "wb") as stderr:
            self._reflector = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, sys.executable, "-P", "-m",
                 "wirestamp.cli", "reflect", "--bind", self.ip, "--port", str(self.port), "--out",
                 str(self._log_path)], stdout=subprocess.DEVNULL, stderr=stderr,
                start_new_session=True)
        deadline = time.monotonic() + 20
        while not self._up():
            if time.monotonic() > deadline or self._reflector.poll() is not None:
                said = errors.read_text(errors="replace").strip().splitlines()
                raise RuntimeError("wirestamp reflect did not start in the namespace"
                                   + (f": {said[-1]}" if said else ""))
            time.sleep(0.05)

    def _up(self):
        listing = subprocess.run(["ip", "netns", "exec", self.netns, "ss", "-uln"],
                                 capture_output=True, text=True).stdout
        return f"{self.ip}:{self.port}" in listing

    @staticmethod
    def _key(frame):
        signature = regmap.unpack_signature(frame[SIGNATURE_AT:])
        return (signature["stream"], signature["seq"]) if signature else None

    def deliver(self, frame):
        """A frame from the unit (FCS removed) into the kernel."""
        if self._tap is None:
            return
        key = self._key(frame)
        if key is not None:         # stamped first: the kernel takes the frame inside write()
            row = self._rows % TAP_LOG_ROWS
            self.tap_log[row] = (key[0], self._sequences.extend_one(*key),
                                 time.clock_gettime_ns(time.CLOCK_REALTIME), 0)
            self._pending[key] = row
            self._rows += 1
            if len(self._pending) > TAP_LOG_ROWS:
                self._pending.pop(next(iter(self._pending)))
        try:
            os.write(self._tap, frame)
        except (OSError, TypeError):  # closed meanwhile: the run is over
            pass

    def _read_tap(self):
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._tap], [], [], 0.2)
                if not ready:
                    continue
                frame = os.read(self._tap, 2048)
            except (OSError, ValueError, TypeError):    # closed: the run is over
                return
            key = self._key(frame)
            if key is not None and key in self._pending:
                self.tap_log[self._pending.pop(key)]["from_kernel_ns"] = \
                    time.clock_gettime_ns(time.CLOCK_REALTIME)
            try:
                self._inject(frame)
            except OSError:                 # the virtual board has stopped
                return

    def close(self):
        if self._stop.is_set():
            return
        atexit.unregister(self.close)
        self._stop.set()
        if self._reflector and self._reflector.poll() is None:
            self._reflector.send_signal(signal.SIGTERM)    # it flushes its log and exits
            try:
                self._reflector.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._reflector.kill()
        if self._log_path.exists():
            self.reflections = read_log(self._log_path)
        if self._made_netns:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        if self._tap is not None:
            tap, self._tap = self._tap, None
            if getattr(self, "_reader", None):
                self._reader.join(timeout=2)
            os.close(tap)
        self._workdir.cleanup()

    def taps(self):
        """The rows of `tap_log` filled so far (the newest TAP_LOG_ROWS)."""
        return self.tap_log[:min(self._rows, TAP_LOG_ROWS)].copy()


def split_stack_times(reflections, taps):
    """Per packet, by (stream, seq): into the kernel (written to the TAP → kernel receive
    stamp), inbound stack (kernel stamp → application), application, and outbound stack
    (application send → reply read from the TAP), all ns."""
    both, in_taps, in_reflections = np.intersect1d(join_key(taps), join_key(reflections),
                                                   return_indices=True)
    tap, host = taps[in_taps], reflections[in_reflections]
    answered = tap["from_kernel_ns"] != 0
    tap, host = tap[answered], host[answered]
    return {"stream": tap["stream"], "seq": tap["seq"],
            "driver_ns": host["kernel_rx_ns"] - tap["to_kernel_ns"],
            "inbound_ns": host["app_rx_ns"] - host["kernel_rx_ns"],
            "application_ns": host["app_tx_ns"] - host["app_rx_ns"],
            "outbound_ns": tap["from_kernel_ns"] - host["app_tx_ns"]}
