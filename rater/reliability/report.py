"""The reliability report: the tidy ratings frame -> every coefficient a study reports (pure).

``report(frame, instruments)`` takes the one tidy frame (``rater.rating.frame.ratings_frame()``)
and the instrument definitions and computes, for every instrument, item, subscale and scale
score ("measure"):

* per rater pair, over the sessions both rated (main + double, never calibration): n, ICC(A,1),
  ICC(A,2) with its 95 % CI (the reference study's ICC(2,2)), weighted kappa (items; linear and
  quadratic) and the mean difference rater_1 - rater_2 with its paired-t 95 % CI;
* across pairs: mean, median and range of the pairs' ICC(A,2);
* the whole design: ``icc_incomplete`` (REML, Monte-Carlo CIs) and Krippendorff's alpha
  (interval and ordinal) over all main + double ratings; for a cross-session score (the StHAR
  total) the ICCs of the composite of its two parts (:func:`cross_session_design`);
* the calibration round: the ICC across all raters (targets = session x item) and each rater's
  agreement with the mean of the rest of the panel, flagging who needs more training;
* internal consistency (Cronbach's alpha, McDonald's omega, corrected item-total
  correlations) per scale and subscale, on one rating per session (the main rater's).

Minimum-n rule: a coefficient over fewer than ``MIN_SESSIONS`` sessions, or one that is
undefined because the scores do not vary, is a :class:`NotEnoughData` with the reason — it is
shown as "not enough data — <reason>", never as a number.  An unbounded interval keeps its
−inf (JSON: null with ``<field>_infinite``; see :meth:`ReliabilityReport.to_dict`).

Per-pair ICCs are computed for all pairs x measures at once (batched two-way ANOVA in numpy,
``stats.icc_two_raters``); weighted kappas likewise from batched confusion matrices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from rater.instruments import SCORE_MAX, SCORE_MIN, SCORE_POINTS, Instrument
from rater.reliability import stats
from rater.templating import format_number, plural

MIN_SESSIONS = 5  # fewer sessions (or targets) than this: "not enough data"
CALIBRATION_FLAG_ICC = 0.5  # a rater whose ICC(A,1) with the panel is below: needs training
CALIBRATION_FLAG_MAD = 1.0  # ... or whose mean absolute difference from the panel is above
PAIR_TYPES = ("ICC(A,1)", "ICC(A,k)")
KAPPA_WEIGHTS = ("quadratic", "linear")
# Koo & Li (2016): poor < .5, moderate .5-.75, good .75-.9, excellent > .9
BANDS: tuple[tuple[float, str], ...] = (
    (0.5, "poor"),
    (0.75, "moderate"),
    (0.9, "good"),
    (math.inf, "excellent"),
)
CALIBRATION = "calibration"
ALL_ITEMS = "items"  # measure code of the session x item calibration analysis


@dataclass(frozen=True)
class NotEnoughData:
    """A coefficient that cannot be given honestly, with the reason."""

    reason: str

    def __str__(self) -> str:
        return f"not enough data — {self.reason}"


@dataclass(frozen=True)
class Estimate:
    """A coefficient with an optional 95 % confidence interval."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None


Result = Estimate | NotEnoughData


def band(value: float | None) -> str:
    """Koo & Li (2016) band of an ICC: poor, moderate, good or excellent ('' when None)."""
    if value is None or math.isnan(value):
        return ""
    return next(name for upper, name in BANDS if value < upper or upper == math.inf)


def _estimate(value: float, low: float | None = None, high: float | None = None) -> Result:
    if value is None or math.isnan(value):
        return NotEnoughData("no variance in the scores")
    clean = [None if v is None or math.isnan(v) else float(v) for v in (low, high)]
    return Estimate(float(value), *clean)


# --------------------------------------------------------------------------------------
# measures: items, subscales and scale scores of one rating
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """Something scored per rating: an item, a subscale mean or a scale score."""

    instrument: str
    code: str
    kind: str  # 'item' | 'subscale' | 'score'
    label: str
    items: tuple[str, ...]  # keyed items averaged (one item for kind 'item')
    previous_items: tuple[str, ...] = ()  # cross-session scores: items of session t-1


def measures_of(instrument: Instrument) -> list[Measure]:
    """Items, then scale scores, then subscales not already a score (same items), in file order."""
    out = [Measure(instrument.code, i.code, "item", i.label, (i.code,)) for i in instrument.items]
    seen: set[frozenset[str]] = set()
    for rule in instrument.scores:
        if rule.rule == "mean":
            out.append(Measure(instrument.code, rule.code, "score", rule.label, tuple(rule.items)))
            seen.add(frozenset(rule.items))
        else:
            out.append(
                Measure(
                    instrument.code,
                    rule.code,
                    "score",
                    rule.label,
                    tuple(rule.current_items),
                    tuple(rule.previous_items),
                )
            )
    for sub in instrument.subscales:
        items = tuple(instrument.subscale_items()[sub.code])
        if items and frozenset(items) not in seen:
            out.append(Measure(instrument.code, sub.code, "subscale", sub.label, items))
    return out


RATING_KEYS = ["rating_id", "session_id", "patient", "session_number", "rater", "purpose"]


