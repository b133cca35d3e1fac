"""Rates per minute of count items (``per_minute = true``) in reliability and in the wide and
sessions exports: the count divided by the session's recording length in minutes; missing,
with the reason shown, when the length is unknown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from rater.export import tables
from rater.instruments import parse_instrument
from rater.rating.frame import RATINGS_COLUMNS, SESSIONS_COLUMNS
from rater.reliability.report import report
from rater.reliability.values import session_minutes

SHEET = """
code = "R"
name = "Rates"
[[items]]
code = "R_n"
label = "Reflections"
kind = "count"
per_minute = true
"""
INSTRUMENT = parse_instrument(SHEET.encode(), "r.toml")
VERSIONED = [tables.VersionedInstrument(INSTRUMENT, 1)]


def _frame(rng: np.random.Generator, n_sessions: int) -> pd.DataFrame:
    """Every session counted by r1 and r2: a noisy copy of a true count."""
    rows = []
    for s in range(n_sessions):
        truth = rng.poisson(12)
        for r, rater in enumerate(("r1", "r2")):
            rows.append(
                {
                    "rating_id": 2 * s + r + 1,
                    "session_id": f"S{s:03d}",
                    "patient": f"P{s:03d}",
                    "therapist": "T1",
                    "session_number": 1,
                    "phase": "I",
                    "rater": rater,
                    "purpose": "main" if r == 0 else "double",
                    "instrument": "R",
                    "instrument_version": 1,
                    "item": "R_n",
                    "subscale": None,
                    "score": int(max(0, truth + rng.integers(-2, 3))),
                    "value": None,
                    "not_applicable": 0,
                    "rating_status": "submitted",
                    "submitted_at": pd.Timestamp("2026-01-01"),
                }
            )
    frame = pd.DataFrame(rows, columns=RATINGS_COLUMNS)
    frame["score"] = frame["score"].astype("Int64")
    return frame


def _sessions(frame: pd.DataFrame, seconds: list[float | None]) -> pd.DataFrame:
    codes = sorted(frame["session_id"].unique())
    out = pd.DataFrame(
        {
            "session_id": codes,
            "patient": [f"P{c[1:]}" for c in codes],
            "therapist": "T1",
            "session_number": 1,
            "phase": "I",
            "status": "eligible",
            "exclusion_reason": None,
            "recorded_on": None,
            "duration_seconds": seconds,
            "phq9": pd.array([pd.NA] * len(codes), dtype="Int64"),
        },
        columns=SESSIONS_COLUMNS,
    )
    return out


@pytest.mark.parametrize("seed", range(5))
def test_rate_icc_equals_pingouin_on_counts_per_minute(seed):
    rng = np.random.default_rng(seed)
    frame = _frame(rng, 30)
    seconds = list(rng.uniform(600, 3600, size=30))
    minutes = session_minutes(_sessions(frame, seconds))
    rep = report(frame, [INSTRUMENT], design="all", minutes=minutes)
    [pair] = rep.pairs_of("R", "R_n_per_minute")
    long = frame.assign(value=frame["score"].astype(float) / frame["session_id"].map(minutes))
    icc = pg.intraclass_corr(long, targets="session_id", raters="rater", ratings="value")
    icc = icc.set_index("Type")["ICC"]
    assert pair.n == 30
    assert pair.coefficients["ICC(A,2)"].value == pytest.approx(icc["ICC(A,k)"])
    assert pair.coefficients["ICC(A,1)"].value == pytest.approx(icc["ICC(A,1)"])
    assert rep.design_result("R", "R_n_per_minute").n_sessions == 30
    # the counts themselves are another measure, unchanged by the lengths
    [counts] = rep.pairs_of("R", "R_n")
    assert counts.coefficients["ICC(A,2)"].value != pytest.approx(icc["ICC(A,k)"])


def test_sessions_without_a_length_have_no_rate_and_the_reason_says_so():
    rng = np.random.default_rng(7)
    frame = _frame(rng, 12)
    seconds: list[float | None] = [1200.0, 1800.0] + [None] * 10
    rep = report(
        frame, [INSTRUMENT], design="all", minutes=session_minutes(_sessions(frame, seconds))
    )
    [pair] = rep.pairs_of("R", "R_n_per_minute") or [None]
    assert pair is None or pair.n == 2
    summary = rep.summary("R", "R_n_per_minute")
    assert summary.n_pairs_with_data == 0
    reason = summary.statistics["mean"].reason
    assert "20 ratings have no rate per minute" in reason and "duration_seconds" in reason
    design = rep.design_result("R", "R_n_per_minute")
    assert "20 ratings have no rate per minute" in design.coefficients["ICC(A,1)"].reason
    assert rep.summary("R", "R_n").n_pairs_with_data == 1  # the counts are all there


def test_without_lengths_every_rate_is_missing():
    frame = _frame(np.random.default_rng(3), 12)
    rep = report(frame, [INSTRUMENT], design="none")
    assert "24 ratings have no rate" in rep.summary("R", "R_n_per_minute").statistics["mean"].reason


def test_wide_and_sessions_exports_carry_the_rate():
    frame = _frame(np.random.default_rng(1), 3)
    sessions = _sessions(frame, [600.0, None, 1800.0])
    minutes = session_minutes(sessions)
    wide = tables.wide_table(frame, VERSIONED, minutes=minutes)
    assert "R_n_per_minute" in wide.columns
    expected = wide["R_n"].astype(float) / wide["session_id"].map({"S000": 10.0, "S002": 30.0})
    pd.testing.assert_series_equal(wide["R_n_per_minute"], expected, check_names=False)
    assert wide.loc[wide["session_id"] == "S001", "R_n_per_minute"].isna().all()
    resolved = tables.sessions_table(frame, sessions, VERSIONED, resolve="mean")
    assert list(resolved.columns).index("R_n_per_minute") == list(resolved.columns).index("R_n") + 1
    means = frame.groupby("session_id")["score"].mean().astype(float)
    assert resolved["R_n_per_minute"].iloc[0] == pytest.approx(means["S000"] / 10)
    assert np.isnan(resolved["R_n_per_minute"].iloc[1])
    assert resolved["R_n_per_minute"].iloc[2] == pytest.approx(means["S002"] / 30)
    codebook = tables.codebook_table(VERSIONED)
    rule = codebook[(codebook["export"] == "rule") & (codebook["column"] == "R_n_per_minute")]
    assert "duration_seconds / 60" in rule["scoring_rule"].iloc[0]
