"""Coefficients of the whole design (pure): every main and double rating at once.

Per measure, by the kind of item: ordinal items and scores — ``stats.icc_incomplete`` (crossed
random effects by REML, Monte-Carlo CIs: ICC(A,1), ICC(A,k̂), ICC(C,1), ICC(Q,k̂)) and
Krippendorff's alpha (interval and ordinal); counts — the same ICCs and alpha interval and ratio;
nominal items — Krippendorff's alpha nominal (the others say why they are not computed). A
cross-session score (the StHAR total) gets the ICCs of the composite of its two parts
(:func:`cross_session_design`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rater.instruments import ItemKind, Measure
from rater.reliability import stats
from rater.reliability.results import DesignResult, NotEnoughData, Result, estimate, too_few
from rater.reliability.values import (
    CURRENT,
    PART_COLUMNS,
    PREVIOUS,
    cross_session_values,
    length_reason,
)

DESIGN_COEFFICIENTS = ("ICC(A,1)", "ICC(A,khat)", "ICC(C,1)", "ICC(Q,khat)")
ALPHAS = ("alpha_interval", "alpha_ordinal")
# Krippendorff's alpha levels by the kind of item (the ICCs: every kind but nominal).
ALPHA_LEVELS = {
    ItemKind.ORDINAL: ("interval", "ordinal"),
    ItemKind.COUNT: ("interval", "ordinal", "ratio"),
    ItemKind.NOMINAL: ("nominal",),
}
NOT_FOR_NOMINAL = NotEnoughData("not computed for a nominal item (see alpha_nominal)")


def design_results(
    values: pd.DataFrame,
    measures: Sequence[Measure],
    parts: pd.DataFrame | None = None,
    not_applicable: Mapping[tuple[str, str], int] | None = None,
) -> list[DesignResult]:
    """``icc_incomplete`` and Krippendorff's alpha per measure over main + double ratings.

    ``values`` are the main + double :func:`measure_values`.  A cross-session score (its two
    parts from two sessions) is computed from ``parts`` (:func:`cross_session_parts`) by
    :func:`cross_session_design`. ``not_applicable`` counts the answers "not applicable" per
    (instrument, item) (:func:`rater.reliability.values.not_applicable_counts`), reported with
    the item's result.
    """
    not_applicable = not_applicable or {}
    grouped = dict(list(values.dropna(subset=["value"]).groupby(["instrument", "measure"])))
    parts = pd.DataFrame(columns=PART_COLUMNS) if parts is None else parts
    parts_of = dict(list(parts.groupby(["instrument", "measure"])))
    out = []
    for m in measures:
        if m.previous_items:
            out.append(cross_session_design(m, parts_of.get((m.instrument, m.code), parts[:0])))
            continue
        data = grouped.get((m.instrument, m.code), values.iloc[0:0])
        per_session = data.groupby("session_id")["rater"].nunique()
        n_double = int((per_session >= 2).sum())
        details: dict[str, float] = {}
        short = too_few(n_double, "session", "rated by two or more raters")
        if short and m.per_minute:
            short = NotEnoughData(short.reason + length_reason(values, m))
        if short:
            coefs: dict[str, Result] = dict.fromkeys((*DESIGN_COEFFICIENTS, *ALPHAS), short)
        else:
            coefs, details = _design_coefficients(data, m.item_kind)
        out.append(
            DesignResult(
                m.instrument,
                m.code,
                m.kind,
                len(per_session),
                n_double,
                int(data["rater"].nunique()),
                coefs,
                details,
                not_applicable.get((m.instrument, m.code), 0),
            )
        )
    return out


def cross_session_design(m: Measure, parts: pd.DataFrame) -> DesignResult:
    """Design-wide coefficients of a cross-session score such as the StHAR total.

    The value of session t averages items of two ratings, of sessions t−1 and t, and two
    raters rarely rate both sessions of a patient, so the ICCs are those of a composite
    (:func:`stats.composite_icc`): each part's variance components come from every main and
    double rating of that part (sessions as targets, REML as for every score); the covariance
    of the parts' session effects from the mean previous part of session t−1 and the mean
    current part of session t over every patient's consecutive sessions.  It assumes that
    the errors of the two parts are independent (true when different raters rated t−1 and t;
    a rater's bias common to both sessions would count as agreement) and that the parts'
    variance components are the same for every session.  Krippendorff's alpha needs
    independent values of the score itself: :func:`cross_session_values`, double when both
    t−1 and t were double-coded.  ``n_sessions`` counts the sessions with a value of the score,
    ``n_double`` those with two independent values.
    """
    independent = cross_session_values(parts)
    per_session = independent.groupby("session_id")["rater"].nunique()
    n_double = int((per_session >= 2).sum())
    coefs, details = _composite_coefficients(parts)
    short = too_few(n_double, "session", "with both t−1 and t double-coded")
    for level in ("interval", "ordinal"):
        coefs[f"alpha_{level}"] = short or _alpha(independent, level)
    raters = int(parts["rater"].nunique())
    return DesignResult(
        m.instrument, m.code, m.kind, len(per_session), n_double, raters, coefs, details
    )


def _composite_coefficients(parts: pd.DataFrame) -> tuple[dict[str, Result], dict[str, float]]:
    """The composite ICCs of a cross-session score (see :func:`cross_session_design`)."""
    by_part = [parts[parts["part"] == part] for part in (PREVIOUS, CURRENT)]
    reasons = [
        too_few(_n_double(data), "session", f"with the items of session {t} double-coded")
        for data, t in zip(by_part, ("t−1", "t"), strict=True)
    ]
    reason = next((r for r in reasons if r), None)
    if reason:
        return dict.fromkeys(DESIGN_COEFFICIENTS, reason), {}
    consecutive = _consecutive_means(parts)
    nouns = ("pair of consecutive sessions", "both rated", "pairs of consecutive sessions")
    reason = too_few(len(consecutive), *nouns)
    if reason:
        return dict.fromkeys(DESIGN_COEFFICIENTS, reason), {}
    try:
        fits = [
            stats.variance_components(d, target="session_id", rater="rater", score="value")
            for d in by_part
        ]
    except (ValueError, np.linalg.LinAlgError) as exc:
        return dict.fromkeys(DESIGN_COEFFICIENTS, _unfitted(exc)), {}
    weights = [float(d["weight"].iloc[0]) for d in by_part]
    covariance = float(consecutive["previous"].cov(consecutive["current"]))
    # normal-theory variance of a sample covariance: (s_x^2 s_y^2 + s_xy^2) / (n - 1)
    spread = consecutive["previous"].var() * consecutive["current"].var() + covariance**2
    fit = stats.composite_icc(
        list(zip(weights, fits, strict=True)),
        covariance,
        math.sqrt(spread / (len(consecutive) - 1)),
    )
    coefs: dict[str, Result] = {name: _coefficient(fit, name) for name in DESIGN_COEFFICIENTS}
    details = {k: _number(fit, k) for k in ("var_target", "var_rater", "var_residual")}
    return coefs, details


def _consecutive_means(parts: pd.DataFrame) -> pd.DataFrame:
    """Per patient and session t: the mean previous part of t−1 and mean current part of t."""
    keys = ["patient", "session_number"]
    means = parts.groupby(["part", *keys])["value"].mean()
    earlier = means.get(PREVIOUS, pd.Series(dtype=float)).rename("previous").reset_index()
    earlier["session_number"] = earlier["session_number"] + 1
    later = means.get(CURRENT, pd.Series(dtype=float)).rename("current").reset_index()
    return later.merge(earlier, on=keys)


def _n_double(data: pd.DataFrame) -> int:
    """Sessions with values of two or more raters."""
    return int((data.groupby("session_id")["rater"].nunique() >= 2).sum())


def _unfitted(exc: Exception) -> NotEnoughData:
    if isinstance(exc, stats.InsufficientDataError):
        return NotEnoughData(str(exc))
    return NotEnoughData(f"the variance-component model could not be fitted ({exc})")


def _alpha(data: pd.DataFrame, level: str) -> Result:
    """Krippendorff's alpha of a long (session_id, rater, value) table."""
    table = data.pivot(index="rater", columns="session_id", values="value")
    return estimate(stats.krippendorff_alpha(table.to_numpy(), level))


def _design_coefficients(
    data: pd.DataFrame, kind: ItemKind = ItemKind.ORDINAL
) -> tuple[dict[str, Result], dict[str, float]]:
    coefs: dict[str, Result] = {}
    details: dict[str, float] = {}
    if kind == ItemKind.NOMINAL:
        coefs = dict.fromkeys((*DESIGN_COEFFICIENTS, *ALPHAS), NOT_FOR_NOMINAL)
        coefs["alpha_nominal"] = _alpha(data, "nominal")
        return coefs, details
    try:
        fit = stats.icc_incomplete(data, target="session_id", rater="rater", score="value")
    except (ValueError, np.linalg.LinAlgError) as exc:  # a degenerate fit: say so, no number
        coefs.update(dict.fromkeys(DESIGN_COEFFICIENTS, _unfitted(exc)))
    else:
        for name in DESIGN_COEFFICIENTS:
            coefs[name] = _coefficient(fit, name)
        details = {
            k: _number(fit, k) for k in ("khat", "q", "var_target", "var_rater", "var_residual")
        }
    for level in ALPHA_LEVELS.get(kind, ALPHA_LEVELS[ItemKind.ORDINAL]):
        coefs[f"alpha_{level}"] = _alpha(data, level)
    return coefs, details


def _coefficient(fit: stats.IccFit, name: str) -> Result:
    """A fitted coefficient with its 95 % interval."""
    interval = fit[f"{name}_ci"]
    assert isinstance(interval, tuple)
    return estimate(_number(fit, name), *interval)


def _number(fit: stats.IccFit, key: str) -> float:
    """A point value of a fit."""
    value = fit[key]
    assert not isinstance(value, tuple)
    return float(value)
