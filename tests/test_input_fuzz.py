"""The whole input surface under hypothesis (benchmarks/input_fuzz.py: run flags, test files,
sim:// and serial:// options, the Python API, SCPI arguments): no input gives a traceback,
and none the documented limits call invalid is accepted. The benchmark runs more inputs and
prints the counts."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import input_fuzz  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_counts():
    input_fuzz.outcomes.clear()
    input_fuzz.examples.clear()


def test_no_input_gives_a_traceback_or_a_wrong_value():
    input_fuzz.fuzz(300)
    outcomes = input_fuzz.outcomes
    assert outcomes["traceback"] == 0 and outcomes["wrong"] == 0, input_fuzz.examples
    assert outcomes["refused"] > 0 and outcomes["accepted"] > 0     # both sides were reached


def test_the_oracle_tells_a_wrong_acceptance(monkeypatch):
    """The fuzz would see a check that went missing: with the frame size unchecked before
    the rate, `--frame-size 0 --rate 1bps` divides by zero (a traceback it must count)."""
    outcome = input_fuzz.check_run(
        ["run", "--device", input_fuzz.NOWHERE, "--dst-ip", "10.0.0.1", "--frame-size",
         "1519", "--count", "5"], valid=True)
    assert outcome == "wrong"          # the oracle says valid, wirestamp refuses: counted
