"""The unit as a lab instrument: a SCPI server that VISA clients drive (pyvisa, LabVIEW, MATLAB).

Specifications: IEEE 488.2-1992 (the common commands, §10; the standard event status register
and the status byte, §11; definite-length arbitrary blocks, §8.7.9) and SCPI-1999.0 (the
command syntax of vol. 1 §6: short and long forms, numeric suffixes, optional nodes,
compound commands; the error queue and codes of vol. 2 §21.8; NaN as 9.91E37, vol. 1 §7.2.1.5).
The transport is a raw TCP socket, port 5025 by the LXI convention, newline-terminated.

    wirestamp scpi --device URL [--listen 127.0.0.1:5025]

The command tree is `COMMANDS`, and `docs/scpi.md` is generated from it (`wirestamp scpi
--doc`). Streams are numbered from 1, as instruments number their channels (SCPI's numeric
suffix defaults to 1): STReam<n> is the host API's stream n-1, its row n-1 in the unit.

Bad input never reaches the unit: each message unit is parsed and its values checked
(INITiate checks the whole test as `Device.configure` would) before anything is sent, and
any error goes into the error queue, never out as an exception. Several clients may connect
at once (up to `MAX_CLIENTS`). Each has its own error queue and event status (as each VXI-11
link has); the stream settings and the unit are shared, and one command runs at a time, so
one client sees what the other set. *WAI and *OPC? wait without holding the others up, so
ABORt always gets through; when one client aborts the streams another INITiated, that client
finds it in its error queue (-200). What the server takes is bounded (`Server`): clients,
their addresses (`--allow`), their idle time and their lines.
"""
import errno
import ipaddress
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from . import regmap
from .rates import Profile
from .streams import Stream, compile_streams, parse_ipv4, parse_mac

__all__ = ["COMMANDS", "Server", "Session", "markdown", "block", "parse_allow"]

NAN = 9.91e37                   # SCPI's "not a number"
QUEUE = 16                      # error queue length (SCPI asks for at least 2)
MAX_RECORDS = 65_536            # records in one FETCh:RECords? block
MAX_CLIENTS = 16                # clients at once (LXI instruments take a handful)
IDLE_S = 600.0                  # a client silent this long is closed
WAIT_POLL_S = 0.02              # *WAI and *OPC? look at the unit this often
ERRORS = {
    0: "No error", -100: "Command error", -102: "Syntax error", -104: "Data type error",
    -108: "Parameter not allowed", -109: "Missing parameter", -113: "Undefined header",
    -200: "Execution error", -221: "Settings conflict", -222: "Data out of range",
    -224: "Illegal parameter value", -240: "Hardware error", -350: "Queue overflow",
}
# Standard event status register bits (IEEE 488.2 §11.5.1.1)
OPC, QYE, DDE, EXE, CME = 0x01, 0x04, 0x08, 0x10, 0x20
# Status byte bits (§11.2): error queue not empty (SCPI), event status, master summary
EAV, ESB, MSS = 0x04, 0x20, 0x40


class ScpiError(Exception):
    def __init__(self, code, detail=""):
        super().__init__(detail)
        self.code, self.detail = code, detail


def block(data):
    """An IEEE 488.2 definite-length arbitrary block: #, the digits of the length's digits,
    the length, the bytes."""
    length = str(len(data))
    return f"#{len(length)}{length}".encode() + data


@dataclass(frozen=True)
class Command:
    header: str         # e.g. "SOURce:STReam#:DESTination:ADDRess"; # a numeric suffix
    query: object       # handler(session, n, args) -> str or bytes, or None: no query form
    setter: object      # handler(session, n, args) -> None, or None: query only
    params: str         # what the setting takes (for the docs)
    doc: str


def _mnemonics(header):
    """[(long, short, optional, suffixed)] of a header pattern. The short form is the
    capitals of the long one (SCPI vol. 1 §6.2.1)."""
    nodes = []
    for part in re.findall(r"\[:[^\]]+\]|:?[^:\[]+", header):
        optional = part.startswith("[")
        name = part.strip("[]:")
        suffixed = name.endswith("#")
        name = name.rstrip("#")
        nodes.append((name.upper(), "".join(c for c in name if c.isupper() or c.isdigit()),
                      optional, suffixed))
    return nodes


