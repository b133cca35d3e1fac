"""Descriptive results of the study (pure: frames in, frames out).

Everything here reads the analysis dataset: one row per eligible session with its items
resolved across raters, its scale scores, PHQ-9 and the homework and difficulty columns (the
``sessions`` export, :func:`rater.export.tables.sessions_table`). As in the reference study:

* :func:`describe`: n, mean and SD of items and scores, overall, per session number and per
  phase (SD with n - 1, as R's ``sd``);
* :func:`type_frequencies`: how often each homework type was assigned and reported, how often
  each difficulty type was ticked;
* :func:`completion`: the share of reported homework marked completed;
* :func:`omega_by_session`: McDonald's omega of each scale, overall and per session number
  (:func:`rater.reliability.stats.mcdonald_omega`, the same estimator the reliability report
  uses), items keyed as the instrument scores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rater.export.tables import slug
from rater.instruments import Instrument, MeasureKind
from rater.reliability import stats
from rater.reliability.results import MIN_SESSIONS

OVERALL = "overall"
GROUPINGS = (OVERALL, "session_number", "phase")
DESCRIBE_COLUMNS = ["by", "group", "measure", "label", "n", "mean", "sd", "min", "max"]
FREQUENCY_COLUMNS = ["kind", "type", "count", "sessions", "share"]
OMEGA_COLUMNS = ["instrument", "measure", "label", "group", "n", "omega", "note"]


@dataclass(frozen=True)
class Variable:
    """A column of the analysis dataset that results describe and models use."""

    code: str
    label: str
    kind: str  # "item", "score" or "outcome" (PHQ-9)


PHQ9 = Variable("phq9", "PHQ-9 total", "outcome")


def variables(instruments: Sequence[Instrument]) -> list[Variable]:
    """Items and scores of the instruments (numeric items, every scoring rule), then PHQ-9."""
    out = []
    for inst in instruments:
        for m in inst.measures():
            if m.kind == MeasureKind.ITEM and m.code in inst.numeric_item_codes:
                out.append(Variable(m.code, m.label, "item"))
        out.extend(Variable(rule.code, rule.label, "score") for rule in inst.scores)
    return [*out, PHQ9]


def describe(frame: pd.DataFrame, wanted: Sequence[Variable]) -> pd.DataFrame:
    """n, mean, SD, min and max of each variable overall, per session number and per phase."""
    rows = []
    for by in GROUPINGS:
        groups = [(OVERALL, frame)] if by == OVERALL else frame.groupby(by, sort=True)
        for group, part in groups:
            for v in wanted:
                values = pd.to_numeric(part[v.code], errors="coerce").astype("float64").dropna()
                rows.append(_summary(by, group, v, values))
    table = pd.DataFrame(rows, columns=DESCRIBE_COLUMNS)
    table["n"] = table["n"].astype("int64")
    return table


def _summary(by: str, group, v: Variable, values: pd.Series) -> list:
    n = len(values)
    group = int(group) if by == "session_number" else str(group)
    if n == 0:
        return [by, group, v.code, v.label, 0, np.nan, np.nan, np.nan, np.nan]
    sd = float(values.std(ddof=1)) if n > 1 else np.nan
    return [by, group, v.code, v.label, n, float(values.mean()), sd, values.min(), values.max()]


def type_frequencies(
    frame: pd.DataFrame, homework_types: Sequence[str], difficulty_types: Sequence[str]
) -> pd.DataFrame:
    """Per homework type: the number assigned (coordinator entries) and reported (per-rating
    means summed over sessions) and the sessions with any; per difficulty type, the sessions
    where a rater ticked it. ``share`` is the share of all homework of that kind, and for
    difficulties the share of rated sessions."""
    rows = []
    for kind, prefix in (("assigned", "hw_assigned_"), ("reported", "hw_reported_")):
        counts = {t: _column(frame, prefix + slug(t)) for t in homework_types}
        total = sum(float(c.sum()) for c in counts.values())
        for t, column in counts.items():
            count = float(column.sum())
            share = count / total if total else np.nan
            rows.append([f"homework {kind}", t, count, int((column > 0).sum()), share])
    rated = int(frame["n_raters"].gt(0).sum()) if "n_raters" in frame else len(frame)
    for t in difficulty_types:
        column = _column(frame, f"difficulty_{slug(t)}")
        ticked = int((column > 0).sum())
        rows.append(["difficulty", t, float(ticked), ticked, ticked / rated if rated else np.nan])
    return pd.DataFrame(rows, columns=FREQUENCY_COLUMNS)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce").astype("float64").fillna(0.0)


def completion(frame: pd.DataFrame) -> dict[str, float]:
    """Reported homework, how much of it was marked completed, and the share."""
    reported = float(_column(frame, "hw_reported_total").sum())
    completed = float(_column(frame, "hw_completed").sum())
    return {
        "reported": reported,
        "completed": completed,
        "share": completed / reported if reported else np.nan,
    }


def omega_by_session(frame: pd.DataFrame, instruments: Sequence[Instrument]) -> pd.DataFrame:
    """McDonald's omega of every score of at least 3 items of one session, overall and per
    session number, over the sessions with every item (keyed); a group with too few such
    sessions (:func:`_omega`), or without variance, has no value and a note."""
    rows = []
    for inst in instruments:
        keyed = inst.keyed(frame.reindex(columns=inst.item_codes))
        for m in inst.measures():
            if m.kind not in (MeasureKind.SCORE, MeasureKind.SUBSCALE):
                continue
            if m.is_cross_session or len(m.items) < 3:
                continue
            items = keyed[list(m.items)]
            groups = [(OVERALL, items)]
            groups += [(str(n), part) for n, part in items.groupby(frame["session_number"])]
            for group, part in groups:
                rows.append([inst.code, m.code, m.label, group, *_omega(part.dropna())])
    return pd.DataFrame(rows, columns=OMEGA_COLUMNS)


def _omega(table: pd.DataFrame) -> tuple[int, float, str]:
    """A one-factor model of k items needs more than k sessions (else the item correlations
    are singular), and at least ``MIN_SESSIONS``."""
    n, needed = len(table), max(MIN_SESSIONS, table.shape[1] + 1)
    if n < needed:
        return n, np.nan, f"fewer than {needed} sessions with every item"
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # near-singular: judged below
            value = stats.mcdonald_omega(table)
    except np.linalg.LinAlgError:
        return n, np.nan, "the item correlations are singular"
    return n, value, "" if np.isfinite(value) else "an item does not vary"
