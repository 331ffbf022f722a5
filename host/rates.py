"""Rates and rate profiles, and their translation into the scheduler's segment table.

A profile is a list of linear segments (rate at the start, rate at the end, duration). The
paper's experiments are `Ramp` (rising rate) and `UpDown` (up to a peak and back down); `Steps`,
`Burst` and `Constant` cover the rest. Rates are packets per second; "line" means back-to-back
frames, resolved against the stream's frame size.

In hardware a rate is `rate / rate_mod` packets per byte time. The modulus is chosen so that
every segment's start and end rate is represented exactly where possible (any rate whose pps
is a fraction with a small denominator, such as 10 000 pps or 125e6/84 pps), so constant rates
run with no drift at all.
"""
from dataclasses import dataclass
from fractions import Fraction
from math import lcm

from .regmap import CLOCK_HZ, PHASE_BITS, RATE_FRAC_BITS, TICK_CYCLES

__all__ = ["Segment", "Profile", "Constant", "Ramp", "UpDown", "Steps", "Burst", "Segments", "LINE",
           "HwSegment", "compile_profile"]

LINE = "line"


def _number(value, field, unit):
    """`value` as a Fraction, or a ValueError naming `field` (strings, None, booleans, NaN and
    infinities are not numbers of anything)."""
    if isinstance(value, (str, bool)) or value is None:
        raise ValueError(f"{field}: {value!r} is not a number of {unit}")
    try:
        return Fraction(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: {value!r} is not a finite number of {unit}") from None


def _pps(value, field="rate"):
    rate = _number(value, field, "packets per second").limit_denominator(1 << 20)
    if rate < 0:
        raise ValueError(f"{field}: {value} pps is negative")
    return rate


def _seconds(value, field="seconds"):
    seconds = _number(value, field, "seconds").limit_denominator(1 << 30)
    if seconds <= 0:
        raise ValueError(f"{field}: {value} s must be positive")
    return seconds


@dataclass(frozen=True)
class Segment:
    """Rate going linearly from `start` to `end` pps over `seconds` (None: forever)."""
    start: Fraction
    end: Fraction
    seconds: Fraction | None


class Profile:
    loop = False

    def segments(self):
        raise NotImplementedError

    @property
    def peak(self):
        return max(max(s.start, s.end) for s in self.segments())

    def rate_at(self, t):
        """The rate (pps) the profile asks for `t` seconds after the start (0 after its end)."""
        start = Fraction(0)
        while True:
            for segment in self.segments():
                if segment.seconds is None or t < start + segment.seconds:
                    if segment.seconds is None:
                        return float(segment.start)
                    along = (Fraction(t) - start) / segment.seconds
                    return float(segment.start + (segment.end - segment.start) * along)
                start += segment.seconds
            if not self.loop:
                return 0.0

    @property
    def seconds(self):
        """Total duration, or None when the profile runs until stopped."""
        if self.loop or any(s.seconds is None for s in self.segments()):
            return None
        return sum(s.seconds for s in self.segments())


class Constant(Profile):
    def __init__(self, pps, seconds=None):
        self.pps = _pps(pps)
        self.duration = None if seconds is None else _seconds(seconds)

    def segments(self):
        return [Segment(self.pps, self.pps, self.duration)]

    def __repr__(self):
        return f"Constant({float(self.pps):g} pps)"


class Ramp(Profile):
    def __init__(self, start, end, seconds):
        self.start, self.end = _pps(start, "ramp start"), _pps(end, "ramp end")
        self.duration = _seconds(seconds)

    def segments(self):
        return [Segment(self.start, self.end, self.duration)]

    def __repr__(self):
        return f"Ramp({float(self.start):g}-{float(self.end):g} pps / {float(self.duration):g} s)"


class UpDown(Profile):
    """The paper's second experiment: from `base` up to `peak` and back, `seconds` in all."""
    def __init__(self, peak, seconds, base=0):
        self.peak_pps, self.base = _pps(peak, "peak"), _pps(base, "base")
        self.duration = _seconds(seconds)

    def segments(self):
        half = self.duration / 2
        return [Segment(self.base, self.peak_pps, half), Segment(self.peak_pps, self.base, half)]

    def __repr__(self):
        return f"UpDown({float(self.peak_pps):g} pps / {float(self.duration):g} s)"


class Steps(Profile):
    def __init__(self, rates, seconds_each):
        if not rates:
            raise ValueError("steps: the list of rates is empty")
        self.rates = [_pps(r, "step rate") for r in rates]
        self.each = _seconds(seconds_each)

    def segments(self):
        return [Segment(r, r, self.each) for r in self.rates]


class Burst(Profile):
    """`pps` for `on` seconds, silence for `off` seconds, repeated until the count or a stop."""
    loop = True

    def __init__(self, pps, on, off):
        self.pps, self.on, self.off = _pps(pps), _seconds(on, "on"), _seconds(off, "off")

    def segments(self):
        return [Segment(self.pps, self.pps, self.on), Segment(0, 0, self.off)]


class Segments(Profile):
    """A profile given as (start pps, end pps, seconds) tuples."""
    def __init__(self, segments, loop=False):
        if not segments:
            raise ValueError("profile: no segments")
        self._segments = [Segment(_pps(a), _pps(b), _seconds(s)) for a, b, s in segments]
        self.loop = loop

    def segments(self):
        return list(self._segments)


@dataclass(frozen=True)
class HwSegment:
    rate: int
    slope: int
    ticks: int


def _fraction_of_clock(pps):
    return Fraction(pps) / CLOCK_HZ


def compile_profile(profile):
    """(rate_mod, [HwSegment]) for the scheduler. Exact where the rates allow it."""
    segments = profile.segments()
    if not segments:
        raise ValueError("profile: no segments")
    limit = 1 << PHASE_BITS
    base = 1
    for s in segments:
        for r in (s.start, s.end):
            base = lcm(base, _fraction_of_clock(r).denominator)
    if base >= limit:
        base = CLOCK_HZ           # not exactly representable: fall back to a fine grid
    modulus = base
    while modulus * 2 < limit:    # finer steps for ramps, still exact for the rates above
        modulus *= 2
    hw = []
    for s in segments:
        start = _fraction_of_clock(s.start) * modulus
        end = _fraction_of_clock(s.end) * modulus
        if s.seconds is None:
            ticks, slope = 0, 0
        else:
            ticks = round(s.seconds * CLOCK_HZ / TICK_CYCLES)
            if ticks < 1:
                raise ValueError(f"profile: a segment of {float(s.seconds)} s is shorter than "
                                 f"one tick ({TICK_CYCLES * 1e9 / CLOCK_HZ:g} ns)")
            # Truncated toward zero, so a ramp never overshoots its end rate.
            slope = int((end - start) * (1 << RATE_FRAC_BITS) / ticks)
        hw.append(HwSegment(rate=round(start), slope=slope, ticks=ticks))
    return modulus, hw