def _match(nodes, tokens):
    """The numeric suffix (or 1) when `tokens` (upper case) spell the header `nodes`,
    else None."""
    if not nodes:
        return 1 if not tokens else None
    (long, short, optional, suffixed), rest = nodes[0], nodes[1:]
    if tokens:
        match = re.fullmatch(r"([A-Z]+)(\d*)", tokens[0])
        if match and match[1] in (long, short) and (suffixed or not match[2]):
            found = _match(rest, tokens[1:])
            if found is not None:
                return int(match[2]) if suffixed and match[2] else found
    return _match(rest, tokens) if optional else None


# Parameter decoding: each raises ScpiError with the standard code.
def _one(args):
    if not args:
        raise ScpiError(-109)
    if len(args) > 1:
        raise ScpiError(-108)
    return _unquote(args[0])


def _unquote(text):
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _finite(text, what):
    """`text` as a float; SCPI's data errors for what is not a finite number: -104 for text,
    -222 for an infinity (out of any range), -224 for NaN (not a legal value)."""
    try:
        value = float(text)
    except ValueError:
        raise ScpiError(-104, f"{what}: {text!r} is not a number") from None
    if math.isnan(value):
        raise ScpiError(-224, f"{what}: {text} is not a number")
    if math.isinf(value):
        raise ScpiError(-222, f"{what}: {text} is out of range")
    return value


def _integer(text, low, high, what):
    value = _finite(text, what)
    if value != int(value):
        raise ScpiError(-224, f"{what}: {text} is not a whole number")
    if not low <= value <= high:
        raise ScpiError(-222, f"{what}: {text} not in {low}..{high}")
    return int(value)


def _boolean(text):
    word = text.upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise ScpiError(-224, f"{text!r} is not ON, OFF, 1 or 0")


class Session:
    """One client's view: its error queue and event status; the unit and the stream
    settings are the server's (`shared`)."""

    def __init__(self, shared, number=0):
        self.shared = shared
        self.number = number        # the server's count of its clients, from 1
        self.errors, self.esr, self.ese, self.sre = [], 0, 0, 0
        self.opc_armed = False

    # The error queue (SCPI vol. 2 §21.8): oldest first; when full the newest becomes -350.
    def error(self, code, detail=""):
        self.esr |= CME if -200 < code <= -100 else EXE if -300 < code <= -200 else \
            DDE if -400 < code <= -300 else QYE if code <= -400 else 0
        detail = detail.replace('"', "'")
        entry = f'{code},"{ERRORS[code]}' + (f"; {detail}" if detail else "") + '"'
        if len(self.errors) >= QUEUE:
            self.errors[-1] = f'-350,"{ERRORS[-350]}"'
        else:
            self.errors.append(entry)

    def status_byte(self):
        stb = (EAV if self.errors else 0) | (ESB if self.esr & self.ese else 0)
        return stb | (MSS if stb & self.sre else 0)

    def execute(self, line):
        """Run one program message (a line, without its newline): its replies, joined as
        IEEE 488.2 response units (`;`), as bytes with the newline; b"" when none."""
        replies, path = [], []
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            self.error(-102, "bytes that are not ASCII")
            return b""
        for unit in _split(text, ";"):
            unit = unit.strip()
            if not unit:
                continue
            try:
                reply, path = self._unit(unit, path)
            except ScpiError as error:
                self.error(error.code, error.detail)
                continue
            except Exception as error:      # noqa: BLE001 (the unit or its link failed)
                self.error(-240, f"{type(error).__name__}: {error}")
                continue
            if reply is not None:
                replies.append(reply if isinstance(reply, bytes) else reply.encode())
        return b";".join(replies) + b"\n" if replies else b""

    def _unit(self, unit, path):
        match = re.fullmatch(r"(\*?[A-Za-z0-9:\[\]_]+)(\?)?(?:\s+(.*))?", unit, re.S)
        if not match:
            raise ScpiError(-102, f"{unit[:40]!r}")
        header, query, rest = match[1], bool(match[2]), (match[3] or "").strip()
        args = [a.strip() for a in _split(rest, ",")] if rest else []
        command, n, new_path = _find(header, path)
        handler = command.query if query else command.setter
        if handler is None:
            raise ScpiError(-113, f"{header} has no {'query' if query else 'setting'} form")
        if query and args:
            raise ScpiError(-108, "a query takes no parameters")
        if handler in (_wai, _opc_query):       # they take the lock a moment at a time
            return handler(self, n, args), new_path
        with self.shared.lock:
            return handler(self, n, args), new_path


