"""Durations and rates with units, as the CLI takes them."""
from fractions import Fraction

import pytest

from wirestamp.rates import Ramp, UpDown
from wirestamp.units import parse_duration, parse_rate


def test_durations():
    assert parse_duration("3us") == Fraction(3, 10**6)
    assert parse_duration("250ms") == Fraction(1, 4)
    assert parse_duration("1.5s") == Fraction(3, 2)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("3 parsecs")


def test_rates():
    assert parse_rate("line") == "line"
    assert parse_rate("1000pps") == 1000 and parse_rate("1.5kpps") == 1500
    assert parse_rate("100mbps", frame_size=1250) == 10_000
    ramp = parse_rate("ramp:0-9000pps/60s")
    assert isinstance(ramp, Ramp) and (ramp.start, ramp.end, ramp.duration) == (0, 9000, 60)
    updown = parse_rate("updown:9000pps/2s")
    assert isinstance(updown, UpDown) and updown.peak == 9000 and updown.seconds == 2
    for bad in ("fast", "ramp:9000pps", "updown:9000pps", "12 furlongs"):
        with pytest.raises(ValueError, match="rate"):
            parse_rate(bad)
