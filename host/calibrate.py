"""Timestamp-clock calibration against a lab frequency counter, read through VISA (pyvisa).

The unit's timebase is only as good as its oscillator (±50 ppm on these boards: 50 µs a
second). The unit puts out a reference from its trimmed timebase (`hdl.time.Reference`: a
15.625 MHz square wave and a 1 PPS pulse, on a header pin, docs/boards.md). A counter
measures it: frequency in Keysight 53230A-style SCPI (`*IDN?`, `CONF:FREQ`,
`FREQ:GATE:TIME`, `READ?`), or the PPS's period (`CONF:PER`). If the oscillator is p fast and
the unit is trimmed by t, the reference reads f0 (1 + p) / (1 + t), so its error e gives the
trim that cancels it, t' = (1 + t)(1 + e) - 1. `calibrate` repeats that until the error is
within the tolerance, and logs each step. The result is a JSON file that `apply` sets again
at start (the trim lives in a register and a power cycle forgets it).

Any failure (a counter that is not there, does not answer, answers what is not a number, or a
loop that does not converge) raises `CalibrationError` and puts back the trim the unit had.
"""
import datetime
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import regmap
from .device import TRIM_LIMIT_PPM
from .files import write_atomic

__all__ = ["Counter", "CalibrationError", "Result", "calibrate", "apply", "saved_trim",
           "trim_ppm"]

NOMINAL = {"freq": regmap.REF_SQUARE_HZ, "period": regmap.REF_PPS_NS / 1e9}


class CalibrationError(Exception):
    """The calibration could not be done; the unit's trim is as it was."""


def trim_ppm(device):
    """The trim the unit has now, in ppm (its TIME_INCREMENT against the nominal 8 ns)."""
    nominal = regmap.NS_PER_CYCLE << regmap.TIME_FRAC_BITS
    return (nominal / device.read_register("TIME_INCREMENT") - 1) * 1e6


class Counter:
    """A frequency counter at VISA `resource`: `measure` is "freq" (the square wave, Hz) or
    "period" (the PPS, s), with a gate of `gate` seconds."""

    def __init__(self, resource, library="", gate=1.0, measure="freq", timeout_s=None):
        import pyvisa
        self.resource, self.measure = resource, measure
        try:
            self.manager = pyvisa.ResourceManager(library)
        except (OSError, ValueError, pyvisa.errors.Error) as error:
            raise CalibrationError(f"VISA library {library or '(default)'}: {error}") from None
        try:
            self.instrument = self.manager.open_resource(
                resource, read_termination="\n", write_termination="\n",
                timeout=int(1000 * (timeout_s or gate * 2 + 5)))
            self.identity = self._query("*IDN?")
            if not self.identity:
                raise CalibrationError(f"counter {resource}: *IDN? answered nothing: no "
                                       f"such instrument there?")
            self.instrument.write("CONF:FREQ" if measure == "freq" else "CONF:PER")
            self.instrument.write(f"{'FREQ' if measure == 'freq' else 'PER'}:GATE:TIME {gate:g}")
        except pyvisa.errors.Error as error:
            self.close()
            raise CalibrationError(f"counter {resource}: {_visa_text(error)}") from None
        except CalibrationError:
            self.close()
            raise
        except Exception as error:      # noqa: BLE001 (backends raise their own: sockets, serial)
            self.close()
            raise CalibrationError(f"counter {resource}: cannot open it: "
                                   f"{type(error).__name__}: {error}") from None

    def _query(self, command):
        import pyvisa
        try:
            return self.instrument.query(command).strip()
        except pyvisa.errors.Error as error:
            raise CalibrationError(f"counter {self.resource}: {command} {_visa_text(error)}") \
                from None

    def read(self):
        """One reading (Hz or s)."""
        text = self._query("READ?")
        try:
            value = float(text)
        except ValueError:
            raise CalibrationError(f"counter {self.resource}: READ? answered {text[:40]!r}, "
                                   f"not a number") from None
        if not math.isfinite(value) or value <= 0 or value >= 9.9e37:   # 9.91E37: SCPI NaN
            raise CalibrationError(f"counter {self.resource}: READ? answered {text!r}: no "
                                   f"signal? (is the reference pin connected?)")
        return value

    def close(self):
        try:
            self.manager.close()
        except Exception:       # noqa: BLE001 (closing what may not have opened)
            pass


def _visa_text(error):
    text = str(error)
    if "VI_ERROR_TMO" in text or "Timeout" in text:
        return "did not answer (timeout)"
    if "VI_ERROR_RSRC_NFOUND" in text or "not found" in text.lower():
        return "no such instrument"
    return text.splitlines()[0] if text else type(error).__name__


@dataclass
class Result:
    trim_ppm: float
    error_ppm: float            # the last reading's, after the trim
    reading: float
    nominal: float
    measure: str
    counter: str
    steps: list = field(default_factory=list)
    when: str = ""

    def save(self, path):
        write_atomic(path, json.dumps(asdict(self), indent=2) + "\n")


def calibrate(device, counter, tolerance_ppm=0.01, steps=8, log=print):
    """Trim `device` until `counter` reads its reference within `tolerance_ppm`; the
    `Result`. Each step is logged and kept in `Result.steps`."""
    nominal = NOMINAL[counter.measure]
    before = device.read_register("TIME_INCREMENT")
    trim, record = trim_ppm(device), []
    try:
        for step in range(steps + 1):
            reading = counter.read()
            rate = reading / nominal if counter.measure == "freq" else nominal / reading
            error = (rate - 1) * 1e6
            record.append({"step": step, "trim_ppm": trim, "reading": reading,
                           "error_ppm": error})
            log(f"step {step}: trim {trim:+.4f} ppm, the counter reads {reading:.9g} "
                f"({error:+.4f} ppm)")
            if abs(error) <= tolerance_ppm:
                return Result(trim, error, reading, nominal, counter.measure,
                              counter.identity, record,
                              datetime.datetime.now(datetime.timezone.utc).isoformat())
            if step == steps:
                break
            trim = ((1 + trim * 1e-6) * rate - 1) * 1e6
            if abs(trim) > 1000:
                raise CalibrationError(f"the counter says the clock is {trim:+.0f} ppm off: "
                                       f"not a crystal's error; is it measuring the reference?")
            device.trim(trim)
            trim = trim_ppm(device)         # as the register holds it (0.0075 ppm steps)
        raise CalibrationError(f"not within {tolerance_ppm} ppm after {steps} steps "
                               f"(last {error:+.4f} ppm)")
    except BaseException:
        device.write_register("TIME_INCREMENT", before)
        raise


def saved_trim(path):
    """The trim (ppm) that `Result.save` wrote to `path`."""
    try:
        ppm = float(json.loads(Path(path).read_text())["trim_ppm"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CalibrationError(f"{path}: not a saved calibration ({error})") from None
    if not abs(ppm) <= TRIM_LIMIT_PPM:
        raise CalibrationError(f"{path}: a trim of {ppm} ppm is not a crystal's error")
    return ppm


def apply(device, path):
    """Set the trim saved in `path` (by `Result.save`); returns it, in ppm."""
    ppm = saved_trim(path)
    device.trim(ppm)
    return ppm