def _find(header, path):
    """(command, numeric suffix, the path the next header is relative to) of `header`. A
    header without a leading colon is first tried below the last one's path (SCPI vol. 1
    §6.2.4, compound commands), then from the root; common commands keep the path."""
    if header.startswith("*"):
        for command in COMMANDS:
            if command.header == header.upper():
                return command, 1, path
        raise ScpiError(-113, header)
    tokens = header.lstrip(":").upper().split(":")
    prefixes = [[]] if header.startswith(":") or not path else [path, []]
    for prefix in prefixes:
        for command in COMMANDS:
            if command.header.startswith("*"):
                continue
            n = _match(_mnemonics(command.header), prefix + tokens)
            if n is not None:
                return command, n, (prefix + tokens)[:-1]
    raise ScpiError(-113, header)


def _split(text, separator):
    """`text` split at `separator` outside quotes."""
    parts, current, quote = [], [], None
    for c in text:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    parts.append("".join(current))
    return parts


class Shared:
    """The server's state: the unit, the stream settings (None: undefined), the lock."""

    def __init__(self, device, board="unit"):
        self.device, self.board = device, board
        self.lock = threading.RLock()
        self.started_by = None          # the session whose INITiate runs now
        self.running_endless = False    # ... with a stream that has no end
        self.reset()

    def reset(self):
        self.streams = [None] * self.device.info.streams   # as many as the unit carries
        self.record_sample = 1


def _stream(session, n):
    carried = len(session.shared.streams)
    if not 1 <= n <= carried:
        raise ScpiError(-113, f"STReam{n}: the unit's streams are 1..{carried}")
    return n - 1


def _setting(field, parse):
    """A setting of STReam<n>: sets `field` (parsed and checked) on its `Stream`."""
    def setter(session, n, args):
        row = _stream(session, n)
        value = parse(args)
        current = session.shared.streams[row]
        if current is None:
            raise ScpiError(-221, f"STReam{n} is not defined (set its DESTination:ADDRess)")
        candidate = replace(current, **{field: value})
        _check(candidate)
        session.shared.streams[row] = candidate

    def query(session, n, args):
        current = session.shared.streams[_stream(session, n)]
        if current is None:
            raise ScpiError(-221, f"STReam{n} is not defined (set its DESTination:ADDRess)")
        value = getattr(current, field)
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        if field == "rate":
            return str(value) if not isinstance(value, (int, float)) else f"{value:g}"
        return f'"{value}"' if isinstance(value, str) else "9.91E37" if value is None \
            else f"{value:g}" if isinstance(value, float) else str(value)
    return query, setter


def _check(stream):
    """`Stream.validate`'s checks and the line rate's, with SCPI's codes."""
    try:
        compile_streams([stream])
    except ValueError as error:
        conflict = str(error).startswith("duration")    # a duration with a profile
        raise ScpiError(-221 if conflict else -222, str(error)) from None


def _address(parse, what):
    """A parameter that `parse` (streams.parse_ipv4 or parse_mac) accepts, kept as text."""
    def check(args):
        text = _one(args)
        try:
            parse(text, what)
        except ValueError as error:
            raise ScpiError(-224, str(error)) from None
        return text
    return check


_ip, _mac = _address(parse_ipv4, "address"), _address(parse_mac, "mac")


def _number_or_text(args, what, unit, parse):
    """A plain number (finite, above 0), or text in the CLI's forms for `parse`."""
    text = _one(args)
    try:
        float(text)
    except ValueError:
        try:
            return parse(text)
        except ValueError as error:
            raise ScpiError(-224, str(error)) from None
    value = _finite(text, what)
    if value <= 0:
        raise ScpiError(-222, f"{what}: {text} {unit}")
    return value


def _rate(args):
    """RATE: pps as a number, or the CLI's strings (1.5kpps, 100mbps, line)."""
    from .units import parse_rate
    value = _number_or_text(args, "rate", "pps", parse_rate)
    return int(value) if isinstance(value, float) and value == int(value) else value


