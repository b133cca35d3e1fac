"""Agreement of rater pairs (pure): every pair of raters over the sessions both rated.

Per pair and measure, chosen by the kind of item (``Measure.item_kind``): ordinal items and
scores — n, ICC(A,1) and ICC(A,2) with their 95 % CIs (the reference study's ICC(2,2)),
weighted kappa of items over the item's own score points (linear and quadratic) and the mean
difference rater_1 - rater_2 with its paired-t 95 % CI; counts — the ICCs and the mean
difference (no kappa); nominal items — Cohen's kappa (unweighted) and percent agreement (the
ICCs, weighted kappas and mean difference say why they are not computed). "Not applicable"
never enters (it is no value); across pairs, the mean, median and range of the pairs'
ICC(A,2). All pairs x measures at once: batched two-way ANOVA (``stats.icc_two_raters``) and
batched confusion matrices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rater.formatting import plural
from rater.instruments import ItemKind, Measure, MeasureKind
from rater.reliability import stats
from rater.reliability.results import (
    FIRM_PAIR_SESSIONS,
    MIN_SESSIONS,
    WIDE_INTERVAL,
    Estimate,
    NotEnoughData,
    PairResult,
    PairSummary,
    Result,
    estimate,
    pair_caution,
    too_few,
)
from rater.reliability.values import length_reason

PAIR_TYPES = ("ICC(A,1)", "ICC(A,k)")
NOT_FOR_NOMINAL = NotEnoughData("not computed for a nominal item (see kappa, percent agreement)")
KAPPA_WEIGHTS = ("quadratic", "linear")


def pair_table(values: pd.DataFrame) -> pd.DataFrame:
    """Every double-coded session x measure x rater pair (rater_1 < rater_2), both values known.

    Each rater's value, submission time and batch come with the suffix ``_1`` / ``_2``."""
    cols = ["instrument", "measure", "kind", "session_id", "session_number", "patient"]
    if "batch" not in values:
        values = values.assign(batch=pd.NA)
    slim = values[[*cols, "rater", "value", "submitted_at", "batch"]].dropna(subset=["value"])
    merged = slim.merge(slim, on=cols, suffixes=("_1", "_2"))
    merged = merged[merged["rater_1"] < merged["rater_2"]]
    return merged.reset_index(drop=True)


def pair_results(paired: pd.DataFrame, measures: Sequence[Measure]) -> list[PairResult]:
    """ICC(A,1), ICC(A,2) (+CI), weighted kappas and mean difference per pair x measure."""
    if paired.empty:
        return []
    keys = ["instrument", "measure", "rater_1", "rater_2"]
    codes = paired.groupby(keys, sort=True).ngroup().to_numpy()
    a = paired["value_1"].to_numpy(float)
    b = paired["value_2"].to_numpy(float)
    iccs = stats.icc_two_raters(a, b, codes, types=PAIR_TYPES)
    diff = stats.paired_mean_difference(a, b, codes)
    heads = paired[[*keys, "kind"]].groupby(codes, sort=True).first()
    scored = (paired["kind"] == MeasureKind.ITEM).to_numpy()  # kappa: item scores only
    kappas = {
        w: stats.batched_kappa(a[scored], b[scored], codes[scored], w, n_groups=len(heads))
        for w in (*KAPPA_WEIGHTS, None)
    }
    agreement = stats.batched_agreement(a, b, codes, n_groups=len(heads))
    kinds = {(m.instrument, m.code): m.item_kind for m in measures}
    n = iccs["n"].to_numpy()
    cols = {c: iccs[c].to_numpy() for c in iccs.columns}
    mean_diff = diff[["mean", "ci_low", "ci_high"]].to_numpy()
    items = {(m.instrument, m.code) for m in measures if m.kind == MeasureKind.ITEM}
    out = []
    for g, head in enumerate(heads.itertuples(index=False)):
        short = too_few(int(n[g]))
        coefs: dict[str, Result] = {}
        for name, col in (("ICC(A,1)", "ICC(A,1)"), ("ICC(A,2)", "ICC(A,k)")):
            coefs[name] = short or estimate(
                cols[col][g], cols[f"{col} ci_low"][g], cols[f"{col} ci_high"][g]
            )
        kind = kinds.get((head.instrument, head.measure), ItemKind.ORDINAL)
        if (head.instrument, head.measure) in items and kind == ItemKind.ORDINAL:
            for w in KAPPA_WEIGHTS:
                coefs[f"kappa_{w}"] = short or estimate(kappas[w][g])
        coefs["mean_difference"] = short or estimate(*mean_diff[g])
        if kind == ItemKind.NOMINAL:
            coefs = dict.fromkeys(coefs, NOT_FOR_NOMINAL)
            coefs["kappa"] = short or estimate(kappas[None][g])
            coefs["percent_agreement"] = short or estimate(agreement[g])
        out.append(
            PairResult(
                head.instrument,
                head.measure,
                head.kind,
                head.rater_1,
                head.rater_2,
                int(n[g]),
                coefs,
            )
        )
    return out


