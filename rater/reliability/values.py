"""The ratings frame -> one value per rating and measure (pure).

Every measure of an instrument (``Instrument.measures()``: items, scale scores, subscales, and the
code counts and summary measures of a coding sheet) gets one value per rating, computed by the
instrument's own scoring (``Instrument.scale_scores``, ``Instrument.event_summaries`` through
``rater.coding.measures.event_values``).
A cross-session score of a rater at session t is *the rater's own*: it combines the same
rater's ratings of sessions t-1 and t of that patient (missing when there is none); these are
the values of rater pairs. The design-wide coefficient of a cross-session score uses its two
parts instead (:func:`cross_session_parts`, :func:`cross_session_values`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rater.instruments import (
    EVENT_BASED,
    Instrument,
    ItemKind,
    Measure,
    MeasureKind,
    previous_session,
)
from rater.states import Purpose

RATING_KEYS = ["rating_id", "session_id", "patient", "session_number", "rater", "purpose"]
# ``batch``: the release that opened the rating's assignment (missing when the frame has none).
VALUE_COLUMNS = [*RATING_KEYS, "submitted_at", "batch", "instrument", "measure", "kind", "value"]


MEASURE_KINDS = (
    MeasureKind.ITEM,
    MeasureKind.SCORE,
    MeasureKind.SUBSCALE,
    MeasureKind.RATE,
    MeasureKind.CODE_COUNT,
    MeasureKind.SUMMARY,
)


def measures_of(instrument: Instrument) -> list[Measure]:
    """The measures of an instrument that have a value per rating here, in file order."""
    return [m for m in instrument.measures() if m.kind in MEASURE_KINDS]


def item_numbers(mine: pd.DataFrame, instrument: Instrument) -> pd.Series:
    """Each row's item value as a number: the score of ordinal and count items, the category
    number (``Item.category_number``) of a nominal item with one category; NaN where the item
    is not applicable, missing, text, or several categories were chosen."""
    numbers = mine["score"].astype("float64")
    if "value" not in mine:  # a frame of scores only (older callers)
        return numbers
    for item in instrument.items:
        if item.kind == ItemKind.NOMINAL and not item.multiple:
            rows = (mine["item"] == item.code) & mine["value"].notna()
            numbers[rows] = mine.loc[rows, "value"].map(item.category_number).astype("float64")
    return numbers


def session_minutes(sessions: pd.DataFrame) -> pd.Series:
    """Session code -> length of its recording in minutes (NaN where unknown), from a frame
    with the columns ``session_id`` and ``duration_seconds`` (``sessions_frame()``)."""
    seconds = pd.to_numeric(sessions["duration_seconds"], errors="coerce").astype("float64")
    return pd.Series(seconds.to_numpy() / 60, index=sessions["session_id"].to_numpy())


def without_length(values: pd.DataFrame, m: Measure) -> int:
    """How many ratings have no value of the rate ``m`` although they have its count: the
    recording's length (``duration_seconds``) is unknown. 0 for a measure that is no rate.
    ``values`` are :func:`measure_values`."""
    if not m.per_minute:
        return 0
    mine = values[values["instrument"] == m.instrument]
    rate = mine[mine["measure"] == m.code].set_index("rating_id")["value"]
    if m.kind == MeasureKind.RATE:
        counted = mine[mine["measure"] == m.items[0]].set_index("rating_id")["value"]
        counted = counted.reindex(rate.index)
    else:  # a summary rate: its counts are never missing
        counted = pd.Series(0.0, index=rate.index)
    return int((rate.isna() & counted.notna()).sum())


def length_reason(values: pd.DataFrame, m: Measure) -> str:
    """'; 3 ratings have no rate: ...' when ratings lack the recording's length, else ''."""
    n = without_length(values, m)
    if not n:
        return ""
    ratings = "1 rating has" if n == 1 else f"{n} ratings have"
    return (
        f"; {ratings} no rate per minute: the session's recording length (duration_seconds) "
        "is unknown"
    )