def _profile(args):
    rate = _rate(args)
    if not isinstance(rate, Profile):
        raise ScpiError(-224, "a profile is ramp:A-B/T or updown:PEAK/T (RATE sets a constant)")
    return rate


def _sizes(args):
    if not args:
        raise ScpiError(-109)
    sizes = [_integer(a, regmap.MIN_FRAME, regmap.MAX_FRAME, "frame size") for a in args]
    if len(sizes) > regmap.SIZES:
        raise ScpiError(-108, f"at most {regmap.SIZES} sizes")
    return sizes[0] if len(sizes) == 1 else sizes


def _duration(args):
    from .units import parse_duration
    return float(_number_or_text(args, "duration", "s", parse_duration))


def _port(args):
    return _integer(_one(args), 0, 0xFFFF, "port")


def _count(args):
    return _integer(_one(args), 0, (1 << regmap.COUNT_BITS) - 1, "count")


# Handlers of the tree and the common commands.
def _idn(session, n, args):
    from . import __version__
    info = session.shared.device.identify()
    return f"wirestamp,{session.shared.board},0,{__version__}-contract{info.version}"


def _rst(session, n, args):
    _abort(session, n, args)
    session.shared.reset()
    session.shared.device.set_record_sample(1)


def _cls(session, n, args):
    session.errors, session.esr, session.opc_armed = [], 0, False


def _wait(session):
    """Until every stream has ended, polling the unit under the lock a moment at a time, so
    that other clients (ABORt above all) go on being served meanwhile. A test without end
    (a constant rate with neither COUNt nor DURation) is refused: it would never end."""
    shared = session.shared
    with shared.lock:
        endless = shared.running_endless
    if endless:
        raise ScpiError(-221, "the streams run without end (no COUNt or DURation): ABORt "
                              "ends them; *WAI and *OPC? would wait forever")
    while True:
        with shared.lock:
            if not shared.device.running():
                return
        time.sleep(WAIT_POLL_S)


def _opc_query(session, n, args):
    _wait(session)
    return "1"


def _opc(session, n, args):
    session.opc_armed = True


def _wai(session, n, args):
    _wait(session)


def _esr(session, n, args):
    if session.opc_armed and not session.shared.device.running():
        session.esr |= OPC
        session.opc_armed = False
    value, session.esr = session.esr, 0
    return str(value)


def _register(name, low=0, high=255):
    def query(session, n, args):
        return str(getattr(session, name))

    def setter(session, n, args):
        setattr(session, name, _integer(_one(args), low, high, f"*{name.upper()}"))
    return query, setter


def _stb(session, n, args):
    return str(session.status_byte())


def _error_next(session, n, args):
    return session.errors.pop(0) if session.errors else '0,"No error"'


def _error_count(session, n, args):
    return str(len(session.errors))


def _state(session, n, args):
    row = _stream(session, n)
    if _boolean(_one(args)):
        if session.shared.streams[row] is None:
            raise ScpiError(-221, f"STReam{n}: set its DESTination:ADDRess first")
    else:
        session.shared.streams[row] = None


def _state_query(session, n, args):
    return "1" if session.shared.streams[_stream(session, n)] is not None else "0"


def _destination(session, n, args):
    row = _stream(session, n)
    address = _ip(args)
    current = session.shared.streams[row] or Stream(dst_ip=address)
    session.shared.streams[row] = replace(current, dst_ip=address)


def _init(session, n, args):
    shared = session.shared
    streams = shared.streams
    last = max((i for i, s in enumerate(streams) if s is not None), default=-1)
    if last < 0:
        raise ScpiError(-221, "no stream defined (SOURce:STReam<n>:DESTination:ADDRess)")
    missing = [i + 1 for i in range(last) if streams[i] is None]
    if missing:
        raise ScpiError(-221, f"streams are rows in order: define STReam{missing[0]} too")
    test = streams[:last + 1]
    try:
        compile_streams(test)       # every check, before the unit is touched
    except ValueError as error:
        raise ScpiError(-222, str(error)) from None
    shared.device.configure(test)
    shared.device.set_record_sample(shared.record_sample)
    shared.device.start()
    shared.started_by = session
    shared.running_endless = any(not s.count and s.duration is None and
                                 not isinstance(s.rate, Profile) for s in test)


