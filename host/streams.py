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

__all__ = ["Stream", "compile_streams", "parse_mac", "format_mac", "parse_ipv4",
           "line_rate_pps"]


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
        if isinstance(profile, Constant) and profile.pps == 0:
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
            dst_mac=parse_mac(self.dst_mac, "dst_mac"), src_mac=parse_mac(self.src_mac, "src_mac"),
            dst_ip=parse_ipv4(self.dst_ip, "dst_ip"), src_ip=parse_ipv4(self.src_ip, "src_ip"),
        )


def compile_streams(streams):
    """[(word address, value)] that program `streams` into stream rows 0.. and the segment
    table. Raises ValueError, before anything is written, for any bad field."""
    streams = list(streams)
    if len(streams) > regmap.STREAMS:
        raise ValueError(f"streams: {len(streams)} given, the core has {regmap.STREAMS}")
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
    for row in range(len(streams), regmap.STREAMS):    # disable the rows left over
        writes += [(regmap.STREAM_TABLE.addr(row, w), v)
                   for w, v in enumerate(regmap.STREAM_TABLE.pack())]
    return writes
