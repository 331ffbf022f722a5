"""The device API: what test scripts use. `wirestamp.open(url)` gives a `Device` over a
transport; only the transport differs between hardware and simulation.

Every request travels in a protocol frame (`wirestamp.protocol`) with a fresh tag. A reply
that is damaged, lost or late is detected (CRC, tag, timeout) and the request is sent again
with the same tag: reads are idempotent, and the device executes a WRITE whose tag repeats the
last one executed for its session (`_Link`) only once, so a retried START starts the streams
once. After `retries` failed attempts a `LinkError` says what happened (a damaged link told
from a silent one); a value is never returned wrong.
"""
import ipaddress
import math
import os
import random
import threading
import time
from collections import deque
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

from . import regmap
from .protocol import (MAX_BURST, RECORD_TAG, SESSIONS, Deframer, ErrorCode, Frame, Op, Usb,
                       encode)
from .records import RECORD_DTYPE, RecordDecoder
from .streams import compile_streams, format_mac, parse_ipv4, unicast_ipv4, unicast_mac

__all__ = ["open", "Device", "LinkError", "ResolveError", "DeviceInfo", "PhyStatus",
           "StreamStats",
           "RECORD_DTYPE",
           "SerialTransport", "CHUNK_RECORDS"]

CHUNK_RECORDS = 65_536      # the most records `Device.records` yields at once
TRIM_LIMIT_PPM = 1000.0     # the most `Device.trim` corrects
# Records that arrive while a request waits for its reply are held for `records()`: every one
# of them, up to this many bytes (4 M records; minutes of the UART's rate), beyond which the
# host's own drops are counted in `records_dropped` and said as the host's.
HELD_RECORD_BYTES = 64 << 20


class LinkError(IOError):
    """The device did not answer correctly after every retry (or is gone)."""


class ResolveError(LookupError):
    """ARP got no answer for an address (RFC 826)."""


class SerialTransport:
    """A serial port through pyserial: `serial:///dev/ttyUSB1?baud=3000000`. The port is
    opened exclusively (TIOCEXCL and an flock, pyserial's `exclusive`): a second process that
    opens it is refused with the holder's name instead of mixing its requests with ours."""

    def __init__(self, port, baud=3_000_000):
        import serial     # pyserial, only needed for this transport
        self._name, self._baud = port, baud
        self.hint = (f"check that {port} is the unit's UART, that the baud rate is the "
                     f"gateware's (3 Mbaud: ?baud=3000000; the adapter must do it), the wiring "
                     f"(adapter TX to the unit's RX, RX to TX, GND), and that the board is "
                     f"flashed (wirestamp flash; docs/bring-up.md)")
        try:
            self._port = serial.serial_for_url(port, baudrate=baud, timeout=0, exclusive=True)
        except (serial.SerialException, ValueError, OSError) as error:
            holder = _holder(port)
            if holder:
                raise LinkError(f"cannot open {port}: it is in use by {holder}; stop that "
                                f"program, or watch the unit from the one that holds it") \
                    from None
            raise LinkError(f"cannot open {port}: {error}; is the adapter plugged in? "
                            f"(ls /dev/ttyUSB* /dev/ttyACM*)") from None

    def write(self, data):
        try:
            self._port.write(data)
        except (OSError, ValueError) as error:   # pyserial's SerialException is an OSError
            raise LinkError(f"serial port: {error}; was the adapter unplugged?") from None

    def read(self, timeout):
        """Whatever bytes arrive within `timeout` seconds (at least one, or b"")."""
        try:
            self._port.timeout = timeout
            first = self._port.read(1)
            return first + self._port.read(self._port.in_waiting) if first else b""
        except (OSError, ValueError) as error:
            raise LinkError(f"serial port: {error}; was the adapter unplugged?") from None

    def reopen(self):
        """The same port opened afresh (after a LinkError: to stop the streams)."""
        with suppress(OSError, ValueError):
            self._port.close()
        return SerialTransport(self._name, self._baud)

    def close(self):
        self._port.close()


def _holder(path):
    """"PROGRAM (pid N)" of another process that has `path` open, or None (Linux /proc)."""
    try:
        target = os.path.realpath(path)
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            if int(fd_dir.parent.name) == os.getpid():
                continue
            try:
                links = [os.readlink(fd) for fd in fd_dir.iterdir()]
                if target in links:
                    command = (fd_dir.parent / "cmdline").read_bytes().split(b"\0")
                    name = " ".join(c.decode(errors="replace") for c in command[:3] if c)
                    return f"{name} (pid {fd_dir.parent.name})"
            except OSError:
                continue
    except OSError:
        pass
    return None


