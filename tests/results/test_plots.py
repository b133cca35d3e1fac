"""Course plots of the Results page (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rater.results import plots


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(f"P{p}", t, rng.normal(2, 1)) for p in range(8) for t in range(1, 10)
            if rng.random() < 0.8]  # fmt: skip
    return pd.DataFrame(rows, columns=["patient", "session_number", "GHES_score"])


@pytest.mark.parametrize("seed", range(3))
def test_course_table_is_the_mean_per_session_with_its_normal_interval(seed):
    frame = _frame(seed)
    table = plots.course_table(frame, "GHES_score").set_index("session_number")
    grouped = frame.groupby("session_number")["GHES_score"]
    pd.testing.assert_series_equal(table["mean"], grouped.mean(), check_names=False)
    half = 1.96 * grouped.std() / np.sqrt(grouped.size())
    pd.testing.assert_series_equal(table["ci_high"], grouped.mean() + half, check_names=False)


def test_course_svg_draws_patients_with_a_missing_session():
    frame = pd.DataFrame(
        {"patient": ["A", "A", "A", "B", "B"], "session_number": [1, 2, 4, 1, 2],
         "GHES_score": [1.0, 2.0, 3.0, 2.0, 2.5]}
    )  # fmt: skip
    svg = plots.course_svg(frame, "GHES_score", "GHES score")
    assert svg.startswith("<svg") and "GHES score: per patient (2)" in svg
    assert "mean, 95 % interval" in svg


def test_course_svg_without_values_says_so():
    frame = pd.DataFrame({"patient": ["A"], "session_number": [1], "phq9": [np.nan]})
    svg = plots.course_svg(frame, "phq9", "PHQ-9 total")
    assert "PHQ-9 total: no sessions with a value yet." in svg