def _abort(session, n, args):
    shared = session.shared
    shared.device.stop()
    starter, shared.started_by, shared.running_endless = shared.started_by, None, False
    if starter is not None and starter is not session:   # tell the client whose test it was
        starter.error(-200, f"the streams INITiated here were aborted by client "
                            f"{session.number}")


def _stats(session, n, args):
    """tx, rx, lost, reordered, duplicates, latency min, mean, max, stddev (ns), jitter (ns)"""
    device = session.shared.device
    row = device.stream_stats(_stream(session, n), ended=not device.running())
    values = [row.tx_packets, row.rx_packets, row.lost, row.reordered, row.duplicates,
              row.latency_min_ns, row.latency_mean_ns, row.latency_max_ns,
              row.latency_stddev_ns, row.jitter_ns]
    return ",".join(_number(v) for v in values)


def _number(value):
    """An exact figure: integers as they are, floats to the last digit that round-trips
    (the unit's means and jitter are exact binary fractions), None as NaN."""
    if value is None:
        return "9.91E37"
    return str(int(value)) if float(value) == int(value) else repr(float(value))


def _measure(attribute):
    def query(session, n, args):
        device = session.shared.device
        row = device.stream_stats(_stream(session, n), ended=not device.running())
        return _number(getattr(row, attribute))
    return query


def _histogram(session, n, args):
    from .run import stream_histogram
    device = session.shared.device
    counts = stream_histogram(device, device.stream_stats(_stream(session, n)))
    return block(counts.astype("<u8").tobytes())


def _records(session, n, args):
    from .records import RECORD_DTYPE
    device, chunks, total, quiet = session.shared.device, [], 0, 0
    records = device.records(poll=0.02)
    try:
        # Until the unit's FIFO is empty and a poll after that brought none (the records
        # on their way over the link), or the block is full.
        for chunk in records:
            chunks.append(chunk)
            total += len(chunk)
            if total >= MAX_RECORDS:
                break
            quiet = 0 if len(chunk) else quiet + 1
            if quiet and not device.read_register("RECORD_LEVEL"):
                if quiet > 1:
                    break
    finally:
        records.close()
    # Every record read goes out: those of the last chunk past MAX_RECORDS too, since the
    # unit's FIFO no longer has them.
    rows = np.concatenate(chunks) if chunks else np.empty(0, dtype=RECORD_DTYPE)
    return block(rows.astype(RECORD_DTYPE.newbyteorder("<")).tobytes())


def _sample(session, n, args):
    session.shared.record_sample = _integer(_one(args), 0, 2**32 - 1, "record sample")


def _unit_address(session, n, args):
    mac, _ = session.shared.device.address()
    session.shared.device.set_address(mac, _ip(args))


def _unit_address_query(session, n, args):
    return f'"{session.shared.device.address()[1]}"'


def _running(session, n, args):
    return "1" if session.shared.device.running() else "0"


def _stream_setting(header, field, parse, params, doc):
    query, setter = _setting(field, parse)
    return Command(header, query, setter, params, doc)


