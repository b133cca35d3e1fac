"""Summary measures of events enter the reliability report like scale scores: every rater pair's
ICC(A,1) and ICC(A,2) of a code count, a group count and a ratio equal pingouin's on the same
values, which are counted here independently from the generated events."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from rater.coding.measures import event_values
from rater.instruments import load_instrument
from rater.rating.frame import RATINGS_COLUMNS
from rater.reliability.report import report
from rater.reliability.results import MIN_SESSIONS, NotEnoughData

HWC = load_instrument(
    Path(__file__).resolve().parents[2] / "instruments/examples/homework_coding.toml"
)
CODES = [c.code for c in HWC.codes if not c.segment]
ASSIGNING = [c.code for c in HWC.codes if c.group == "assigning"]
NO_RATINGS = pd.DataFrame({c: pd.Series(dtype=object) for c in RATINGS_COLUMNS})


def generated(seed: int, n_sessions: int, raters: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coded ratings (two random raters per session) and their events: Poisson counts around a
    session's own rate, with a rater bias, at uniform times in a 50-minute session."""
    rng = np.random.default_rng(seed)
    coded, events = [], []
    rating_id = 0
    for s in range(n_sessions):
        rate = rng.gamma(2.0, 2.0, size=len(CODES))
        for rater in rng.choice(raters, size=2, replace=False):
            rating_id += 1
            coded.append({
                "rating_id": rating_id, "session_id": f"S{s:03d}", "patient": f"P{s % 7}",
                "therapist": "T1", "session_number": s // 7 + 1, "phase": "I", "rater": rater,
                "purpose": "double" if coded and coded[-1]["session_id"] == f"S{s:03d}" else "main",
                "rating_status": "submitted", "submitted_at": pd.Timestamp("2026-01-01"),
                "duration_seconds": 3000.0, "instrument": "HWC", "instrument_version": 1,
            })  # fmt: skip
            bias = 1.0 + 0.3 * (raters.index(rater) - 1)
            for code, lam in zip(CODES, rate * bias, strict=True):
                for _ in range(rng.poisson(lam)):
                    at = float(rng.uniform(0, 3000))
                    events.append((rating_id, "HWC", code, at, np.nan))
    columns = ["rating_id", "instrument", "code", "time_s", "end_s"]
    return pd.DataFrame(coded), pd.DataFrame(events, columns=columns)


def counted(coded: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """The three measures per rating, counted by hand."""
    per = {rid: Counter() for rid in coded["rating_id"]}
    for rid, code in zip(events["rating_id"], events["code"], strict=True):
        per[rid][code] += 1
    rows = []
    for rid, c in per.items():
        rows.append({
            "rating_id": rid,
            "HWC_ASSIGN_n": c["ASSIGN"],
            "HWC_assigning_n": sum(c[x] for x in ASSIGNING),
            "HWC_rationale_ratio": c["RATIONALE"] / c["ASSIGN"] if c["ASSIGN"] else np.nan,
        })  # fmt: skip
    return pd.DataFrame(rows).merge(coded[["rating_id", "session_id", "rater"]], on="rating_id")


@pytest.mark.parametrize("seed", range(8))
def test_pair_iccs_of_event_measures_equal_pingouin(seed):
    raters = ["ann", "bob", "cem"]
    coded, events = generated(seed, n_sessions=30 + 5 * seed, raters=raters)
    rep = report(NO_RATINGS, [HWC], design="none", events=event_values(coded, events, [HWC]))
    assert {"HWC_ASSIGN_n", "HWC_rationale_ratio"} <= {m.code for m in rep.measures}
    mine = counted(coded, events)
    checked = 0
    for measure in ("HWC_ASSIGN_n", "HWC_assigning_n", "HWC_rationale_ratio"):
        for p in rep.pairs_of("HWC", measure):
            both = mine[mine["rater"].isin([p.rater_1, p.rater_2])].dropna(subset=[measure])
            both = both[both.groupby("session_id")["rater"].transform("nunique") == 2]
            assert p.n == both["session_id"].nunique()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = pg.intraclass_corr(both, "session_id", "rater", measure).set_index("Type")
            for ours, key in (("ICC(A,1)", "ICC(A,1)"), ("ICC(A,2)", "ICC(A,k)")):
                result = p.coefficients[ours]
                if p.n < MIN_SESSIONS:
                    assert isinstance(result, NotEnoughData)
                    continue
                assert result.value == pytest.approx(theirs.loc[key, "ICC"], abs=1e-9)
                checked += 1
        summary = rep.summary("HWC", measure)
        assert summary is not None and summary.n_pairs == 3
    assert checked >= 2 * 3 * 2  # the counts of every pair at least
