"""Stream configuration: validation, and translation into register writes.

Everything is checked here, before anything is written to a device: a bad field raises a
`ValueError` that names it. The result of `compile_streams` is the list of (address, word)
writes that programs the stream and segment tables, the same for hardware and simulation.
"""
import ipaddress
import re
from dataclasses import dataclass
from fractions import Fraction

from . import regmap
from .rates import LINE, Constant, Profile, compile_profile

__all__ = ["Stream", "compile_streams", "parse_mac", "format_mac", "parse_ipv4", "unicast_mac",
           "unicast_ipv4", "line_rate_pps", "TestFile", "load", "parse"]


_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")


def parse_mac(text, field_name="mac"):
    """Six ASCII hex pairs joined by one kind of separator, ':' or '-' (IEEE 802 notation);
    anything else is refused rather than guessed at."""
    if not isinstance(text, str) or not _MAC.fullmatch(text):
        raise ValueError(f"{field_name}: {text!r} is not a MAC address like 02:00:00:00:00:01")
    return int(text[0:2] + text[3:5] + text[6:8] + text[9:11] + text[12:14] + text[15:17], 16)


def format_mac(value):
    """A 48-bit MAC as IEEE 802 notation, 02:77:73:00:00:01 (`parse_mac`'s inverse)."""
    digits = f"{value:012x}"
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def parse_ipv4(text, field_name="ip"):
    try:
        return int(ipaddress.IPv4Address(str(text)))
    except ValueError:
        raise ValueError(f"{field_name}: {text!r} is not an IPv4 address") from None


def unicast_mac(text, field_name="mac"):
    """A MAC a station may have as its own: not a group address (the I/G bit, IEEE 802 8.2:
    broadcast and multicast) and not all zeros."""
    value = parse_mac(text, field_name)
    if value >> 40 & 1 or value == 0:
        raise ValueError(f"{field_name}: {text} is a {'group' if value >> 40 & 1 else 'null'} "
                         f"address; a station's own MAC is unicast, like 02:77:73:00:00:01")
    return value


def unicast_ipv4(text, field_name="ip"):
    """An IPv4 address a station may have as its own (RFC 1122 3.2.1.3): not 0.0.0.0, not
    broadcast, multicast, loopback or reserved."""
    value = parse_ipv4(text, field_name)
    address = ipaddress.IPv4Address(value)
    if address.is_unspecified or address.is_multicast or address.is_loopback or \
            address.is_reserved or value == 0xFFFF_FFFF:
        raise ValueError(f"{field_name}: {text} is not a unicast address a station may have "
                         f"(like 192.168.0.2)")
    return value


def line_rate_pps(frame_sizes):
    """Back-to-back frame rate for frames cycling through `frame_sizes` (FCS included)."""
    mean = Fraction(sum(frame_sizes), len(frame_sizes))
    return regmap.CLOCK_HZ / (mean + regmap.FRAME_OVERHEAD)


def _int_field(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name}: {value!r} is not an integer in {low}..{high}")
    return value


@dataclass
class Stream:
    """One UDP stream. `rate` is pps, "line", or a profile from `wirestamp.rates`;
    `count` packets (0: no limit) and/or `duration` seconds (for a constant rate)."""
    dst_ip: str
    dst_port: int = 5001
    src_ip: str = "192.168.0.2"
    src_port: int = 5000
    dst_mac: str = "ff:ff:ff:ff:ff:ff"
    src_mac: str = "02:77:73:00:00:01"
    frame_size: int | list = 64
    rate: object = 1000
    count: int = 0
    duration: float | None = None
    ttl: int = 64
    dscp: int = 0

    @property
    def sizes(self):
        sizes = self.frame_size if isinstance(self.frame_size, (list, tuple)) else [self.frame_size]
        if not 1 <= len(sizes) <= regmap.SIZES:
            raise ValueError(f"frame_size: a list of 1..{regmap.SIZES} sizes, got {len(sizes)}")
        for size in sizes:
            _int_field("frame_size", size, regmap.MIN_FRAME, regmap.MAX_FRAME)
        return list(sizes)

    @property
    def profile(self):
        rate = self.rate
        if isinstance(rate, Profile):
            if self.duration is not None:
                raise ValueError("duration: give it only with a constant rate; "
                                 "a profile has its own")
            return rate
        if rate == LINE:
            rate = line_rate_pps(self.sizes)
        return Constant(rate, self.duration)

    def bytes_per_second(self, pps):
        """Line occupancy (preamble and gap included) at `pps`, in byte times per second."""
        mean = Fraction(sum(self.sizes), len(self.sizes))
        return pps * (mean + regmap.FRAME_OVERHEAD)

    def validate(self):
        self.sizes
        profile = self.profile
        if profile.peak == 0:
            raise ValueError("rate: 0 pps never sends a packet")
        if self.bytes_per_second(profile.peak) > regmap.CLOCK_HZ:
            raise ValueError(f"rate: {float(profile.peak):.1f} pps of {self.sizes} byte frames "
                             f"is above line rate ({float(line_rate_pps(self.sizes)):.1f} pps)")
        _int_field("count", self.count, 0, (1 << regmap.COUNT_BITS) - 1)
        _int_field("dst_port", self.dst_port, 0, 0xFFFF)
        _int_field("src_port", self.src_port, 0, 0xFFFF)
        _int_field("ttl", self.ttl, 1, 255)
        _int_field("dscp", self.dscp, 0, 63)
        return dict(
            dst_mac=parse_mac(self.dst_mac, "dst_mac"),
            src_mac=unicast_mac(self.src_mac, "src_mac"),
            dst_ip=parse_ipv4(self.dst_ip, "dst_ip"), src_ip=unicast_ipv4(self.src_ip, "src_ip"),
        )