def not_applicable_counts(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(instrument, item) -> how many answers were 'not applicable' (excluded everywhere)."""
    if "not_applicable" not in frame:  # a frame of scores only (older callers)
        return {}
    na = frame[frame["not_applicable"] == 1]
    return {key: int(n) for key, n in na.groupby(["instrument", "item"]).size().items()}


def _rating_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """``RATING_KEYS`` without rating_id, submitted_at and batch of ``rows`` (batch missing
    when the frame has none: frames built by hand, older callers)."""
    if "batch" not in rows:
        rows = rows.assign(batch=pd.NA)
    return rows[[*RATING_KEYS[1:], "submitted_at", "batch"]]


def item_values(frame: pd.DataFrame, instrument: Instrument) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per rating of ``instrument``: its item values (one column per item code, NaN
    where missing or not applicable; see :func:`item_numbers`) and the rating's keys
    (``RATING_KEYS`` without rating_id, submitted_at, batch)."""
    mine = frame[frame["instrument"] == instrument.code]
    mine = mine.assign(number=item_numbers(mine, instrument))
    values = mine.pivot(index="rating_id", columns="item", values="number").astype("float64")
    values = values.reindex(columns=instrument.item_codes)
    keys = mine.drop_duplicates("rating_id").set_index("rating_id")
    return values, _rating_keys(keys.loc[values.index])


def measure_values(
    frame: pd.DataFrame,
    instruments: Sequence[Instrument],
    events: pd.DataFrame | None = None,
    minutes: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per rating x measure: the columns ``VALUE_COLUMNS``.

    Items enter raw; scores and subscales as the instrument scores them. The t-1 of a
    cross-session score is the same rater's main or double rating of the patient's previous
    session (never a calibration rating). ``events`` is the table of event measures per coded
    rating (``rater.coding.measures.event_values``); their values enter like scale scores.
    ``minutes`` is the length of each session's recording in minutes (index: session code);
    rates per minute of count items are missing for a session without a length (or without
    ``minutes``).
    """
    parts = [] if events is None else _event_parts(events, instruments)
    for instrument in instruments:
        if not (frame["instrument"] == instrument.code).any():
            continue
        values, keys = item_values(frame, instrument)
        previous = previous_session(
            values, keys, by=("patient", "rater"), among=keys["purpose"] != Purpose.CALIBRATION
        )
        length = None if minutes is None else keys["session_id"].map(minutes)
        scores = instrument.scale_scores(values, previous=previous, minutes=length)
        measures = measures_of(instrument)
        table = pd.concat([values, scores], axis=1)
        measures = [m for m in measures if m.kind not in EVENT_BASED]
        table = table[[m.code for m in measures]]
        long = table.rename_axis(columns="measure").stack(future_stack=True).rename("value")
        long = long.reset_index().join(keys, on="rating_id")
        long["instrument"] = instrument.code
        long["kind"] = long["measure"].map({m.code: m.kind.value for m in measures})
        parts.append(long)
    if not parts:
        return pd.DataFrame(columns=VALUE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[VALUE_COLUMNS]


def _event_parts(events: pd.DataFrame, instruments: Sequence[Instrument]) -> list[pd.DataFrame]:
    """The event measures of each coding sheet in long form (``VALUE_COLUMNS``)."""
    parts = []
    for instrument in instruments:
        measures = [m for m in measures_of(instrument) if m.kind in EVENT_BASED]
        codes = [m.code for m in measures if m.code in events.columns]
        if not codes:
            continue
        mine = events.dropna(subset=codes, how="all")[codes]
        long = mine.rename_axis(columns="measure").stack(future_stack=True).rename("value")
        keys = _rating_keys(events)
        long = long.reset_index().join(keys, on="rating_id")
        long["instrument"] = instrument.code
        long["kind"] = long["measure"].map({m.code: m.kind.value for m in measures})
        parts.append(long)
    return parts


PART_COLUMNS = [
    "instrument", "measure", "kind", "part", "weight", "session_id", "patient",
    "session_number", "rater", "value",
]  # fmt: skip
PREVIOUS, CURRENT = "previous", "current"  # the parts of a cross-session score


def cross_session_parts(frame: pd.DataFrame, instruments: Sequence[Instrument]) -> pd.DataFrame:
    """The two parts of every cross-session score, per main/double rating (never calibration).

    ``part`` "previous" is the rating's part of the score of the *next* session, "current" its
    part of its own session's score (``Instrument.cross_session_parts``); ``weight`` is the
    part's share of the score's items (5/8 and 3/8 for the StHAR total, a mean of eight
    items). Missing parts (an item missing) are dropped. Columns: ``PART_COLUMNS``.
    """
    found = []
    for instrument in instruments:
        rules = [rule for rule in instrument.scores if rule.is_cross_session]
        if not rules or not (frame["instrument"] == instrument.code).any():
            continue
        values, keys = item_values(frame, instrument)
        main = keys["purpose"] != Purpose.CALIBRATION
        ratings = keys.loc[main, ["session_id", "patient", "session_number", "rater"]]
        for rule in rules:
            table, weights = instrument.cross_session_parts(values[main], rule)
            for part, weight in zip((PREVIOUS, CURRENT), weights, strict=True):
                found.append(
                    ratings.assign(
                        instrument=instrument.code,
                        measure=rule.code,
                        kind=MeasureKind.SCORE.value,
                        part=part,
                        weight=weight,
                        value=table[part],
                    ).dropna(subset=["value"])
                )
    if not found:
        return pd.DataFrame(columns=PART_COLUMNS)
    return pd.concat(found, ignore_index=True)[PART_COLUMNS]


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