def pair_summaries(
    pairs: Sequence[PairResult], values: pd.DataFrame, measures: Sequence[Measure]
) -> list[PairSummary]:
    """Mean, median, min and max of ICC(A,2) across the pairs that have a value.

    ``values`` are the main + double :func:`measure_values`; they give the reason when no
    pair has a value.
    """
    out = []
    for m in measures:
        mine = [p for p in pairs if (p.instrument, p.measure) == (m.instrument, m.code)]
        iccs = [
            p.coefficients["ICC(A,2)"].value
            for p in mine
            if isinstance(p.coefficients["ICC(A,2)"], Estimate)
        ]
        if iccs:
            arr = np.asarray(iccs)
            found = {
                "mean": arr.mean(),
                "median": np.median(arr),
                "min": arr.min(),
                "max": arr.max(),
            }
            statistics: dict[str, Result] = {k: Estimate(float(v)) for k, v in found.items()}
        else:
            reason = _why_no_pair_value(m, mine, values)
            statistics = dict.fromkeys(("mean", "median", "min", "max"), reason)
        firm = [
            p.coefficients["ICC(A,2)"].value
            for p in mine
            if isinstance(p.coefficients["ICC(A,2)"], Estimate) and not pair_caution(p)
        ]
        out.append(
            PairSummary(
                m.instrument,
                m.code,
                m.kind,
                len(mine),
                len(iccs),
                statistics,
                len(firm),
                _firm_statistics(firm),
            )
        )
    return out


def _firm_statistics(values: list[float]) -> dict[str, Result]:
    """Mean and median of the firm pairs' ICC(A,2) (``pair_caution``)."""
    if not values:
        reason = NotEnoughData(
            f"no pair has {FIRM_PAIR_SESSIONS}+ shared sessions and a 95 % interval at most "
            f"{WIDE_INTERVAL:.2f} wide"
        )
        return {"mean": reason, "median": reason}
    arr = np.asarray(values)
    return {"mean": Estimate(float(arr.mean())), "median": Estimate(float(np.median(arr)))}


def _why_no_pair_value(
    m: Measure, pairs: Sequence[PairResult], values: pd.DataFrame
) -> NotEnoughData:
    """Why no rater pair has an ICC(A,2) of ``m``: the reason that is true of the data (with
    the ratings whose rate per minute is missing for want of a recording length)."""
    reason = _why_not(m, pairs, values)
    return NotEnoughData(reason.reason + length_reason(values, m))


def _why_not(m: Measure, pairs: Sequence[PairResult], values: pd.DataFrame) -> NotEnoughData:
    if len(pairs) > 1:
        return NotEnoughData(
            f"none of the {len(pairs)} pairs has {MIN_SESSIONS}+ sessions with varying scores"
        )
    if len(pairs) == 1:
        return NotEnoughData(
            f"the one pair has fewer than {MIN_SESSIONS} sessions or scores that do not vary"
        )
    rated = values[values["instrument"] == m.instrument]
    n_double = int((rated.groupby("session_id")["rater"].nunique() >= 2).sum())
    if n_double == 0:
        return NotEnoughData("no double-coded sessions yet")
    counted = plural(n_double, "double-coded session")
    if m.previous_items:
        return NotEnoughData(
            f"{counted}, but no two raters both rated sessions t−1 and t of a patient "
            "(a rater's value at session t needs their own rating of session t−1)"
        )
    return NotEnoughData(f"{counted}, but none has two scores of {m.code}")