SERIAL_OPTIONS = {"baud", "port", "timeout", "retries"}
LINK_OPTIONS = {"timeout", "retries"}


def _link_options(url, query, options):
    """`timeout` (seconds, finite, above 0) and `retries` (0..100) from the URL's query."""
    if "timeout" in query:
        try:
            timeout = float(query["timeout"])
        except ValueError:
            timeout = math.nan
        if not 0 < timeout <= 3600:
            raise ValueError(f"{url!r}: timeout={query['timeout']} is not a number of seconds "
                             f"in (0, 3600]")
        options.setdefault("timeout", timeout)
    if "retries" in query:
        retries = query["retries"]
        if not retries.isdigit() or int(retries) > 100:
            raise ValueError(f"{url!r}: retries={retries} is not a whole number 0..100")
        options.setdefault("retries", int(retries))


def open(url, **options):   # noqa: A001 (the library's entry point, like io.open)
    """A `Device` for `url`: `serial://PORT?baud=N` (also `serial:///dev/ttyUSB1`),
    `usb://[VID:PID][?serial=S]` (`wirestamp.usb_link`), or the virtual board
    `sim://?dut=echo&delay=3us` (`wirestamp.sim.virtual` lists its options; `link=usb` puts
    it behind the usb:// transport's code through pyusb). The
    query may also set the reply `timeout` in seconds (default 0.5) and `retries` (default 4)."""
    parts = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    _link_options(url, query, options)
    if parts.scheme == "serial":
        unknown = set(query) - SERIAL_OPTIONS
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(SERIAL_OPTIONS))}")
        port = (parts.netloc + parts.path) or query.get("port")
        if not port:
            raise ValueError(f"{url!r}: no serial port given")
        baud = query.get("baud", "3000000")
        if not baud.isdigit() or not 300 <= int(baud) <= 100_000_000:
            raise ValueError(f"{url!r}: baud={baud} is not a baud rate (the gateware's is "
                             f"3000000)")
        return Device(SerialTransport(port, int(baud)), **options)
    if parts.scheme == "usb":
        from .usb_link import UsbTransport
        vid, pid = Usb.VID, Usb.PID
        if parts.netloc:
            try:
                vid, pid = (int(x, 16) for x in parts.netloc.split(":"))
            except ValueError:
                raise ValueError(f"{url!r}: give usb://VID:PID in hex, e.g. "
                                 f"usb://{Usb.VID:04x}:{Usb.PID:04x}") from None
        unknown = set(query) - LINK_OPTIONS - {"serial"}
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                             f"known: retries, serial, timeout")
        return Device(UsbTransport(vid, pid, serial=query.get("serial")), **options)
    if parts.scheme == "sim":
        from .sim.virtual import from_query   # needs the [hdl,sim] extras
        transport = from_query(query)
        if query.get("link") == "usb":        # the usb:// transport's own code, via pyusb
            from .sim.usb_backend import usb_transport
            transport = usb_transport(transport)
        return Device(transport, **options)
    raise ValueError(f"{url!r}: unknown transport (use serial://PORT?baud=N, usb:// or "
                     f"sim://?dut=echo)")


@dataclass(frozen=True)
class DeviceInfo:
    version: str
    clock_hz: int
    streams: int
    segments: int
    sizes: int
    jitter: bool = True         # the image computes jitter (CAPS `jitter`, a build option)


@dataclass(frozen=True)
class PhyStatus:
    """What a PHY's clause 22 registers say (IEEE 802.3 22.2.4): its MDIO address, its
    identifier (PHYID1 << 16 | PHYID2), the link (BMSR bit 2), and the speed and duplex it
    negotiated, resolved from what both ends advertise (28B.3), or forced (BMCR). The unit's
    MAC works at 1000 Mb/s full duplex only."""
    address: int
    id: int
    link: bool
    speed: str | None           # "1000 Mb/s full duplex", ...; None while the link is down

    def as_dict(self):
        return {"phy": self.address, "id": f"{self.id:#010x}",
                "link": "up" if self.link else "down", "speed": self.speed}