def compile_streams(streams, rows=regmap.MAX_STREAMS):
    """[(word address, value)] that program `streams` into stream rows 0.. and the segment
    table of a unit that carries `rows` streams (CAPS), disabling the rest. Raises
    ValueError, before anything is written, for any bad field."""
    streams = list(streams)
    if len(streams) > rows:
        raise ValueError(f"streams: {len(streams)} given, the unit carries {rows}")
    addresses = [stream.validate() for stream in streams]    # parsed MACs and IPs
    load = sum(s.bytes_per_second(s.profile.peak) for s in streams)
    if load > regmap.CLOCK_HZ:
        raise ValueError(f"rate: the streams together need {float(load) / regmap.CLOCK_HZ:.1%} "
                         f"of the line at their peaks")
    writes, next_segment = [], 0
    for row, stream in enumerate(streams):
        modulus, segments = compile_profile(stream.profile)
        if next_segment + len(segments) > regmap.SEGMENTS:
            raise ValueError(f"rate: the profiles need more than {regmap.SEGMENTS} segments")
        for i, seg in enumerate(segments):
            ticks_bits = regmap.field_bits(regmap.SEGMENT_TABLE.fields, "ticks")
            longest = (1 << (ticks_bits.stop - ticks_bits.start)) - 1
            if seg.ticks > longest:
                seconds = longest * regmap.TICK_CYCLES / regmap.CLOCK_HZ
                raise ValueError(f"duration: {seg.ticks * regmap.TICK_CYCLES / regmap.CLOCK_HZ:,.0f}"
                                 f" s is longer than the unit times a segment "
                                 f"({seconds:,.0f} s, {seconds / 86400:.1f} days); use count, "
                                 f"or a profile of several segments")
            words = regmap.SEGMENT_TABLE.pack(
                rate=seg.rate, slope=seg.slope & ((1 << 64) - 1), ticks=seg.ticks,
                last=int(i == len(segments) - 1))
            writes += [(regmap.SEGMENT_TABLE.addr(next_segment + i, w), v)
                       for w, v in enumerate(words)]
        sizes = stream.sizes
        words = regmap.STREAM_TABLE.pack(
            **addresses[row], src_port=stream.src_port, dst_port=stream.dst_port,
            ttl=stream.ttl, dscp=stream.dscp, enable=1, loop=int(stream.profile.loop),
            size_count=len(sizes),
            sizes=sum(size << (regmap.SIZE_BITS * i) for i, size in enumerate(sizes)),
            count=stream.count, rate_mod=modulus, first_segment=next_segment)
        writes += [(regmap.STREAM_TABLE.addr(row, w), v) for w, v in enumerate(words)]
        next_segment += len(segments)
    for row in range(len(streams), rows):       # disable the rows left over
        writes += [(regmap.STREAM_TABLE.addr(row, w), v)
                   for w, v in enumerate(regmap.STREAM_TABLE.pack())]
    return writes


# Tests in files (TOML, read with tomllib): the unit's address, `[[streams]]` tables whose keys
# are `Stream`'s own field names, the trials and the output folder. `load` refuses unknown keys
# and bad values, naming the key's path, before anything touches a device.
_TOP_KEYS = {"unit", "streams", "trials", "out", "record_sample", "settle"}
_UNIT_KEYS = {"ip", "mac"}
_STREAM_KEYS = {f for f in Stream.__dataclass_fields__}