def _keyed_ratings(
    frame: pd.DataFrame, instrument: Instrument
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Raw and keyed (reverse-keyed 4 − x) item scores per rating, and each rating's keys."""
    sub = frame[frame["instrument"] == instrument.code]
    wide = sub.pivot(index="rating_id", columns="item", values="score").astype(float)
    wide = wide.reindex(columns=instrument.item_codes)
    meta = sub.drop_duplicates("rating_id").set_index("rating_id")
    meta = meta.loc[wide.index, [*RATING_KEYS[1:], "submitted_at"]]
    keyed = wide.copy()
    for item in instrument.items:
        if item.reverse:
            keyed[item.code] = SCORE_MAX + SCORE_MIN - keyed[item.code]
    return wide, keyed, meta


def measure_values(frame: pd.DataFrame, instruments: Sequence[Instrument]) -> pd.DataFrame:
    """One row per rating x measure: ``RATING_KEYS``, submitted_at, instrument, measure, kind,
    value.

    Items enter raw; subscale and score means use keyed items (reverse-keyed 4 - x) and are
    missing when an item is missing.  A cross-session score of a rater at session t is *the
    rater's own*: it uses the same rater's rating of session t-1 of that patient (missing when
    there is none).  These are the values of rater pairs; the design-wide coefficient of a
    cross-session score uses :func:`cross_session_values` instead.
    """
    parts = []
    for instrument in instruments:
        if not (frame["instrument"] == instrument.code).any():
            continue
        wide, keyed, meta = _keyed_ratings(frame, instrument)
        columns = {}
        for m in measures_of(instrument):
            if m.kind == "item":
                columns[m.code] = wide[m.code]
            elif not m.previous_items:
                columns[m.code] = keyed[list(m.items)].mean(axis=1, skipna=False)
            else:
                columns[m.code] = _cross_session(meta, keyed, m)
        values = pd.DataFrame(columns, index=wide.index)
        long = values.rename_axis(columns="measure").stack(future_stack=True).rename("value")
        long = long.reset_index().join(meta, on="rating_id")
        long["instrument"] = instrument.code
        kinds = {m.code: m.kind for m in measures_of(instrument)}
        long["kind"] = long["measure"].map(kinds)
        parts.append(long)
    columns = [*RATING_KEYS, "submitted_at", "instrument", "measure", "kind", "value"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _cross_session(meta: pd.DataFrame, keyed: pd.DataFrame, m: Measure) -> pd.Series:
    """Mean of ``m.previous_items`` of the rater's rating of session t-1 and ``m.items`` of t."""
    current = keyed[list(m.items)]
    previous = keyed[list(m.previous_items)].copy()
    keys = meta[["patient", "rater", "session_number"]].copy()
    prev_keys = keys.assign(session_number=keys["session_number"] + 1)  # t-1 seen from t
    prev_table = pd.concat([prev_keys, previous], axis=1)
    prev_table = prev_table[meta["purpose"] != CALIBRATION]
    prev_table = prev_table.drop_duplicates(["patient", "rater", "session_number"])
    joined = keys.reset_index().merge(
        prev_table, on=["patient", "rater", "session_number"], how="left"
    )
    joined = joined.set_index("rating_id").loc[keyed.index]
    pooled = pd.concat([joined[list(m.previous_items)], current], axis=1)
    return pooled.mean(axis=1, skipna=False)


PART_COLUMNS = [
    "instrument", "measure", "kind", "part", "weight", "session_id", "patient",
    "session_number", "rater", "value",
]  # fmt: skip
PREVIOUS, CURRENT = "previous", "current"  # the parts of a cross-session score


def cross_session_parts(frame: pd.DataFrame, instruments: Sequence[Instrument]) -> pd.DataFrame:
    """The two parts of every cross-session score, per main/double rating (never calibration).

    ``part`` "previous" is the rating's mean of the score's ``previous_items`` (the part the
    rating gives to the score of the *next* session), "current" its mean of the score's own
    items; ``weight`` is the part's share of the score's items (5/8 and 3/8 for the StHAR
    total, a mean of eight items).  Missing when an item of the part is missing (dropped).
    Columns: ``PART_COLUMNS``.
    """
    parts = []
    for instrument in instruments:
        cross = [m for m in measures_of(instrument) if m.previous_items]
        if not cross or not (frame["instrument"] == instrument.code).any():
            continue
        _, keyed, meta = _keyed_ratings(frame, instrument)
        main = meta["purpose"] != CALIBRATION
        ratings = meta.loc[main, ["session_id", "patient", "session_number", "rater"]]
        for m in cross:
            total = len(m.previous_items) + len(m.items)
            for part, items in ((PREVIOUS, m.previous_items), (CURRENT, m.items)):
                value = keyed.loc[main, list(items)].mean(axis=1, skipna=False)
                parts.append(
                    ratings.assign(
                        instrument=m.instrument,
                        measure=m.code,
                        kind=m.kind,
                        part=part,
                        weight=len(items) / total,
                        value=value,
                    ).dropna(subset=["value"])
                )
    if not parts:
        return pd.DataFrame(columns=PART_COLUMNS)
    return pd.concat(parts, ignore_index=True)[PART_COLUMNS]


CROSS_SESSION_COLUMNS = [
    "instrument", "measure", "kind", "session_id", "patient", "session_number",
    "rater", "previous_rater", "value",
]  # fmt: skip


def cross_session_values(parts: pd.DataFrame) -> pd.DataFrame:
    """Independent values of every cross-session score (from :func:`cross_session_parts`).

    A cross-session value of session t combines one rating of session t−1 (its previous
    part) with one rating of session t (its current part) of the same patient.  Two values
    of the same session are independent measurements only when they share no rating: two
    values built on the one rating of t−1 would agree on that part by construction, and their
    agreement would overstate the reliability.  So, per session t, each rating of t−1 and of t
    enters at most one value: first every rater who rated both sessions gets their own value
    (as in :func:`measure_values`), then the remaining ratings of t−1 and of t are matched in
    the order of their raters' codes.  A session gets min(ratings of t−1, ratings of t)
    values, each labelled with the rater of session t (``previous_rater``: the rater of t−1);
    it has two values when both t−1 and t were double-coded.  Krippendorff's alpha of a
    cross-session score uses these values.  Columns: ``CROSS_SESSION_COLUMNS``.
    """
    found = [
        _match_ratings(group) for _, group in parts.groupby(["instrument", "measure"], sort=True)
    ]
    if not found:
        return pd.DataFrame(columns=CROSS_SESSION_COLUMNS)
    return pd.concat(found, ignore_index=True)[CROSS_SESSION_COLUMNS]


def _match_ratings(parts: pd.DataFrame) -> pd.DataFrame:
    """Disjoint (rating of t−1, rating of t) matches of one score, same rater first."""
    keys = ["patient", "session_number"]
    later = parts[parts["part"] == CURRENT].rename(columns={"value": "current"})
    later = later.assign(_later=range(len(later)))
    earlier = parts[parts["part"] == PREVIOUS].rename(
        columns={"value": "previous", "rater": "previous_rater", "weight": "previous_weight"}
    )
    earlier = earlier.assign(
        session_number=earlier["session_number"] + 1,  # keyed to the session t it serves
        _earlier=range(len(earlier)),
    )[[*keys, "previous_rater", "previous", "previous_weight", "_earlier"]]
    same = later.merge(earlier, left_on=[*keys, "rater"], right_on=[*keys, "previous_rater"])
    rest_later = later[~later["_later"].isin(same["_later"])].sort_values([*keys, "rater"])
    rest_earlier = earlier[~earlier["_earlier"].isin(same["_earlier"])]
    rest_earlier = rest_earlier.sort_values([*keys, "previous_rater"])
    mixed = rest_later.assign(_rank=rest_later.groupby(keys).cumcount()).merge(
        rest_earlier.assign(_rank=rest_earlier.groupby(keys).cumcount()), on=[*keys, "_rank"]
    )
    both = pd.concat([same, mixed], ignore_index=True)
    both["value"] = both["previous_weight"] * both["previous"] + both["weight"] * both["current"]
    return both.sort_values(["session_id", "rater"], kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# result records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairResult:
    instrument: str
    measure: str
    kind: str
    rater_1: str
    rater_2: str
    n: int
    coefficients: dict[str, Result]  # ICC(A,1), ICC(A,2), kappa_quadratic, kappa_linear, ...


@dataclass(frozen=True)
class PairSummary:
    instrument: str
    measure: str
    kind: str
    n_pairs: int
    n_pairs_with_data: int
    statistics: dict[str, Result]  # mean, median, min, max of the pairs' ICC(A,2)


@dataclass(frozen=True)
class DesignResult:
    instrument: str
    measure: str
    kind: str
    n_sessions: int
    n_double: int
    n_raters: int
    coefficients: dict[str, Result]
    details: dict[str, float] = field(default_factory=dict)  # khat, q, variance components


@dataclass(frozen=True)
class CalibrationPanel:
    instrument: str
    measure: str
    n_targets: int
    raters: tuple[str, ...]
    coefficients: dict[str, Result]  # ICC(A,1), ICC(A,k)


@dataclass(frozen=True)
class RaterAgreement:
    instrument: str
    rater: str
    n_targets: int
    coefficients: dict[str, Result]  # ICC(A,1) vs panel mean, mean_difference, mean_abs_diff.
    needs_training: bool
    why: str


@dataclass(frozen=True)
class ConsistencyResult:
    instrument: str
    measure: str
    kind: str
    n_ratings: int
    coefficients: dict[str, Result]  # cronbach_alpha, omega
    item_total: dict[str, Result]


@dataclass
class ReliabilityReport:
    """Everything the dashboard, the CLI and the export show; built by :func:`report`."""

    instruments: list[tuple[str, str]]  # (code, name)
    measures: list[Measure]
    pairs: list[PairResult]
    summaries: list[PairSummary]
    design: list[DesignResult]
    calibration_panel: list[CalibrationPanel]
    calibration_raters: list[RaterAgreement]
    consistency: list[ConsistencyResult]
    paired: pd.DataFrame  # one row per double-coded session x measure x pair (for plots)
    counts: dict[str, int]

    def measure(self, instrument: str, code: str) -> Measure:
        return next(m for m in self.measures if (m.instrument, m.code) == (instrument, code))

    def summary(self, instrument: str, measure: str) -> PairSummary | None:
        return _find(self.summaries, instrument, measure)

    def design_result(self, instrument: str, measure: str) -> DesignResult | None:
        return _find(self.design, instrument, measure)

    def consistency_of(self, instrument: str, measure: str) -> ConsistencyResult | None:
        return _find(self.consistency, instrument, measure)

    def pairs_of(self, instrument: str, measure: str) -> list[PairResult]:
        return [p for p in self.pairs if (p.instrument, p.measure) == (instrument, measure)]

    def to_text(self) -> str:
        """Plain text, as ``rater reliability`` prints it."""
        return to_text(self)

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Tidy long tables: pairs, pair_summary, design, calibration, consistency."""
        return _to_frames(self)

    def to_json(self) -> str:
        """``to_dict()`` as strict JSON text (what ``rater reliability --json`` prints)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    def to_dict(self) -> dict[str, Any]:
        """Valid JSON: the same tables as records, plus counts and the rules.

        NaN (undefined) is null; an infinite value, ci_low or ci_high (an unbounded interval,
        e.g. ICC(A,2)'s lower bound −∞) is null with ``<field>_infinite`` = "-inf" ("inf" for
        +∞), which is null for every finite or undefined number (see docs/reliability.md).
        """
        tables = {
            name: [_json_record(row) for row in table.to_dict("records")]
            for name, table in self.to_frames().items()
        }
        return {
            "min_sessions": MIN_SESSIONS,
            "bands": {name: upper if upper != math.inf else None for upper, name in BANDS},
            "counts": dict(self.counts),
            "instruments": [{"code": c, "name": n} for c, n in self.instruments],
            **tables,
        }


def _find(rows: Iterable[Any], instrument: str, measure: str) -> Any:
    return next((r for r in rows if (r.instrument, r.measure) == (instrument, measure)), None)


#: The numbers of every coefficient record; infinite ones are flagged in JSON.
NUMBER_FIELDS = ("value", "ci_low", "ci_high")


def infinity_token(value: Any) -> str | None:
    """'-inf' / 'inf' for ±∞ — the text the CSV and xlsx exports hold (R and pandas read it
    back as a number) — else None."""
    if isinstance(value, float | np.floating) and math.isinf(value):
        return str(float(value))
    return None


def _json_record(row: dict[str, Any]) -> dict[str, Any]:
    record = {k: _jsonable(v) for k, v in row.items()}
    for name in NUMBER_FIELDS:
        if name in row:
            record[f"{name}_infinite"] = infinity_token(row[name])
    return record


def _jsonable(value: Any) -> Any:
    """A JSON value: non-finite floats are null, −0.0 is 0.0, timestamps ISO text."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value) + 0.0 if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------


def report(
    frame: pd.DataFrame, instruments: Sequence[Instrument], *, design: str = "all"
) -> ReliabilityReport:
    """Compute the reliability report from the tidy ratings frame (submitted ratings).

    ``design`` chooses the measures that get the design-wide REML coefficients, the one
    costly part (one model fit each): ``"all"`` (every item, subscale and score; the CLI and
    the export), ``"scales"`` (subscales and scores only; the dashboard) or ``"none"``.
    BLAS runs single-threaded meanwhile: the matrices are tiny, and threads only contend.
    """
    with threadpool_limits(limits=1):
        return _report(frame, instruments, design)


def _report(
    frame: pd.DataFrame, instruments: Sequence[Instrument], design: str
) -> ReliabilityReport:
    instruments = [i for i in instruments if (frame["instrument"] == i.code).any()] or list(
        instruments
    )
    measures = [m for inst in instruments for m in measures_of(inst)]
    values = measure_values(frame, instruments)
    main = values[values["purpose"] != CALIBRATION]
    paired = pair_table(main)
    pairs = pair_results(paired, measures)
    cal = frame[frame["purpose"] == CALIBRATION]
    panel, agreement = calibration_results(cal, instruments)
    wanted = [m for m in measures if _wants_design(m, design)]
    parts = None
    if any(m.previous_items for m in wanted):
        parts = cross_session_parts(frame, instruments)
    return ReliabilityReport(
        instruments=[(i.code, i.name) for i in instruments],
        measures=measures,
        pairs=pairs,
        summaries=pair_summaries(pairs, main, measures),
        design=design_results(main, wanted, parts),
        calibration_panel=panel,
        calibration_raters=agreement,
        consistency=consistency_results(values, instruments),
        paired=paired,
        counts={
            "ratings": int(frame["rating_id"].nunique()),
            "sessions": int(main["session_id"].nunique()),
            "double_coded_sessions": int(paired["session_id"].nunique()),
            "calibration_ratings": int(cal["rating_id"].nunique()),
            "raters": int(frame["rater"].nunique()),
        },
    )


def _wants_design(m: Measure, design: str) -> bool:
    if design not in ("all", "scales", "none"):
        raise ValueError(f"design must be 'all', 'scales' or 'none', got {design!r}")
    return design == "all" or (design == "scales" and m.kind != "item")


def pair_table(values: pd.DataFrame) -> pd.DataFrame:
    """Every double-coded session x measure x rater pair (rater_1 < rater_2), both values known."""
    cols = ["instrument", "measure", "kind", "session_id", "session_number", "patient"]
    slim = values[[*cols, "rater", "value", "submitted_at"]].dropna(subset=["value"])
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
    kappas = {w: batched_weighted_kappa(a, b, codes, w) for w in KAPPA_WEIGHTS}
    heads = paired[[*keys, "kind"]].groupby(codes, sort=True).first()
    n = iccs["n"].to_numpy()
    cols = {c: iccs[c].to_numpy() for c in iccs.columns}
    mean_diff = diff[["mean", "ci_low", "ci_high"]].to_numpy()
    items = {(m.instrument, m.code) for m in measures if m.kind == "item"}
    out = []
    for g, head in enumerate(heads.itertuples(index=False)):
        too_few = _too_few(int(n[g]))
        coefs: dict[str, Result] = {}
        for name, col in (("ICC(A,1)", "ICC(A,1)"), ("ICC(A,2)", "ICC(A,k)")):
            coefs[name] = too_few or _estimate(
                cols[col][g], cols[f"{col} ci_low"][g], cols[f"{col} ci_high"][g]
            )
        if (head.instrument, head.measure) in items:
            for w in KAPPA_WEIGHTS:
                coefs[f"kappa_{w}"] = too_few or _estimate(kappas[w][g])
        coefs["mean_difference"] = too_few or _estimate(*mean_diff[g])
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


def _too_few(
    n: int, noun: str = "session", rest: str = "rated by both", nouns: str | None = None
) -> NotEnoughData | None:
    """The minimum-n rule: '4 sessions rated by both (minimum 5)', or None when n suffices."""
    if n < MIN_SESSIONS:
        counted = " ".join(part for part in (plural(n, noun, nouns), rest) if part)
        return NotEnoughData(f"{counted} (minimum {MIN_SESSIONS})")
    return None


def batched_weighted_kappa(
    a: np.ndarray, b: np.ndarray, groups: np.ndarray, weights: str
) -> np.ndarray:
    """Cohen's weighted kappa of many groups at once over the score points 0-4.

    Same definition as ``stats.weighted_kappa`` (weights over all five score points): one
    confusion matrix per group from a single ``bincount``.  NaN where undefined.
    """
    size = len(SCORE_POINTS)
    m = int(groups.max()) + 1 if len(groups) else 0
    ia, ib = a.astype(int) - SCORE_MIN, b.astype(int) - SCORE_MIN
    flat = (groups * size + ia) * size + ib
    conf = np.bincount(flat, minlength=m * size * size).reshape(m, size, size).astype(float)
    n = conf.sum(axis=(1, 2))
    expected = conf.sum(axis=2)[:, :, None] * conf.sum(axis=1)[:, None, :]
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    w = np.abs(i - j).astype(float) ** (1 if weights == "linear" else 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = expected / n[:, None, None]
        dis_exp = (w * expected).sum(axis=(1, 2))
        kappa = 1 - (w * conf).sum(axis=(1, 2)) / dis_exp
    return np.where(dis_exp > 0, kappa, np.nan)


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
        out.append(PairSummary(m.instrument, m.code, m.kind, len(mine), len(iccs), statistics))
    return out


def _why_no_pair_value(
    m: Measure, pairs: Sequence[PairResult], values: pd.DataFrame
) -> NotEnoughData:
    """Why no rater pair has an ICC(A,2) of ``m``: the reason that is true of the data."""
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


DESIGN_COEFFICIENTS = ("ICC(A,1)", "ICC(A,khat)", "ICC(C,1)", "ICC(Q,khat)")
ALPHAS = ("alpha_interval", "alpha_ordinal")


def design_results(
    values: pd.DataFrame, measures: Sequence[Measure], parts: pd.DataFrame | None = None
) -> list[DesignResult]:
    """``icc_incomplete`` and Krippendorff's alpha per measure over main + double ratings.

    ``values`` are the main + double :func:`measure_values`.  A cross-session score (its two
    parts from two sessions) is computed from ``parts`` (:func:`cross_session_parts`) by
    :func:`cross_session_design`.
    """
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
        too_few = _too_few(n_double, "session", "rated by two or more raters")
        if too_few:
            coefs: dict[str, Result] = dict.fromkeys((*DESIGN_COEFFICIENTS, *ALPHAS), too_few)
        else:
            coefs, details = _design_coefficients(data)
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
    too_few = _too_few(n_double, "session", "with both t−1 and t double-coded")
    for level in ("interval", "ordinal"):
        coefs[f"alpha_{level}"] = too_few or _alpha(independent, level)
    raters = int(parts["rater"].nunique())
    return DesignResult(
        m.instrument, m.code, m.kind, len(per_session), n_double, raters, coefs, details
    )


def _composite_coefficients(parts: pd.DataFrame) -> tuple[dict[str, Result], dict[str, float]]:
    """The composite ICCs of a cross-session score (see :func:`cross_session_design`)."""
    by_part = [parts[parts["part"] == part] for part in (PREVIOUS, CURRENT)]
    reasons = [
        _too_few(_n_double(data), "session", f"with the items of session {t} double-coded")
        for data, t in zip(by_part, ("t−1", "t"), strict=True)
    ]
    reason = next((r for r in reasons if r), None)
    if reason:
        return dict.fromkeys(DESIGN_COEFFICIENTS, reason), {}
    consecutive = _consecutive_means(parts)
    nouns = ("pair of consecutive sessions", "both rated", "pairs of consecutive sessions")
    reason = _too_few(len(consecutive), *nouns)
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
    coefs: dict[str, Result] = {
        name: _estimate(fit[name], *fit[f"{name}_ci"]) for name in DESIGN_COEFFICIENTS
    }
    details = {k: float(fit[k]) for k in ("var_target", "var_rater", "var_residual")}
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
    return _estimate(stats.krippendorff_alpha(table.to_numpy(), level))


def _design_coefficients(data: pd.DataFrame) -> tuple[dict[str, Result], dict[str, float]]:
    coefs: dict[str, Result] = {}
    details: dict[str, float] = {}
    try:
        fit = stats.icc_incomplete(data, target="session_id", rater="rater", score="value")
    except (ValueError, np.linalg.LinAlgError) as exc:  # a degenerate fit: say so, no number
        coefs.update(dict.fromkeys(DESIGN_COEFFICIENTS, _unfitted(exc)))
    else:
        for name in DESIGN_COEFFICIENTS:
            low, high = fit[f"{name}_ci"]
            coefs[name] = _estimate(fit[name], low, high)
        details = {
            k: float(fit[k]) for k in ("khat", "q", "var_target", "var_rater", "var_residual")
        }
    for level in ("interval", "ordinal"):
        coefs[f"alpha_{level}"] = _alpha(data, level)
    return coefs, details


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------


def _calibration_wide(cal: pd.DataFrame) -> pd.DataFrame:
    """(session, item) x rater table of one instrument's calibration scores, complete rows."""
    if cal.empty:
        return pd.DataFrame()
    wide = cal.pivot(index=["session_id", "item"], columns="rater", values="score")
    return wide.dropna(axis=0, how="any").astype(float)


def _panel(instrument: str, wide: pd.DataFrame) -> CalibrationPanel:
    raters = tuple(str(r) for r in wide.columns)
    reason = _too_few(len(wide), "session x item target", "rated by every rater")
    if len(raters) < 2:
        reason = NotEnoughData(
            f"{plural(len(raters), 'rater')} in the calibration round (minimum 2)"
        )
    if reason:
        coefs: dict[str, Result] = {"ICC(A,1)": reason, "ICC(A,k)": reason}
    else:
        table = stats.icc(wide)[["ICC", "ci_low", "ci_high"]].to_numpy()
        coefs = {
            name: _estimate(*table[stats.ICC_TYPES.index(name)])
            for name in ("ICC(A,1)", "ICC(A,k)")
        }
    return CalibrationPanel(instrument, ALL_ITEMS, len(wide), raters, coefs)


def _rater_agreement(instrument: str, wide: pd.DataFrame) -> list[RaterAgreement]:
    """Each rater against the mean of the other raters over the complete (session, item) targets."""
    if wide.shape[1] < 2 or wide.empty:
        return []
    values = wide.to_numpy()
    k = values.shape[1]
    rest = (values.sum(axis=1, keepdims=True) - values) / (k - 1)
    groups = np.repeat(np.arange(k)[None, :], len(values), axis=0)
    iccs = stats.icc_two_raters(values.ravel(), rest.ravel(), groups.ravel(), types=("ICC(A,1)",))
    out = []
    for j, rater in enumerate(wide.columns):
        diff = values[:, j] - rest[:, j]
        too_few = _too_few(len(values), "session x item target", "rated by every rater")
        icc_value = too_few or _estimate(
            *iccs.iloc[j][["ICC(A,1)", "ICC(A,1) ci_low", "ICC(A,1) ci_high"]]
        )
        mad = float(np.abs(diff).mean())
        coefs: dict[str, Result] = {
            "ICC(A,1)": icc_value,
            "mean_difference": Estimate(float(diff.mean())),
            "mean_abs_difference": Estimate(mad),
        }
        why = []
        if isinstance(icc_value, Estimate) and icc_value.value < CALIBRATION_FLAG_ICC:
            why.append(
                f"ICC(A,1) with the panel {format_number(icc_value.value)} < {CALIBRATION_FLAG_ICC}"
            )
        if mad > CALIBRATION_FLAG_MAD:
            why.append(f"mean absolute difference {format_number(mad)} > {CALIBRATION_FLAG_MAD}")
        out.append(
            RaterAgreement(instrument, str(rater), len(values), coefs, bool(why), "; ".join(why))
        )
    return out


def calibration_results(
    cal: pd.DataFrame, instruments: Sequence[Instrument]
) -> tuple[list[CalibrationPanel], list[RaterAgreement]]:
    panels, agreement = [], []
    for inst in instruments:
        wide = _calibration_wide(cal[cal["instrument"] == inst.code])
        panels.append(_panel(inst.code, wide))
        agreement.extend(_rater_agreement(inst.code, wide))
    return panels, agreement


def calibration_icc(frame: pd.DataFrame) -> tuple[float | None, str]:
    """The calibration gate: the lowest ICC(A,1) across instruments, or None and the reason.

    Over the calibration ratings only; targets are session x item, keeping the targets every
    rater in the round has scored.  None when any instrument has too few targets or raters.
    """
    cal = frame[frame["purpose"] == CALIBRATION]
    if cal.empty:
        return None, "no calibration ratings submitted yet"
    results = []
    for code in sorted(cal["instrument"].unique()):
        panel = _panel(code, _calibration_wide(cal[cal["instrument"] == code]))
        value = panel.coefficients["ICC(A,1)"]
        if isinstance(value, NotEnoughData):
            return None, f"{code}: {value}"
        results.append((value.value, code, panel))
    lowest, code, panel = min(results)
    return lowest, (
        f"lowest ICC(A,1) {format_number(lowest, 3)} ({code}; "
        f"{plural(panel.n_targets, 'session x item target')}, {plural(len(panel.raters), 'rater')})"
    )


# --------------------------------------------------------------------------------------
# internal consistency
# --------------------------------------------------------------------------------------


def consistency_results(
    values: pd.DataFrame, instruments: Sequence[Instrument]
) -> list[ConsistencyResult]:
    """Alpha, omega and corrected item-total correlations per scale and subscale (main ratings).

    One rating per session: the main rater's.  Items enter keyed.  Cross-session scores are
    left out (their items come from two sessions).
    """
    main = values[(values["purpose"] == "main") & (values["kind"] == "item")]
    out = []
    for inst in instruments:
        items = main[main["instrument"] == inst.code].pivot(
            index="rating_id", columns="measure", values="value"
        )
        for m in measures_of(inst):
            if m.kind == "item" or m.previous_items or len(m.items) < 2:
                continue
            table = items.reindex(columns=list(m.items)).astype(float).dropna()
            for code in m.items:
                if inst.item(code).reverse:
                    table[code] = SCORE_MAX + SCORE_MIN - table[code]
            out.append(_consistency(m, table))
    return out


def _consistency(m: Measure, table: pd.DataFrame) -> ConsistencyResult:
    too_few = _too_few(len(table), "complete main rating", "")
    if too_few:
        coefs: dict[str, Result] = {"cronbach_alpha": too_few, "omega": too_few}
        return ConsistencyResult(
            m.instrument, m.code, m.kind, len(table), coefs, dict.fromkeys(m.items, too_few)
        )
    coefs = {"cronbach_alpha": _estimate(stats.cronbach_alpha(table))}
    if len(m.items) >= 3:
        coefs["omega"] = _estimate(stats.mcdonald_omega(table))
    else:
        coefs["omega"] = NotEnoughData("omega needs at least 3 items")
    r_drop = stats.item_total_correlations(table)
    item_total = {code: _estimate(float(r_drop[code])) for code in m.items}
    return ConsistencyResult(m.instrument, m.code, m.kind, len(table), coefs, item_total)


# --------------------------------------------------------------------------------------
# tidy tables
# --------------------------------------------------------------------------------------


def _cells(result: Result) -> dict[str, Any]:
    """value, ci_low, ci_high (NaN: undefined; ±inf: unbounded; never −0.0) and note."""
    if isinstance(result, NotEnoughData):
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "note": str(result)}
    numbers = (result.value, result.ci_low, result.ci_high)
    cells = [math.nan if v is None else float(v) + 0.0 for v in numbers]  # + 0.0: −0.0 -> 0.0
    return dict(zip(NUMBER_FIELDS, cells, strict=True)) | {"note": ""}


def _long(
    rows: Iterable[tuple[dict[str, Any], dict[str, Result]]], columns: list[str]
) -> pd.DataFrame:
    records = [
        {**head, "coefficient": name, **_cells(result)}
        for head, coefs in rows
        for name, result in coefs.items()
    ]
    columns = [*columns, "coefficient", "value", "ci_low", "ci_high", "note"]
    return pd.DataFrame.from_records(records, columns=columns)


def _to_frames(rep: ReliabilityReport) -> dict[str, pd.DataFrame]:
    base = ["instrument", "measure", "kind"]
    pairs = _long(
        (
            (
                {
                    "instrument": p.instrument,
                    "measure": p.measure,
                    "kind": p.kind,
                    "rater_1": p.rater_1,
                    "rater_2": p.rater_2,
                    "n": p.n,
                },
                p.coefficients,
            )
            for p in rep.pairs
        ),
        [*base, "rater_1", "rater_2", "n"],
    )
    summary = _long(
        (
            (
                {
                    "instrument": s.instrument,
                    "measure": s.measure,
                    "kind": s.kind,
                    "n_pairs": s.n_pairs,
                    "n_pairs_with_data": s.n_pairs_with_data,
                },
                {f"ICC(A,2) {k}": v for k, v in s.statistics.items()},
            )
            for s in rep.summaries
        ),
        [*base, "n_pairs", "n_pairs_with_data"],
    )
    design = _long(
        (
            (
                {
                    "instrument": d.instrument,
                    "measure": d.measure,
                    "kind": d.kind,
                    "n_sessions": d.n_sessions,
                    "n_double": d.n_double,
                    "n_raters": d.n_raters,
                    **{
                        k: d.details.get(k, math.nan)
                        for k in ("khat", "q", "var_target", "var_rater", "var_residual")
                    },
                },
                d.coefficients,
            )
            for d in rep.design
        ),
        [
            *base,
            "n_sessions",
            "n_double",
            "n_raters",
            "khat",
            "q",
            "var_target",
            "var_rater",
            "var_residual",
        ],
    )
    cal_cols = ["instrument", "measure", "rater", "n_targets", "needs_training", "why"]
    calibration = _long(
        [
            (
                {
                    "instrument": c.instrument,
                    "measure": c.measure,
                    "rater": "(all raters)",
                    "n_targets": c.n_targets,
                    "needs_training": False,
                    "why": "",
                },
                c.coefficients,
            )
            for c in rep.calibration_panel
        ]
        + [
            (
                {
                    "instrument": r.instrument,
                    "measure": ALL_ITEMS,
                    "rater": r.rater,
                    "n_targets": r.n_targets,
                    "needs_training": r.needs_training,
                    "why": r.why,
                },
                r.coefficients,
            )
            for r in rep.calibration_raters
        ],
        cal_cols,
    )
    consistency = _long(
        (
            (
                {
                    "instrument": c.instrument,
                    "measure": c.measure,
                    "kind": c.kind,
                    "item": item,
                    "n_ratings": c.n_ratings,
                },
                coefs,
            )
            for c in rep.consistency
            for item, coefs in [("", c.coefficients)]
            + [(code, {"item_total_r": r}) for code, r in c.item_total.items()]
        ),
        [*base, "item", "n_ratings"],
    )
    return {
        "pairs": pairs,
        "pair_summary": summary,
        "design": design,
        "calibration": calibration,
        "consistency": consistency,
    }


# --------------------------------------------------------------------------------------
# a simulated study (benchmarks, tests, trying the report without a database)
# --------------------------------------------------------------------------------------


def simulated_frame(
    instruments: Sequence[Instrument],
    n_sessions: int = 200,
    n_raters: int = 5,
    double_share: float = 0.4,
    n_calibration: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """A ratings frame (``ratings_frame()`` columns) drawn from a latent-trait model.

    score = clip(round(item intercept + patient + session effect (sign-flipped for
    reverse-keyed items) + rater bias + noise), 0, 4).  Sessions 1..9 per patient; every
    session has a main rater, ``double_share`` of them a second one ('double'), pairs of
    raters cycling so that all pairs overlap about equally; ``n_calibration`` extra sessions
    are rated by every rater.
    """
    rng = np.random.default_rng(seed)
    raters = [f"rater{i + 1:02d}" for i in range(n_raters)]
    all_pairs = [(a, b) for i, a in enumerate(raters) for b in raters[i + 1 :]]
    rows = []
    n_patients = max(1, n_sessions // 9)
    patient_effect = rng.normal(0, 0.7, n_patients + 1)
    bias = dict(zip(raters, rng.normal(0, 0.25, n_raters), strict=True))
    items = [(inst, item) for inst in instruments for item in inst.items]
    intercept = rng.uniform(1.4, 2.6, len(items))
    start = pd.Timestamp("2024-01-01")
    total = n_sessions + n_calibration
    for s in range(total):
        calibration = s >= n_sessions
        p = n_patients if calibration else s % n_patients
        number = 9 if calibration else s // n_patients + 1
        truth = patient_effect[p] + rng.normal(0, 0.5)
        if calibration:
            who = [(r, CALIBRATION) for r in raters]
        elif rng.random() < double_share:
            a, b = all_pairs[int(rng.integers(len(all_pairs)))]
            who = [(a, "main"), (b, "double")]
        else:
            who = [(raters[int(rng.integers(n_raters))], "main")]
        when = start + pd.Timedelta(days=int(365 * s / total))
        for rater, purpose in who:
            noise = rng.normal(0, 0.6, len(items))
            for j, (inst, item) in enumerate(items):
                keyed = -truth if item.reverse else truth
                score = int(np.clip(round(intercept[j] + keyed + bias[rater] + noise[j]), 0, 4))
                rows.append(
                    {
                        "rating_id": f"S{s:05d}-{rater}",
                        "session_id": f"S{s:05d}",
                        "patient": f"P{p:03d}",
                        "therapist": "T1",
                        "session_number": number,
                        "phase": "I" if number < 5 else "II",
                        "rater": rater,
                        "purpose": purpose,
                        "instrument": inst.code,
                        "instrument_version": 1,
                        "item": item.code,
                        "subscale": item.subscale,
                        "score": score,
                        "rating_status": "submitted",
                        "submitted_at": when,
                    }
                )
    frame = pd.DataFrame.from_records(rows)
    frame["rating_id"] = pd.factorize(frame["rating_id"])[0] + 1
    return frame


# --------------------------------------------------------------------------------------
# plain text (the CLI)
# --------------------------------------------------------------------------------------


UNBOUNDED_NOTE = (
    "−∞ as a lower limit: the interval has no lower bound (an average-measures ICC falls "
    "without limit as its single-rater ICC nears −1/(k−1)); – : undefined."
)


def show(result: Result | None, digits: int = 2, ci: bool = True) -> str:
    """'0.82 [0.71, 0.90]', '0.14 [−∞, 0.93]', '0.82' or 'not enough data — reason'.

    Numbers through :func:`rater.templating.format_number` (no '-0.00'; −∞ for an unbounded
    bound); '–' for None and for an undefined bound of an interval that has the other one.
    """
    if result is None:
        return "–"
    if isinstance(result, NotEnoughData):
        return str(result)
    text = format_number(result.value, digits)
    if ci and (result.ci_low is not None or result.ci_high is not None):
        text += (
            f" [{format_number(result.ci_low, digits)}, {format_number(result.ci_high, digits)}]"
        )
    return text


def _banded(result: Result | None) -> str:
    text = show(result)
    if isinstance(result, Estimate):
        text += f" ({band(result.value)})"
    return text


def to_text(rep: ReliabilityReport) -> str:
    """The report as plain text, one block per instrument, then the calibration round."""
    c = rep.counts
    lines = [
        f"Reliability of {plural(c['ratings'], 'submitted rating')} by "
        f"{plural(c['raters'], 'rater')}: {plural(c['sessions'], 'session')} in the main design, "
        f"{c['double_coded_sessions']} double-coded; "
        f"{plural(c['calibration_ratings'], 'calibration rating')}.",
        f"Minimum {MIN_SESSIONS} sessions per coefficient. Bands (Koo & Li 2016): poor < .50, "
        "moderate .50-.75, good .75-.90, excellent > .90.",
        UNBOUNDED_NOTE,
    ]
    for code, name in rep.instruments:
        lines += ["", f"{code} — {name}"]
        for m in (m for m in rep.measures if m.instrument == code):
            lines += _measure_lines(rep, m)
        for cons in (x for x in rep.consistency if x.instrument == code):
            lines.append(
                f"  internal consistency {cons.measure} (n = {cons.n_ratings}): "
                f"Cronbach alpha {show(cons.coefficients['cronbach_alpha'])}, "
                f"omega {show(cons.coefficients['omega'])}"
            )
            lines += [f"    item-total r {i}: {show(r)}" for i, r in cons.item_total.items()]
    lines += ["", "Calibration round (targets = session x item)"]
    for panel in rep.calibration_panel:
        lines.append(
            f"  {panel.instrument}: {plural(len(panel.raters), 'rater')}, "
            f"{plural(panel.n_targets, 'target')}: "
            f"ICC(A,1) {_banded(panel.coefficients['ICC(A,1)'])}, "
            f"ICC(A,k) {_banded(panel.coefficients['ICC(A,k)'])}"
        )
        for r in (r for r in rep.calibration_raters if r.instrument == panel.instrument):
            flag = f"  NEEDS MORE TRAINING: {r.why}" if r.needs_training else ""
            lines.append(
                f"    {r.rater}: ICC(A,1) with the panel {show(r.coefficients['ICC(A,1)'])}, "
                f"mean difference {show(r.coefficients['mean_difference'])}, "
                f"mean |difference| {show(r.coefficients['mean_abs_difference'])}{flag}"
            )
    return "\n".join(lines)


def _measure_lines(rep: ReliabilityReport, m: Measure) -> list[str]:
    s = rep.summary(m.instrument, m.code)
    d = rep.design_result(m.instrument, m.code)
    lines = [f"  {m.code} ({m.kind}: {m.label})"]
    if s is not None:
        st = s.statistics
        spread = (
            f", range {show(st['min'])} to {show(st['max'])}"
            if isinstance(st["min"], Estimate)
            else ""
        )
        lines.append(
            f"    pairs: {s.n_pairs_with_data} of {s.n_pairs} with data; ICC(A,2) mean "
            f"{_banded(st['mean'])}, median {show(st['median'])}{spread}"
        )
    if d is not None:
        co = d.coefficients
        lines.append(
            f"    whole design ({plural(d.n_sessions, 'session')}, {d.n_double} double-coded, "
            f"{plural(d.n_raters, 'rater')}): ICC(Q,khat) {_banded(co['ICC(Q,khat)'])}, ICC(A,1) "
            f"{show(co['ICC(A,1)'])}, alpha interval {show(co['alpha_interval'])}, "
            f"ordinal {show(co['alpha_ordinal'])}"
        )
    for p in rep.pairs_of(m.instrument, m.code):
        lines.append(
            f"    {p.rater_1}-{p.rater_2} n={p.n}: ICC(A,2) {_banded(p.coefficients['ICC(A,2)'])}, "
            f"mean difference {show(p.coefficients['mean_difference'])}"
        )
    return lines