def _resolve_speed(regs):
    """Speed and duplex from clause 22 registers {number: value} (28B.3's priority)."""
    bmcr = regs[0]
    if not bmcr & 1 << 12:                        # auto-negotiation off: forced
        speed = {0: 10, 1: 100, 2: 1000}.get((bmcr >> 13 & 1) | (bmcr >> 5 & 2), 1000)
        return f"{speed} Mb/s {'full' if bmcr & 1 << 8 else 'half'} duplex (forced)"
    if regs[9] & 1 << 9 and regs[10] & 1 << 11:
        return "1000 Mb/s full duplex"
    if regs[9] & 1 << 8 and regs[10] & 1 << 10:
        return "1000 Mb/s half duplex"
    common = regs[4] & regs[5]
    for bit, name in ((8, "100 Mb/s full"), (7, "100 Mb/s half"), (6, "10 Mb/s full"),
                      (5, "10 Mb/s half")):
        if common & 1 << bit:
            return name + " duplex"
    return "not negotiated"


@dataclass(frozen=True)
class StreamStats:
    """One stream's receive statistics at one instant (docs/receive.md). `lost` while the
    stream runs is what the hardware has seen skipped; read with `ended=True` after the run
    (its streams finished and its settle time passed) it is everything sent and never
    received: tx_packets − (rx_packets − duplicates)."""
    stream: int
    tx_packets: int
    rx_packets: int
    rx_bytes: int
    lost: int
    reordered: int
    duplicates: int
    latency_min_ns: int | None
    latency_mean_ns: float | None
    latency_max_ns: int | None
    latency_stddev_ns: float | None
    # Over consecutive packets in arrival order (regmap.JITTER_FIELDS; None before two came,
    # or from an image without the jitter unit, `DeviceInfo.jitter`):
    jitter_ns: float | None = None          # RFC 3550 interarrival jitter, at the last packet
    ipdv_min_ns: int | None = None          # RFC 3393 IPDV: the least and greatest change in
    ipdv_max_ns: int | None = None          # latency from one packet to the next,
    ipdv_mean_abs_ns: float | None = None   # and the mean of its magnitude


class _Link:
    """A client of the unit, as its retry guard sees one (protocol.py: a session, whose last
    WRITE tag the unit keeps), kept with the transport so that every `Device` on one transport
    is the same client: its session, drawn at random, the tags in turn, and the tag of the
    last WRITE the unit executed for it. One request at a time (`lock`), so each Device's
    reply reaches it. Processes do not share a link: serial ports are opened exclusively,
    USB interfaces are claimed; a unit reached some other way tells their sessions apart."""

    def __init__(self):
        self.lock = threading.RLock()
        self.session = random.randrange(SESSIONS)
        self.tag = 0
        self.write_tag = None
        self.checked = False        # the unit's contract version, read before the first WRITE


def _link_of(transport):
    link = getattr(transport, "_wirestamp_link", None)
    if link is None:
        link = _Link()
        with suppress(AttributeError):
            transport._wirestamp_link = link
    return link


