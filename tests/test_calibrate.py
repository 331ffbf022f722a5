"""`wirestamp calibrate` without instruments: a pyvisa-sim counter whose reading follows the
trim the virtual board was given converges; a counter that is missing, silent, or answers
garbage is one clear error, and the trim is left as it was."""
from pathlib import Path

import pytest

import wirestamp
from wirestamp import regmap
from wirestamp.calibrate import CalibrationError, Counter, apply, calibrate, trim_ppm

SIM = f"{Path(__file__).parent / 'data' / 'counter.yaml'}@sim"
OSCILLATOR_PPM = 23.4       # how fast the simulated board's crystal is


@pytest.fixture(scope="module")
def unit():
    with wirestamp.open("sim://") as dev:
        yield dev


def follows(counter, device):
    """Make the simulated counter read the reference as the unit's trim makes it."""
    def set_reading():
        t = trim_ppm(device) * 1e-6
        counter.instrument.write(f"SIM:FREQ {regmap.REF_SQUARE_HZ * (1 + OSCILLATOR_PPM * 1e-6) / (1 + t):.6f}")
    trim = device.trim

    def trimmed(ppm):
        trim(ppm)
        set_reading()
    set_reading()
    return trimmed


def test_calibration_converges_on_the_oscillators_error(unit, tmp_path, monkeypatch):
    unit.trim(0)
    counter = Counter("TCPIP::counter.lab::INSTR", SIM)
    assert counter.identity.startswith("Keysight Technologies,53230A")
    monkeypatch.setattr(unit, "trim", follows(counter, unit))
    lines = []
    result = calibrate(unit, counter, tolerance_ppm=0.01, log=lines.append)
    assert abs(result.trim_ppm - OSCILLATOR_PPM) < 0.01 and abs(result.error_ppm) <= 0.01
    assert abs(trim_ppm(unit) - OSCILLATOR_PPM) < 0.01
    assert len(lines) == len(result.steps) >= 2 and "+23.4" in lines[0]
    result.save(tmp_path / "cal.json")
    monkeypatch.undo()
    unit.trim(0)
    assert apply(unit, tmp_path / "cal.json") == pytest.approx(result.trim_ppm)
    assert trim_ppm(unit) == pytest.approx(OSCILLATOR_PPM, abs=0.01)
    counter.close()


@pytest.mark.parametrize("resource, message", [
    ("TCPIP::nothing.lab::INSTR", "no such instrument"),       # pyvisa-sim: *IDN? is empty
    ("TCPIP::silent.lab::INSTR", "did not answer"),
    ("TCPIP::garbage.lab::INSTR", "answered 'hello', not a number"),
    ("TCPIP::nosignal.lab::INSTR", "no signal"),
])
def test_a_bad_counter_is_a_clear_error_and_the_trim_stays(unit, resource, message):
    unit.trim(-3.25)
    before = unit.read_register("TIME_INCREMENT")
    with pytest.raises(CalibrationError, match=message):
        counter = Counter(resource, SIM, timeout_s=0.5)
        try:
            calibrate(unit, counter)
        finally:
            counter.close()
    assert unit.read_register("TIME_INCREMENT") == before


def test_the_cli_says_one_line_and_exits_1(tmp_path, capsys):
    from wirestamp.cli import main
    assert main(["calibrate", "--device", "sim://", "--counter", "TCPIP::garbage.lab::INSTR",
                 "--visa-library", SIM, "--save", str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("wirestamp: counter TCPIP::garbage.lab::INSTR: READ? answered")
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "c.json").exists()
    assert main(["calibrate", "--device", "sim://", "--tolerance", "tight"]) == 2
    assert "--tolerance" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"trim_ppm": "fast"}')
    assert main(["calibrate", "--device", "serial:///dev/no-such-unit", "--apply",
                 str(tmp_path / "bad.json")]) == 1      # refused before any unit is opened
    assert "not a saved calibration" in capsys.readouterr().err


def test_a_counter_that_does_not_follow_the_trim_is_refused_and_the_trim_put_back(unit):
    """The counter measures something else (its reading never moves): the loop gives up
    after its steps, and the unit's trim is the one it had, not the last one tried."""
    unit.trim(1.5)
    before = unit.read_register("TIME_INCREMENT")
    counter = Counter("TCPIP::counter.lab::INSTR", SIM)
    counter.instrument.write(f"SIM:FREQ {regmap.REF_SQUARE_HZ * (1 + 5e-6):.6f}")
    with pytest.raises(CalibrationError, match="not within 0.01 ppm after 4 steps"):
        calibrate(unit, counter, steps=4, log=lambda line: None)
    counter.close()
    assert unit.read_register("TIME_INCREMENT") == before