_STR = "SOURce:STReam#:"
COMMANDS = [
    Command("*IDN", _idn, None, "(none)", "wirestamp,<board>,0,<host version>-contract<contract version>"),
    Command("*RST", None, _rst, "(none)", "Stops the streams, forgets every stream's settings, records every packet."),
    Command("*CLS", None, _cls, "(none)", "Clears the error queue and the event status register."),
    Command("*OPC", _opc_query, _opc, "(none)", "Query: waits until every stream has ended, then 1. Setting: *ESR? bit 0 once they have."),
    Command("*WAI", None, _wai, "(none)", "Waits until every stream has ended."),
    Command("*ESR", _esr, None, "(none)", "The standard event status register, then clears it: bit 0 operation complete, 2 query error, 3 device error, 4 execution error, 5 command error."),
    Command("*ESE", *_register("ese"), "0-255", "Event status enable: which *ESR? bits set *STB? bit 5."),
    Command("*SRE", *_register("sre"), "0-255", "Service request enable: which *STB? bits set bit 6."),
    Command("*STB", _stb, None, "(none)", "Status byte: bit 2 the error queue is not empty, bit 5 an enabled event, bit 6 the summary."),
    Command("SYSTem:ERRor[:NEXT]", _error_next, None, "(none)", 'The oldest error, `code,"text; detail"`, or `0,"No error"`.'),
    Command("SYSTem:ERRor:COUNt", _error_count, None, "(none)", "Errors in the queue."),
    Command("SYSTem:VERSion", lambda *_: "1999.0", None, "(none)", "The SCPI version."),
    Command("SOURce:ADDRess", _unit_address_query, _unit_address, "IPv4 string", "The unit's own IPv4 address (ARP and ICMP answer for it)."),
    Command(_STR + "DESTination:ADDRess", _setting("dst_ip", _ip)[0], _destination, "IPv4 string", "Defines stream <n> (1 to the streams the unit carries: CAPS, 16 or 8) and sets where it goes."),
    _stream_setting(_STR + "DESTination:PORT", "dst_port", _port, "0-65535", "UDP destination port (default 5001)."),
    _stream_setting(_STR + "DESTination:MAC", "dst_mac", _mac, "MAC string", "Destination MAC (default broadcast)."),
    _stream_setting(_STR + "SOURce:ADDRess", "src_ip", _ip, "IPv4 string", "The stream's source IPv4 address."),
    _stream_setting(_STR + "SOURce:PORT", "src_port", _port, "0-65535", "UDP source port (default 5000)."),
    _stream_setting(_STR + "SIZE", "frame_size", _sizes, "64-1518[,...]", "Frame size with FCS; up to 8 sizes, cycled (IMIX)."),
    _stream_setting(_STR + "RATE", "rate", _rate, "pps, or 1.5kpps, 100mbps, line", "A constant rate; above line rate is -222."),
    _stream_setting(_STR + "PROFile", "rate", _profile, "ramp:A-B/T or updown:PEAK/T", "A rate profile instead of a constant rate."),
    _stream_setting(_STR + "COUNt", "count", _count, "0-2^48-1", "Packets to send (0: until the duration or the profile ends)."),
    _stream_setting(_STR + "DURation", "duration", _duration, "seconds, or 250ms, 10s", "How long a constant rate lasts."),
    Command(_STR + "STATe", _state_query, _state, "ON|OFF", "Query: 1 when stream <n> is defined. OFF forgets it."),
    Command("SENSe:RECord:SAMPle", lambda s, n, a: str(s.shared.record_sample), _sample, "0-4294967295", "Per-packet records: 1 every packet, N one in N, 0 none."),
    Command("INITiate[:IMMediate]", None, _init, "(none)", "Checks the streams 1..k (all defined, within line rate together), programs and starts them. Clears the statistics."),
    Command("ABORt", None, _abort, "(none)", "Stops every stream."),
    Command("STATus:OPERation:CONDition", _running, None, "(none)", "1 while a stream is running."),
    Command("FETCh:STReam#:STATistics", _stats, None, "(none)", "tx, rx, lost, reordered, duplicates, latency min, mean, max, stddev (ns), jitter (ns); 9.91E37 for none."),
    Command("FETCh:STReam#:HISTogram", _histogram, None, "(none)", f"Block: {regmap.HIST_BUCKETS} little-endian uint64 bucket counts (regmap.hist_lower_ns gives bucket edges)."),
    Command("FETCh:RECords", _records, None, "(none)", f"Block: the records waiting (from {MAX_RECORDS:,} on, the rest wait for the next fetch), little-endian rows of RECORD_DTYPE ({', '.join(f'{n} u{w}' for n, w in regmap.PACKET_FIELDS)})."),
    Command("MEASure:STReam#:LATency[:MEAN]", _measure("latency_mean_ns"), None, "(none)", "Mean latency, ns, of the current run."),
    Command("MEASure:STReam#:LATency:MINimum", _measure("latency_min_ns"), None, "(none)", "Minimum latency, ns."),
    Command("MEASure:STReam#:LATency:MAXimum", _measure("latency_max_ns"), None, "(none)", "Maximum latency, ns."),
    Command("MEASure:STReam#:JITTer", _measure("jitter_ns"), None, "(none)", "RFC 3550 interarrival jitter, ns."),
    Command("MEASure:STReam#:LOSS", _measure("lost"), None, "(none)", "Packets lost."),
    Command("MEASure:STReam#:RECeived", _measure("rx_packets"), None, "(none)", "Packets received."),
]


