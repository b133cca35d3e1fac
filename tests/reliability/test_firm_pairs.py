"""Pair values from few sessions or with very wide intervals are flagged and summarised apart."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rater.reliability.pairs import pair_summaries
from rater.reliability.results import (
    FIRM_PAIR_SESSIONS,
    Estimate,
    NotEnoughData,
    PairResult,
    pair_caution,
)

MEASURE = SimpleNamespace(instrument="I", code="M", kind="score", previous_items=())


def pair(r1: str, r2: str, n: int, value: float, low: float | None, high: float | None):
    return PairResult("I", "M", "score", r1, r2, n, {"ICC(A,2)": Estimate(value, low, high)})


def test_few_sessions_or_a_wide_or_open_interval_is_a_caution():
    assert pair_caution(pair("a", "b", FIRM_PAIR_SESSIONS, 0.8, 0.7, 0.9)) == ""
    assert "only 9 shared sessions" in pair_caution(pair("a", "b", 9, 0.8, 0.7, 0.9))
    assert "0.60 wide" in pair_caution(pair("a", "b", 30, 0.6, 0.3, 0.9))
    assert "no bound" in pair_caution(pair("a", "b", 30, 0.6, None, 0.9))
    no_value = PairResult("I", "M", "score", "a", "b", 3, {"ICC(A,2)": NotEnoughData("3")})
    assert pair_caution(no_value) == ""


@pytest.mark.parametrize("seed", range(20))
def test_firm_mean_and_median_are_over_the_firm_pairs_only(seed):
    rng = np.random.default_rng(seed)
    pairs, firm = [], []
    for i in range(int(rng.integers(1, 12))):
        n = int(rng.integers(5, 40))
        value = float(rng.uniform(0, 1))
        half = float(rng.uniform(0.05, 0.5))
        pairs.append(pair(f"r{i}", f"s{i}", n, value, value - half, value + half))
        if n >= FIRM_PAIR_SESSIONS and 2 * half <= 0.5:
            firm.append(value)
    (summary,) = pair_summaries(pairs, pd.DataFrame(), [MEASURE])
    everything = [p.coefficients["ICC(A,2)"].value for p in pairs]
    assert summary.statistics["mean"].value == pytest.approx(np.mean(everything))
    assert summary.n_pairs_firm == len(firm)
    if firm:
        assert summary.firm_statistics["mean"].value == pytest.approx(np.mean(firm))
        assert summary.firm_statistics["median"].value == pytest.approx(np.median(firm))
    else:
        assert isinstance(summary.firm_statistics["mean"], NotEnoughData)
