"""The paper's statistics (Borodin, see docs/architecture.md#why): per trial the count, mean,
min, max and the error of the mean; across trials the mean of the trial means and its error
t · s / √n, with Student's t for n − 1 degrees of freedom (2.262 for 10 trials at 0.95) and s
the sample standard deviation of the trial means."""
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Trial", "TrialSummary", "trial", "trial_summary", "student_t", "table"]


def student_t(n, confidence=0.95):
    """Two-sided Student's coefficient for a sample of `n`."""
    from scipy.stats import t      # scipy only for this
    if n < 2:
        raise ValueError("the error of a mean needs at least two values")
    return float(t.ppf((1 + confidence) / 2, n - 1))


@dataclass(frozen=True)
class Trial:
    count: int
    mean: float
    min: float
    max: float
    error: float        # of the mean, at the confidence given


@dataclass(frozen=True)
class TrialSummary:
    trials: int
    mean: float
    min: float | None
    max: float | None
    error: float
    confidence: float


def trial(values, confidence=0.95):
    """One trial's row of the paper's Table 2 from its measurements."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    error = student_t(n, confidence) * values.std(ddof=1) / math.sqrt(n)
    return Trial(count=n, mean=float(values.mean()), min=float(values.min()),
                 max=float(values.max()), error=float(error))


def trial_summary(trial_means, confidence=0.95, mins=None, maxs=None):
    """The paper's Table 1 row from the trials' means (and, if given, their minima and
    maxima): the mean of the means and its error t · s / √n."""
    means = np.asarray(trial_means, dtype=np.float64)
    n = len(means)
    error = student_t(n, confidence) * means.std(ddof=1) / math.sqrt(n)
    return TrialSummary(trials=n, mean=float(means.mean()),
                        min=None if mins is None else float(min(mins)),
                        max=None if maxs is None else float(max(maxs)),
                        error=float(error), confidence=confidence)


def table(rows, unit="µs"):
    """Rows {name: TrialSummary} in the layout of the paper's Table 1."""
    lines = [f"{'platform':<12}{'trials':>7}{'mean, ' + unit:>12}{'min, ' + unit:>11}"
             f"{'max, ' + unit:>12}{'error of the mean, ' + unit:>24}"]
    for name, s in rows.items():
        low = "" if s.min is None else f"{s.min:g}"
        high = "" if s.max is None else f"{s.max:g}"
        lines.append(f"{name:<12}{s.trials:>7}{s.mean:>12.2f}{low:>11}{high:>12}"
                     f"{'± ' + format(s.error, '.4g'):>24}")
    return "\n".join(lines)
