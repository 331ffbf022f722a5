"""The paper's Table 1 from its Table 2 (seed 003): the mean of the ten trial means and the
error t · s / √10 agree with the published figures to the precision Table 2 is printed with."""
import numpy as np
import pytest

from wirestamp.analysis import student_t, table, trial, trial_summary

# Table 2: per trial mean, min, max (µs).
TABLE2 = {
    "P1": ([25.72, 20.39, 25.5, 19.8, 24.45, 23.39, 24.38, 19.81, 26.52, 31.37],
           [2] * 10, [3637, 35431, 608, 1391, 1981, 1348, 929, 1651, 1585, 32431]),
    "P2": ([38.75, 40.62, 40.70, 159.28, 40.1, 41.11, 40.55, 42.47, 40.35, 40.33],
           [2, 2, 2, 1, 2, 2, 1, 1, 2, 1],
           [2794, 3820, 3707, 466721, 4435, 4290, 4576, 49059, 4790, 3409]),
    "P3": ([65.14, 68.81, 70.43, 71.03, 70.32, 72.03, 69.91, 70.11, 71.05, 70.73],
           [8, 7, 8, 8, 7, 7, 7, 8, 8, 8],
           [19935, 14929, 18452, 20079, 17076, 19816, 19554, 16860, 15180, 18993]),
}
# Table 1: mean, min, max, error of the mean between trials.
TABLE1 = {"P1": (24.13, 2, 35431, 2.55), "P2": (52.43, 1, 466721, 26.841),
          "P3": (69.96, 7, 20079, 1.3499)}


def test_student_coefficient_of_the_paper():
    assert student_t(10) == pytest.approx(2.262, abs=5e-4)


@pytest.mark.parametrize("platform", TABLE2)
def test_table1_from_table2(platform):
    means, mins, maxs = TABLE2[platform]
    summary = trial_summary(means, mins=mins, maxs=maxs)
    mean, low, high, error = TABLE1[platform]
    assert round(summary.mean, 2) == mean and summary.trials == 10
    assert (summary.min, summary.max) == (low, high)
    # Table 2's means are rounded to 0.01 µs: that moves the error by up to ~0.2 %.
    assert summary.error == pytest.approx(error, rel=3e-3)


def test_a_trial_row_and_the_table_layout():
    rng = np.random.default_rng(0)
    values = rng.exponential(24.0, 100_000) + 2
    row = trial(values)
    assert row.count == 100_000 and row.min >= 2 and row.mean == pytest.approx(26, rel=0.02)
    assert row.error == pytest.approx(1.96 * values.std(ddof=1) / np.sqrt(len(values)), rel=1e-3)
    text = table({p: trial_summary(*TABLE2[p][:1]) for p in TABLE2})
    assert "24.13" in text and "± 2.553" in text and text.count("\n") == 3
    with pytest.raises(ValueError):
        trial([1.0])