def markdown():
    """docs/scpi.md's command table, from `COMMANDS`."""
    lines = ["| header | forms | the command takes | what it does |", "|---|---|---|---|"]
    for c in COMMANDS:
        forms = ", ".join(f for f, there in (("query", c.query), ("command", c.setter)) if there)
        doc = c.doc.replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| `{c.header.replace('#', '<n>')}` | {forms} | "
                     f"{'' if c.setter is None else c.params} | {doc} |")
    return "\n".join(lines) + "\n"


class Server:
    """A raw-socket SCPI server on (`host`, `port`) for `device`; `serve_forever()` takes a
    thread per client; `close()` stops it.

    What it takes is bounded: at most `max_clients` at once (another is closed at once, and
    counted in `refused`), only from the networks in `allow` (`ipaddress` networks; None:
    any), a client silent for `idle` seconds, or with a line unfinished `idle` seconds after
    it began, is closed, and a line longer than `max_line`
    bytes is discarded whole, up to its newline (one -102 error), never run in part. Memory
    is one buffer of at most `max_line` + 64 KiB per client. When the process runs out of
    file descriptors, accepting waits and goes on; it never ends the server."""

    def __init__(self, device, host="127.0.0.1", port=5025, board="unit", max_line=1 << 16,
                 max_clients=MAX_CLIENTS, idle=IDLE_S, allow=None):
        self.shared = Shared(device, board)
        self.max_line, self.max_clients, self.idle = max_line, max_clients, idle
        self.allow = allow
        self.socket = socket.create_server((host, port), reuse_port=False)
        self.address = self.socket.getsockname()
        self._closing = False
        self._clients = threading.BoundedSemaphore(max_clients)
        self.served = self.refused = self.outsiders = self.accept_errors = 0

    def serve_forever(self):
        while not self._closing:
            try:
                client, peer = self.socket.accept()
            except OSError as error:
                if self._closing:
                    break
                self.accept_errors += 1     # EMFILE, ENFILE, ENOBUFS: wait for one to close
                if error.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                                       errno.ENOMEM, errno.ECONNABORTED, errno.EINTR):
                    raise
                time.sleep(0.1)
                continue
            if self.allow is not None and not _allowed(peer[0], self.allow):
                self.outsiders += 1
                client.close()
                continue
            if not self._clients.acquire(blocking=False):
                self.refused += 1
                client.close()
                continue
            self.served += 1
            threading.Thread(target=self._serve, args=(client, self.served),
                             daemon=True).start()

    def _serve(self, client, number):
        try:
            self._converse(client, Session(self.shared, number))
        finally:
            client.close()
            self._clients.release()

    def _converse(self, client, session):
        buffer = bytearray()
        discarding = False          # inside a line that grew past max_line: drop to its end
        begun = None                # when the unfinished line began
        while True:
            # Silent for `idle`, or a line unfinished `idle` after it began (a slowloris
            # client's byte at a time): closed.
            left = self.idle if begun is None else self.idle - (time.monotonic() - begun)
            if left <= 0:
                return
            client.settimeout(left)
            try:
                data = client.recv(65536)
            except OSError:             # the timeout, or the client's end
                return
            if not data:
                return                  # gone; a partial line is dropped, nothing run
            if begun is None:
                begun = time.monotonic()
            if discarding:
                end = data.find(b"\n")
                if end < 0:
                    continue
                data, discarding = data[end + 1:], False
            buffer += data
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[:end + 1]
                reply = session.execute(line.rstrip(b"\r"))
                if reply:
                    try:
                        client.sendall(reply)
                    except OSError:
                        return
            if not buffer and not discarding:
                begun = None
            if len(buffer) > self.max_line:
                with self.shared.lock:
                    session.error(-102, f"a line longer than {self.max_line} bytes, discarded")
                buffer.clear()
                discarding = True

    def close(self):
        self._closing = True
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.socket.close()


def _allowed(address, networks):
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def parse_allow(text):
    """`--allow`'s networks, from "192.168.1.0/24,10.0.0.5"; ValueError naming a bad one."""
    networks = []
    for item in text.split(","):
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--allow: {item.strip()!r} is not a network like "
                             f"192.168.1.0/24 or an address") from None
    return networks