class Device:
    def __init__(self, transport, timeout=0.5, retries=4, held_records=HELD_RECORD_BYTES):
        self._transport = transport
        self._link = _link_of(transport)
        self._timeout = timeout
        self._retries = retries
        self._deframer = Deframer()
        # Record frames that arrive while waiting for a reply, kept for `records()`.
        self._records = deque()
        self._held, self._held_limit = 0, held_records
        self.records_dropped = 0    # RECORDS frames the host itself dropped (`held_records`)
        self.retried = 0            # requests sent again (a damaged, lost or late reply)
        self._phy_addresses = None  # MDIO addresses of the PHYs (`phys`), once scanned
        self._decoder = RecordDecoder()     # the epoch, kept across `records` calls
        self._info = None                   # `identify()`'s answer, once asked
        # Whether this Device has let go of a snapshot another left held (SNAPSHOT: a
        # process that died inside `snapshot()`), which would make every count read stale.
        self._released = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def transport(self):
        """What carries the bytes (the virtual board's has the wire's truth)."""
        return self._transport

    def close(self):
        self._transport.close()

    def reconnect(self):
        """The same unit over a fresh connection (the transport's `reopen`), after a
        `LinkError`: so that the streams can be stopped when the old link is gone. The link's
        state starts over: no held records, no write tag known."""
        reopen = getattr(self._transport, "reopen", None)
        if reopen is None:
            raise LinkError("this transport cannot open a new connection")
        self._transport = reopen()
        self._link = _link_of(self._transport)
        self._deframer = Deframer()
        self._records.clear()
        self._held = 0
        self._write_tag = None

    # The link: the tags are the transport's (`_Link`).
    @property
    def _tag(self):
        return self._link.tag

    @_tag.setter
    def _tag(self, value):
        self._link.tag = value

    # The tag of the last WRITE the unit executed, when known. The unit acknowledges a WRITE
    # that carries that tag without writing again (a retry), so a new WRITE must never carry
    # it (`_request`). Unknown at first (another process wrote last, before this one opened
    # the link) and after a WRITE that got no reply; the next WRITE is then preceded by one to
    # the read-only ID register, which the unit either executes (ignored) or takes for a
    # retry, and after which its last tag is that WRITE's either way.
    @property
    def _write_tag(self):
        return self._link.write_tag

    @_write_tag.setter
    def _write_tag(self, value):
        self._link.write_tag = value

    def _request(self, frame_for_tag, expect):
        with self._link.lock:
            return self._request_alone(frame_for_tag, expect)

    def _request_alone(self, frame_for_tag, expect):
        if not self._link.checked:  # a READ first: a unit of another major is named
            self._link.checked = True
            try:
                self._check_version()
            except LinkError:
                self._link.checked = False
                raise
        if not self._released:      # before anything else is asked: no snapshot held
            self._released = True
            try:
                self._hold(False)
            except LinkError:
                self._released = False
                raise
        # One tag for every attempt: that is what lets the device recognise a retried WRITE.
        write = expect == Op.WRITE_REPLY
        if write and self._write_tag is None:
            self._write_tag = -1                # (no tag to avoid for this one)
            try:
                self._request(lambda tag: Frame.write(tag, regmap.register("ID").addr, [0],
                                                      self._link.session), Op.WRITE_REPLY)
            except LinkError:
                self._write_tag = None
                raise
        self._tag = (self._tag + 1) % RECORD_TAG            # RECORD_TAG is the device's
        if write and self._tag == self._write_tag:
            self._tag = (self._tag + 1) % RECORD_TAG
        if write:
            self._write_tag = None          # until the unit's reply says it has it
        frame = frame_for_tag(self._tag)
        damaged_before, refused_crc = self._deframer.errors, 0
        for attempt in range(self._retries + 1):
            self.retried += attempt > 0
            self._transport.write(encode(frame))
            deadline = time.monotonic() + self._timeout
            damaged = self._deframer.errors
            while (left := deadline - time.monotonic()) > 0:
                replies = self._deframer.feed(self._transport.read(left))
                if self._deframer.errors != damaged and not replies:
                    break               # something arrived damaged: likely our reply; ask again
                answer = None
                for reply in replies:       # keep every record frame, even after the answer
                    if reply.tag == RECORD_TAG and reply.op == Op.RECORDS:
                        if self._held + len(reply.body) > self._held_limit:
                            self.records_dropped += 1       # the host's own loss, counted
                        else:
                            self._records.append(reply.body)
                            self._held += len(reply.body)
                    elif reply.tag == self._tag and answer is None:
                        answer = reply          # (other tags: late replies to old requests)
                if answer is None:
                    continue
                if answer.op == expect:
                    if write:
                        self._write_tag = self._tag
                    return answer
                if answer.op == Op.ERROR and answer.body == bytes([ErrorCode.CRC]):
                    refused_crc += 1
                    break                       # damaged on the way: send again
                raise LinkError(f"device refused {frame}: {answer}")
        damaged = self._deframer.errors - damaged_before + refused_crc
        if damaged:     # the unit is there and answers: what it says arrives damaged
            raise LinkError(
                f"no valid reply after {self._retries + 1} attempts: {damaged} frames arrived "
                f"damaged (CRC or framing, {refused_crc} of them requests the unit received "
                f"damaged): the link is damaged, not silent; check the cable and its length, "
                f"the baud rate both ends use, and the adapter ({self._deframer.errors} "
                f"damaged frames on this link so far)")
        hint = getattr(self._transport, "hint", "")
        raise LinkError(f"no valid reply after {self._retries + 1} attempts "
                        f"({self._deframer.errors} damaged frames seen)"
                        + (f": {hint}" if hint else ""))

    def _check_version(self):
        """The unit's ID and contract version, read (READ frames are the same in every
        version) before anything is written: WRITEs changed in 2.0, so a unit of another major
        version would refuse or misread them."""
        ident, version = self.read(regmap.register("ID").addr, 2)
        if ident != regmap.ID:
            raise LinkError(f"not a wirestamp unit (ID {ident:#010x})")
        theirs = regmap.unpack_words(regmap.VERSION_FIELDS, [version])
        if theirs["major"] != regmap.VERSION >> 16:
            raise LinkError(
                f"the unit speaks contract {theirs['major']}.{theirs['minor']}, this host "
                f"{regmap.VERSION >> 16}.{regmap.VERSION & 0xFFFF}: build and flash this "
                f"version's image (wirestamp build, wirestamp flash), or use the host of the "
                f"unit's version")

    def read(self, addr, count=1):
        words = []
        while count:
            n = min(count, MAX_BURST)
            reply = self._request(lambda tag: Frame.read(tag, addr, n), Op.READ_REPLY)
            if len(reply.body) != 4 * n:
                raise LinkError(f"reply of {len(reply.body)} bytes to a read of {n} words")
            words += reply.words()
            addr, count = addr + n, count - n
        return words

    def write(self, addr, words):
        words = list(words)
        for i in range(0, len(words), MAX_BURST):
            chunk = words[i:i + MAX_BURST]
            self._request(lambda tag: Frame.write(tag, addr + i, chunk, self._link.session),
                          Op.WRITE_REPLY)

    def read_register(self, name, index=0):
        reg = regmap.register(name)
        return regmap.join_words(self.read(reg.addr + index * reg.words, reg.words))

    def write_register(self, name, value):
        reg = regmap.register(name)
        if not isinstance(value, int) or isinstance(value, bool) or \
                not 0 <= value < 1 << 32 * reg.words:
            raise ValueError(f"{name}: {value!r} is not an integer in 0..{(1 << 32 * reg.words) - 1}")
        self.write(reg.addr, [(value >> (32 * i)) & 0xFFFF_FFFF for i in range(reg.words)])

    # What a test script wants.
    def identify(self):
        ident, version, caps, clock = self.read(regmap.register("ID").addr, 4)
        if ident != regmap.ID:
            raise LinkError(f"not a wirestamp unit (ID {ident:#010x})")
        caps = regmap.unpack_words(regmap.CAPS_FIELDS, [caps])
        version = regmap.unpack_words(regmap.VERSION_FIELDS, [version])
        self._info = DeviceInfo(version=f"{version['major']}.{version['minor']}", clock_hz=clock,
                                streams=caps["streams"], segments=caps["segments"],
                                sizes=caps["sizes"], jitter=bool(caps["jitter"]))
        return self._info

    @property
    def info(self):
        """`identify()`'s answer, asked once."""
        return self._info or self.identify()

    def _stream(self, stream):
        """`stream`, checked against the streams the unit's image carries (CAPS): what a
        unit's registers say of another is not a figure."""
        if not isinstance(stream, int) or not 0 <= stream < self.info.streams:
            raise ValueError(f"stream {stream!r}: the unit carries streams 0.."
                             f"{self.info.streams - 1}")
        return stream

    def set_address(self, mac, ip):
        mac_value, ip_value = unicast_mac(mac, "mac"), unicast_ipv4(ip, "ip")   # checked first
        self.write_register("UNIT_MAC", mac_value)
        self.write_register("UNIT_IP", ip_value)

    def resolve(self, ip, timeout=1.0, attempts=3):
        """The MAC address (a string) that answers ARP for `ip` (RFC 826), asked by the unit
        from its own address (`set_address`); `ResolveError` after `attempts` requests of
        `timeout` seconds each without an answer."""
        target = parse_ipv4(ip, "dst_ip")               # checked before the device is touched
        self.write_register("ARP_TARGET", target)
        heard, sent = self.read_register("ARP_RX"), self.read_register("ARP_TX")
        for _ in range(attempts):
            self.write_register("ARP_CONTROL", 1)       # a request; clears ARP_RESULT.answered
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                result = regmap.unpack_words(regmap.ARP_RESULT_FIELDS,
                                             self.read(regmap.register("ARP_RESULT").addr, 2))
                if result["answered"]:
                    return format_mac(result["mac"])
                time.sleep(0.01)
        unit_mac, unit_ip = self.address()
        heard = self.read_register("ARP_RX") - heard
        sent = self.read_register("ARP_TX") - sent
        if sent and heard == sent:
            # Each request came back, and nothing else: the port is looped back to itself.
            raise ResolveError(
                f"ARP: no answer for {ip}, but the unit heard each of its {sent} requests "
                f"itself: the port is looped back (a loopback plug, or a cable from port to "
                f"port). Nobody answers ARP on a loop: give the MAC the frames should carry, "
                f"e.g. --dst-mac {unit_mac} (the unit's own), and they come straight back")
        raise ResolveError(
            f"ARP: no answer for {ip} after {attempts} requests from the unit ({unit_ip}, "
            f"{unit_mac}): check that {ip} is on the unit's subnet (give the unit an address "
            f"there: --src-ip), the cable and the link, and that the host answers ARP; or "
            f"give its MAC (--dst-mac)")

    def mdio_read(self, phy, reg):
        """PHY `phy`'s clause 22 register `reg` over MDIO (0xFFFF where no PHY answers)."""
        self._mdio(phy=phy, reg=reg)
        return self._mdio_result()

    def mdio_write(self, phy, reg, value):
        self._mdio(phy=phy, reg=reg, data=value, write=1)
        self._mdio_result()

    def _mdio(self, **fields):
        for name in ("phy", "reg", "data"):
            value = fields.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"mdio: {name}={value!r} is not an integer")
        self.write_register("MDIO_COMMAND", regmap.pack_fields(regmap.MDIO_COMMAND_FIELDS,
                                                               fields, "mdio"))

    def _mdio_result(self):
        # A frame takes MDIO_CYCLES (33 us): it has ended by the time a read comes back, but
        # a slow transport (the virtual board) may need a few.
        for _ in range(100):
            result = regmap.unpack_words(regmap.MDIO_RESULT_FIELDS,
                                         [self.read_register("MDIO_RESULT")])
            if not result["busy"]:
                return result["data"]
        raise LinkError("MDIO: the unit's management frame never ended")

    def phys(self):
        """Every PHY that answers on the unit's MDIO bus, as `PhyStatus`. The bus is scanned
        once per Device (32 addresses; a PHY's identifier is neither 0 nor 0xFFFF); BMSR is
        read twice, since its link bit latches low after a drop."""
        if self._phy_addresses is None:
            self._phy_addresses = [a for a in range(32)
                                   if self.mdio_read(a, 2) not in (0, 0xFFFF)]
        found = []
        for address in self._phy_addresses:
            regs = {n: self.mdio_read(address, n) for n in (0, 2, 3, 4, 5, 9, 10)}
            self.mdio_read(address, 1)
            link = bool(self.mdio_read(address, 1) & 1 << 2)
            found.append(PhyStatus(address, regs[2] << 16 | regs[3], link,
                                   _resolve_speed(regs) if link else None))
        return found

    def configure(self, streams):
        """Program `streams` (wirestamp.streams.Stream); ValueError before any write."""
        writes = compile_streams(streams, self.info.streams)
        run = []
        for addr, value in writes + [(None, None)]:
            if run and addr != run[0][0] + len(run):
                self.write(run[0][0], [v for _, v in run])
                run = []
            if addr is not None:
                run.append((addr, value))

    def set_record_sample(self, one_in):
        """Per-packet records: 1 every packet (default), N one packet in N, 0 none. The unit's
        1-in-N count runs on across runs, so R measured packets give R // N records or one
        more. Thinning is for links slower than the packet rate: the statistics and
        histograms still see every packet."""
        if not isinstance(one_in, int) or isinstance(one_in, bool) or not 0 <= one_in < 2**32:
            raise ValueError(f"record_sample: {one_in!r} is not an integer in 0..{2**32 - 1}")
        self.write_register("RECORD_SAMPLE", one_in)

    @property
    def records_undecodable(self):
        """Records read before any epoch mark: left in the unit's FIFO from before this
        Device, they cannot be dated (`records.RecordDecoder`) and are not yielded."""
        return self._decoder.undecodable

    @property
    def damaged_frames(self):
        """Frames from the unit that failed their CRC or framing (each was asked again)."""
        return self._deframer.errors

    def start(self):
        self.write_register("CONTROL", regmap.CONTROL_START)

    def stop(self):
        self.write_register("CONTROL", regmap.CONTROL_STOP)

    def running(self):
        return bool(regmap.unpack_words(regmap.STATUS_FIELDS, [self.read_register("STATUS")])[
            "running"])

    def wait(self, timeout=None, poll=0.05, progress=None):
        """Until every stream has ended; `progress(tx_frames)` is called at each poll."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running():
            if progress:
                progress(self.read_register("TX_FRAMES"))
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("streams still running")
            time.sleep(poll)

    def trim(self, ppm):
        """Correct the timebase for an oscillator `ppm` fast (negative: slow), within
        ±`TRIM_LIMIT_PPM` (a crystal's error is tens of ppm; more is a wrong figure)."""
        if not isinstance(ppm, (int, float)) or isinstance(ppm, bool) or \
                not abs(ppm) <= TRIM_LIMIT_PPM:
            raise ValueError(f"trim: {ppm!r} ppm is not a number within ±{TRIM_LIMIT_PPM} ppm")
        nominal = regmap.NS_PER_CYCLE << regmap.TIME_FRAC_BITS
        self.write_register("TIME_INCREMENT", round(nominal / (1 + ppm * 1e-6)))

    def _hold(self, hold):
        self.write_register("SNAPSHOT", regmap.pack_fields(
            regmap.SNAPSHOT_FIELDS, {"hold": int(hold)}, "SNAPSHOT"))

    @contextmanager
    def snapshot(self):
        """Holds a snapshot of the unit (SNAPSHOT) for the reads inside: TIME, the
        unit-wide counters (`counters`, but RECORD_OVERFLOW), ACTIVE, and every stream's
        `stream_stats` counts and latency figures then belong to one instant (within a
        microsecond), so rates computed from them agree. RECORD_OVERFLOW, the jitter
        figures, histograms and records are read live.
        Let go on leaving, also on an error."""
        self._hold(True)
        try:
            yield self
        except BaseException:
            with suppress(LinkError):   # the error that is on its way says more
                self._hold(False)
            raise
        self._hold(False)

    def stream_stats(self, stream, ended=False):
        """`StreamStats` of `stream`; `ended`: the run is over, so `lost` counts the packets
        after the last one received too (docs/receive.md, "Loss")."""
        self.write_register("STATS_SELECT", self._stream(stream))
        # STATS and JITTER in one READ (JITTER lies just past STATS).
        reg, jitter_reg = regmap.register("STATS"), regmap.register("JITTER")
        words = self.read(reg.addr, jitter_reg.addr + jitter_reg.words - reg.addr)
        row = regmap.unpack_words(regmap.STATS_FIELDS, words[:reg.words], regmap.STATS_SIGNED)
        jitter = regmap.unpack_words(regmap.JITTER_FIELDS, words[jitter_reg.addr - reg.addr:],
                                     regmap.JITTER_SIGNED)
        # An image built without the jitter unit (CAPS) reads JITTER as 0: no figures.
        pairs = jitter["ipdv_pairs"] if self.info.jitter else 0
        tx = self.read_register("STREAM_TX", stream)
        n = row["rx_packets"]
        lost = tx - (n - row["duplicates"]) if ended else row["lost"]
        return StreamStats(
            stream=stream, tx_packets=tx, rx_packets=n, rx_bytes=row["rx_bytes"], lost=lost,
            reordered=row["reordered"], duplicates=row["duplicates"],
            latency_min_ns=row["latency_min"] if n else None,
            latency_mean_ns=row["latency_sum"] / n if n else None,
            latency_max_ns=row["latency_max"] if n else None,
            latency_stddev_ns=stddev(n, row["latency_sum"], row["latency_sumsq"]),
            jitter_ns=jitter["jitter_q4"] / (1 << regmap.JITTER_FRAC_BITS) if pairs else None,
            ipdv_min_ns=jitter["ipdv_min"] if pairs else None,
            ipdv_max_ns=jitter["ipdv_max"] if pairs else None,
            ipdv_mean_abs_ns=jitter["ipdv_abs_sum"] / pairs if pairs else None)

    def histogram(self, stream, buckets=range(regmap.HIST_BUCKETS)):
        """Counts of the stream's latency buckets (see `regmap.hist_lower_ns`): those in
        `buckets` are read, the others left 0 (`run` reads only those between the buckets
        of the stream's exact minimum and maximum, where all its packets are). Two round
        trips per HIST_BURST consecutive buckets: HIST_SELECT, then one READ of
        HIST_COUNTS."""
        self._stream(stream)
        counts = np.zeros(regmap.HIST_BUCKETS, dtype=np.uint64)
        wanted = sorted(set(buckets))
        reg = regmap.register("HIST_COUNTS")
        while wanted:
            first = wanted[0]
            n = min(regmap.HIST_BURST, regmap.HIST_BUCKETS - first, wanted[-1] - first + 1)
            self.write_register("HIST_SELECT", regmap.pack_fields(
                regmap.HIST_SELECT_FIELDS, {"stream": stream, "bucket": first}, "HIST_SELECT"))
            words = np.array(self.read(reg.addr, reg.words * n), dtype=np.uint64)
            counts[first:first + n] = words[0::2] | words[1::2] << np.uint64(32)
            wanted = [b for b in wanted if b >= first + n]
        asked = np.zeros(regmap.HIST_BUCKETS, dtype=bool)
        asked[list(buckets)] = True
        counts[~asked] = 0              # read along in a burst, not asked for
        return counts

    def counters(self):
        """The unit-wide counters, {name: value}. Each run of neighbouring registers is one
        READ burst, which the bridge answers word after word, so the values of a run belong
        to one instant (within a microsecond): TX_FRAMES with TX_BYTES, every RX_ counter
        with the others."""
        regs = [r for r in regmap.REGISTERS
                if r.name.startswith(("RX_", "ARP_", "ICMP_", "REPLY_", "TX_", "RECORD_O",
                                      "SCHED_"))
                and r.access == "r" and r.count == 1 and r.name != "ARP_RESULT"]
        values, run = {}, []
        for reg in sorted(regs, key=lambda r: r.addr) + [None]:
            if run and (reg is None or reg.addr != run[-1].addr + run[-1].words):
                words = self.read(run[0].addr, run[-1].addr + run[-1].words - run[0].addr)
                for r in run:
                    at = r.addr - run[0].addr
                    values[r.name.lower()] = regmap.join_words(words[at:at + r.words])
                run = []
            if reg is not None:
                run.append(reg)
        return values

    def address(self):
        """The unit's own (MAC, IPv4) as strings, as ARP and ICMP answer for it."""
        return (format_mac(self.read_register("UNIT_MAC")),
                str(ipaddress.IPv4Address(self.read_register("UNIT_IP"))))

    def records(self, poll=0.05, alive_every=1.0):
        """Yields numpy arrays of RECORD_DTYPE as records stream in: all that one read of the
        transport brought, in chunks of at most CHUNK_RECORDS (an empty one after each `poll`
        seconds without any), until the caller stops; memory stays bounded. After
        `alive_every` seconds without records the unit is asked for its ID, so a unit that
        is gone or hung raises `LinkError` instead of yielding empty arrays forever."""
        raw = getattr(self._transport, "read_records", None)
        self._request(lambda tag: Frame(tag, Op.RECORDS_START), Op.WRITE_REPLY)
        try:
            quiet_since = time.monotonic()
            while True:
                # Every frame at hand in one chunk: one decode, and one pass of the caller's
                # numpy, per read rather than per frame.
                bodies = list(self._records)
                self._records.clear()
                self._held = 0
                if raw is not None:         # USB: records have an endpoint of their own
                    bodies.append(raw(poll))
                else:
                    bodies += [f.body for f in self._deframer.feed(self._transport.read(poll))
                               if f.tag == RECORD_TAG and f.op == Op.RECORDS]
                bodies = [b for b in bodies if b]
                if bodies:
                    quiet_since = time.monotonic()
                    records = self._decoder.decode(b"".join(bodies))
                    for at in range(0, len(records), CHUNK_RECORDS):
                        yield records[at:at + CHUNK_RECORDS]
                    continue
                if time.monotonic() - quiet_since > alive_every:
                    self.identify()                 # LinkError if nothing answers
                    quiet_since = time.monotonic()
                yield np.empty(0, dtype=RECORD_DTYPE)
        finally:
            self._request(lambda tag: Frame(tag, Op.RECORDS_STOP), Op.WRITE_REPLY)


def stddev(n, total, squares):
    """Population standard deviation from a count and exact integer sums. The subtraction is
    done in integers: in floats, n·Σx² − (Σx)² cancels to nothing at 100 ms latencies."""
    if not n:
        return None
    return math.sqrt((n * squares - total * total) / (n * n))