@dataclass
class TestFile:
    __test__ = False                # not a pytest class
    streams: list                   # Stream, in row order
    unit_ip: str = "192.168.0.2"
    unit_mac: str = "02:77:73:00:00:01"
    trials: int = 1
    out: str | None = None
    record_sample: int = 1
    settle: float | None = None     # seconds; None: the run's default
    resolve: tuple = ()             # rows whose dst_mac is asked by ARP (none was given)


MAX_TEST_FILE = 1 << 20         # bytes: a test file is a page of settings, not /dev/zero


def load(path):
    """The `TestFile` in TOML file `path`; ValueError naming the key for anything wrong."""
    import os
    import tomllib
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            raise ValueError(f"--config: {path} is not a file")
        with open(path, "rb") as file:
            text = file.read(MAX_TEST_FILE + 1)
        if len(text) > MAX_TEST_FILE:
            raise ValueError(f"--config: {path} is over {MAX_TEST_FILE >> 20} MiB; a test file "
                             f"is TOML settings")
        data = tomllib.loads(text.decode("utf-8"))
    except OSError as error:
        raise ValueError(f"--config: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"--config: {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    return parse(data)


def parse(data):
    """A `TestFile` from the dict a TOML file gives (see `load`)."""
    from .units import parse_duration, parse_rate

    def unknown(keys, allowed, where):
        extra = sorted(set(keys) - allowed)
        if extra:
            raise ValueError(f"{where}{extra[0]}: unknown key (known: {', '.join(sorted(allowed))})")

    unknown(data, _TOP_KEYS, "")
    unit = data.get("unit", {})
    if not isinstance(unit, dict):
        raise ValueError("unit: a table with ip and mac")
    unknown(unit, _UNIT_KEYS, "unit.")
    test = TestFile(streams=[], unit_ip=unit.get("ip", TestFile.unit_ip),
                    unit_mac=unit.get("mac", TestFile.unit_mac))
    unicast_ipv4(test.unit_ip, "unit.ip")
    unicast_mac(test.unit_mac, "unit.mac")
    test.trials = _int_field("trials", data.get("trials", 1), 1, 10_000)
    test.record_sample = _int_field("record_sample", data.get("record_sample", 1), 0, 2**32 - 1)
    if "out" in data:
        if not isinstance(data["out"], str) or not data["out"]:
            raise ValueError(f"out: {data['out']!r} is not a folder name")
        test.out = data["out"]
    if "settle" in data:
        test.settle = float(parse_duration(data["settle"]))
    tables = data.get("streams")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ValueError("streams: give at least one [[streams]] table")
    resolve = []
    for i, table in enumerate(tables):
        where = f"streams[{i}]."
        unknown(table, _STREAM_KEYS, where)
        try:
            if "dst_ip" not in table:
                raise ValueError("dst_ip: missing (the DUT's IPv4 address)")
            fields = dict(table)
            fields.setdefault("src_ip", test.unit_ip)
            fields.setdefault("src_mac", test.unit_mac)
            if "dst_mac" not in fields:
                resolve.append(i)
            sizes = Stream(dst_ip="0.0.0.0", frame_size=fields.get("frame_size", 64)).sizes
            mean = sum(sizes) / len(sizes)
            if "rate" in fields:
                rate = fields["rate"]
                if isinstance(rate, bool) or not isinstance(rate, (str, int, float)):
                    raise ValueError(f"rate: {rate!r} is not a rate like \"1000pps\"")
                fields["rate"] = parse_rate(rate if isinstance(rate, str) else f"{rate}pps",
                                            mean)
            if "duration" in fields:
                fields["duration"] = float(parse_duration(
                    fields["duration"] if isinstance(fields["duration"], str)
                    else f"{fields['duration']}s"))
            stream = Stream(**fields)
            stream.validate()
            if not stream.count and stream.duration is None \
                    and not isinstance(stream.rate, Profile):
                raise ValueError("count: a constant rate runs until stopped; give count or "
                                 "duration (a profile carries its own length)")
        except ValueError as error:
            raise ValueError(where + str(error)) from None
        test.streams.append(stream)
    try:
        compile_streams(test.streams)           # the limits of them all together
    except ValueError as error:
        raise ValueError(f"streams: {error}") from None
    test.resolve = tuple(resolve)
    return test
