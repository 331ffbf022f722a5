"""Quantities with units, as the CLI takes them: durations (`3us`, `250ms`, `2s`, `6h`, `7d`), rates
(`line`, `1000pps`, `1.5kpps`, `100mbps`, `ramp:0-9000pps/60s`, `updown:9000pps/60s`)."""
import re
from fractions import Fraction

from .rates import LINE, Ramp, UpDown

__all__ = ["parse_duration", "parse_rate", "parse_quantity"]

_TIME = {"ns": Fraction(1, 10**9), "us": Fraction(1, 10**6), "ms": Fraction(1, 1000),
         "s": Fraction(1), "min": Fraction(60), "h": Fraction(3600), "d": Fraction(86400)}
_PREFIX = {"": 1, "k": 1000, "m": 10**6, "g": 10**9}
_NUMBER = r"(\d+(?:\.\d+)?)"


def parse_duration(text):
    match = re.fullmatch(_NUMBER + r"\s*(ns|us|ms|s|min|h|d)", str(text).strip())
    if not match:
        raise ValueError(f"duration: {text!r} is not like 3us, 250ms, 2s, 5min, 6h or 7d")
    return Fraction(match[1]) * _TIME[match[2]]


def parse_quantity(text, field="rate"):
    """(value, "pps" or "bps") of a plain rate such as 1.5kpps or 100mbps; bits per second
    count the frames' bits on the wire, FCS included (no preamble, no gap)."""
    match = re.fullmatch(_NUMBER + r"\s*([kmg]?)(pps|bps)", str(text).strip().lower())
    if not match:
        raise ValueError(f"{field}: {text!r} is not like 1000pps, 1.5kpps or 100mbps")
    return Fraction(match[1]) * _PREFIX[match[2]], match[3]


def _pps(text, frame_size):
    value, unit = parse_quantity(text)
    return value / (8 * frame_size) if unit == "bps" else value


def parse_rate(text, frame_size=64):
    """A rate for `Stream.rate`: "line", a number of pps, or a profile."""
    text = str(text).strip()
    if text.lower() == LINE:
        return LINE
    kind, _, rest = text.partition(":")
    if kind.lower() == "ramp":
        match = re.fullmatch(r"(.+?)-(.+)/(.+)", rest)
        if not match:
            raise ValueError(f"rate: {text!r} is not like ramp:0-9000pps/60s")
        start = match[1] if re.search(r"[a-z]", match[1]) else match[1] + "pps"
        return Ramp(_pps(start, frame_size), _pps(match[2], frame_size),
                    parse_duration(match[3]))
    if kind.lower() == "updown":
        match = re.fullmatch(r"(.+)/(.+)", rest)
        if not match:
            raise ValueError(f"rate: {text!r} is not like updown:9000pps/60s")
        return UpDown(_pps(match[1], frame_size), parse_duration(match[2]))
    return _pps(text, frame_size)
