"""Analysis-ready tables from the tidy frames (pure: no Flask, no database).

Every export kind is a function of plain pandas frames (the ratings frame, the sessions frame and
a few small frames loaded by ``rater.export.service``) and the instruments. Each kind has a column
list (``columns_of``); the table builders return exactly those columns in that order, and the
codebook is generated from the same lists, so it describes every column of every export.

Every rule that computes a column (a scale score, the resolution of items across raters, the
ratings a session row uses, homework counts, difficulty indicators) is stated once, in
``RULES`` or by the instrument's scoring rule (``score_rules``): the codebook has one row per
rule and every column it computes names it. ``long`` and ``wide`` hold each rater's own scores;
only ``sessions`` (one row per session) resolves across raters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rater.coding.measures import event_measures
from rater.coding.measures import rule_text as event_rule_text
from rater.instruments import (
    Instrument,
    Item,
    ItemKind,
    LogKind,
    Measure,
    MeasureKind,
    previous_session,
)
from rater.states import Completion, Purpose, RatingStatus, SessionStatus

KINDS = ("long", "wide", "sessions", "homework", "events", "reliability", "codebook", "audit")
RESOLVE_MODES = ("consensus", "mean", "main")
# Where a consensus was recorded it is what the analysis dataset uses unless told otherwise.
DEFAULT_RESOLVE = "consensus"
# Per session: where its resolved items come from (the ``resolution`` column).
RESOLUTIONS = ("consensus", "consensus+mean", "mean", "main")
RULE_ROW = "rule"  # the codebook's ``export`` of a row that states a rule

PURPOSES = "|".join(Purpose)
PHASES = "I|II"
ITEM_SCALE = "the item's scale (its own row of the codebook)"


@dataclass(frozen=True)
class VersionedInstrument:
    """An instrument with the version number it is stored under."""

    instrument: Instrument
    version: int


@dataclass(frozen=True)
class Column:
    """One column of an export, as the codebook describes it."""

    name: str
    label: str
    type: str  # string | integer | number | date | datetime | json
    allowed: str = ""
    anchors: str = ""
    rule: str = ""
    instrument: str = ""
    instrument_version: int | None = None


@dataclass(frozen=True)
class Rule:
    """A rule that computes export columns, stated once (one codebook row)."""

    name: str
    label: str
    text: str
    instrument: str = ""
    instrument_version: int | None = None


# What each --resolve mode makes of a session's items (the rule ``resolution``; the meta file
# and the downloads page quote the mode applied).
RESOLVE_MEANINGS = {
    "consensus": "an item is the consensus score recorded for that item of the session where "
    "there is one, else the mean of the ratings used (the pair mean of a double-coded session)",
    "mean": "an item is the mean of the ratings used (the pair mean of a double-coded session); "
    "consensus scores are not used",
    "main": "an item is the score of the rating whose assignment purpose is main; consensus "
    "scores and the other ratings are not used",
}
RESOLUTION = Rule(
    "resolution",
    "How a session's items are resolved across raters (--resolve)",
    "".join(
        f"With --resolve {mode}{' (the default)' if mode == DEFAULT_RESOLVE else ''}, "
        f"{RESOLVE_MEANINGS[mode]}. "
        for mode in RESOLVE_MODES
    )
    + "Nominal and text items are the value every rating used gives (missing when they "
    "differ). 'Not applicable' counts as missing. "
    "An item is missing when no rating used scored it and no consensus applies. The "
    "resolution column says per session what was used: consensus (every item from consensus "
    "scores), consensus+mean (some items), mean, main; empty when nothing was.",
)
RATINGS_USED = Rule(
    "ratings_used",
    "The ratings a session's row is computed from",
    "The session's submitted ratings (drafts too with --include-drafts) that are not "
    "calibration ratings (those too with --include-calibration); with --resolve main only the "
    "rating whose assignment purpose is main.",
)
PER_RATING_MEAN = Rule(
    "per_rating_mean",
    "Homework a rater logged, over the ratings used",
    "Each rater logs their own list, so the value is the mean over the ratings used of each "
    "rating's count (a rating without such entries counts 0; with --resolve main the main "
    "rating's count); missing when no rating is used.",
)
ANY_RATING = Rule(
    "any_rating",
    "Difficulty ticked by a rater, over the ratings used",
    "1 when any rating used ticked it, 0 when ratings are used and none ticked it, missing "
    "when no rating is used.",
)
EVENT_MEAN = Rule(
    "event_mean",
    "A summary measure of events of a session, over the ratings used",
    "The mean over the ratings used of each rating's value of the measure (its own rule); "
    "consensus scores do not apply to events; missing when no rating used has a value.",
)
RULES = (RESOLUTION, RATINGS_USED, PER_RATING_MEAN, ANY_RATING)


# ---------------------------------------------------------------------------- column lists

_KEYS = [
    Column("session_id", "Session code", "string"),
    Column("patient", "Patient code (pseudonymous)", "string"),
    Column("therapist", "Therapist code (pseudonymous)", "string"),
    Column("session_number", "Session number within the patient's treatment", "integer", ">=1"),
    Column("phase", "Treatment phase", "string", PHASES),
]
_RATER = [
    Column("rater", "Rater (username)", "string"),
    Column("purpose", "Purpose of the rater's assignment", "string", PURPOSES),
]
_STATUS = [
    Column("rating_status", "Status of the rating", "string", "draft|submitted"),
    Column("submitted_at", "When the rating was submitted (UTC); empty for drafts", "datetime"),
]

LONG = [
    *_KEYS,
    *_RATER,
    Column("instrument", "Instrument code", "string"),
    Column("instrument_version", "Version of the instrument the rating used", "integer", ">=1"),
    Column("item", "Item code (as in the instrument file)", "string"),
    Column("subscale", "Subscale of the item; empty when it has none", "string"),
    Column(
        "score",
        "Score of an ordinal or count item as given (raw, not reverse-keyed); empty when not "
        "applicable and for nominal and text items",
        "integer",
        ITEM_SCALE,
    ),
    Column(
        "value",
        "Answer of a nominal item (its category code; several joined by ';') or a text item "
        "(the text); empty for ordinal and count items",
        "string",
        ITEM_SCALE,
    ),
    Column(
        "not_applicable",
        "1 when the rater chose 'not applicable' for the item (score and value are then "
        "empty), else 0",
        "integer",
        "0|1",
    ),
    *_STATUS,
]

HOMEWORK = [
    *_KEYS,
    Column("kind", "Log item", "string", "reported_completed|assigned_next"),
    Column("rater", "Rater who logged it; empty for homework assigned next", "string"),
    Column("homework_type", "Homework type", "string"),
    Column("completion", "Completed? (reported homework only)", "string", "yes|partly|no"),
    Column("description", "Short free-text description", "string"),
    Column("entered_by", "User who entered the entry", "string"),
    Column("rating_status", "Status of the entry's rating", "string", "draft|submitted"),
    Column("created_at", "When the entry was made (UTC)", "datetime"),
]

AUDIT = [
    Column("event_id", "Audit event number", "integer"),
    Column("at", "When it happened (UTC)", "datetime"),
    Column("user", "Acting user; empty for command-line changes", "string"),
    Column("action", "What was done", "string"),
    Column("entity_type", "Kind of object changed", "string"),
    Column("entity_id", "Database id of the object changed", "string"),
    Column("before", "State before the change (JSON)", "json"),
    Column("after", "State after the change (JSON)", "json"),
]


def events_columns(instruments: Sequence[VersionedInstrument]) -> list[Column]:
    """One row per coded event; ``code`` lists every behaviour code with its label."""
    codes = [(vi, c) for vi in instruments for c in vi.instrument.codes]
    return [
        *_KEYS,
        *_RATER,
        Column("instrument", "Coding sheet (instrument code)", "string"),
        Column(
            "code",
            "Behaviour code of the event",
            "string",
            "|".join(c.code for _, c in codes),
            "; ".join(
                f"{c.code} = {c.label}{' (segment)' if c.segment else ''}" for _, c in codes
            ),
        ),
        Column("time_s", "When the event starts, in seconds from the start of the recording",
               "number", ">=0"),
        Column("end_s", "When a segment ends (seconds); empty for a point event", "number",
               ">=time_s"),
        Column("note", "The coder's note on the event", "string"),
        *_STATUS,
    ]  # fmt: skip


def event_measure_columns(
    instruments: Sequence[VersionedInstrument], rule: str = ""
) -> list[Column]:
    """Code counts and summary measures of the coding sheets (rule: each measure's own, or
    ``rule`` for a value computed over ratings)."""
    return [
        Column(m.code, m.label, "number", ">=0", "", rule or m.code, vi.instrument.code,
               vi.version)
        for vi in instruments
        for m in event_measures(vi.instrument)
    ]  # fmt: skip


def event_rules(instruments: Sequence[VersionedInstrument]) -> list[Rule]:
    return [
        Rule(m.code, m.label, event_rule_text(vi.instrument, m), vi.instrument.code, vi.version)
        for vi in instruments
        for m in event_measures(vi.instrument)
    ]


CODEBOOK = [
    Column(
        "export",
        f"Export kind the column belongs to; '{RULE_ROW}' for a row stating a rule",
        "string",
        "|".join([*KINDS, RULE_ROW]),
    ),
    Column("column", "Column name (of a rule row: the rule's name)", "string"),
    Column("label", "What the column holds (the rule computes)", "string"),
    Column(
        "type",
        "Data type; empty for a rule row",
        "string",
        "string|integer|number|date|datetime|json",
    ),
    Column("allowed_values", "Allowed values or range", "string"),
    Column("anchors", "Verbal anchors of the score points of an item", "string"),
    Column(
        "scoring_rule",
        f"Of a column: the name of the rule that computes it (a '{RULE_ROW}' row); "
        "of a rule row: the rule",
        "string",
    ),
    Column("instrument", "Instrument the column comes from", "string"),
    Column("instrument_version", "Version of that instrument", "integer"),
]

RELIABILITY_LABELS = {
    "table": "Table of the reliability report the row comes from",
    "instrument": "Instrument code",
    "measure": "Item, subscale or scale score the coefficient is about",
    "kind": "Kind of measure (item, subscale, scale)",
    "rater_1": "First rater of the pair",
    "rater_2": "Second rater of the pair",
    "rater": "Rater (calibration: agreement with the rest of the panel)",
    "item": "Item of an item-total correlation; empty for the whole scale",
    "coefficient": "Name of the coefficient",
    "value": "Value of the coefficient; empty when there is not enough data",
    "ci_low": "Lower bound of the 95 % confidence interval",
    "ci_high": "Upper bound of the 95 % confidence interval",
    "note": "Why a coefficient is missing (not enough data)",
    "needs_training": "1 when the rater's calibration agreement is below the threshold",
    "why": "Why the rater is flagged",
}
RELIABILITY_TAIL = ("coefficient", "value", "ci_low", "ci_high", "note")


def slug(text: str) -> str:
    """'relapse prevention' -> 'relapse_prevention' (safe column names for R, SPSS, Stata)."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def item_allowed(item: Item) -> str:
    """An item's allowed values in the codebook, with its N/A choice."""
    allowed = item.allowed_text()
    if item.kind == ItemKind.NOMINAL and item.multiple:
        allowed += " (several joined by ';')"
    if item.allows_not_applicable:
        allowed += (
            f"; not applicable ('{item.not_applicable}'): long not_applicable = 1, "
            "missing in wide and sessions"
        )
    return allowed


def item_anchors(item: Item) -> str:
    """The anchors of an ordinal item, or the categories (code = label) of a nominal one."""
    if item.kind == ItemKind.NOMINAL:
        return "; ".join(f"{code} = {label}" for code, label in item.categories.items())
    return "; ".join(f"{p} = {text}" for p, text in sorted(item.anchors.items()))


def _item_type(item: Item, numeric: str) -> str:
    return numeric if item.is_numeric else "string"


def _item_columns(
    instruments: Sequence[VersionedInstrument], rule: str = "", type_: str = "integer"
) -> list[Column]:
    """One column per item; ``rule`` names the rule that gives its value (none: as rated).
    ``type_`` is the type of ordinal and count items (nominal and text items hold text)."""
    cols = []
    for vi in instruments:
        for item in vi.instrument.items:
            anchors = item_anchors(item)
            flipped_in = [
                r.code for r in vi.instrument.scores if item.reverse and item.code in r.all_items
            ]
            label = item.label + (
                f" (reverse-keyed in {', '.join(flipped_in)})" if flipped_in else ""
            )
            cols.append(
                Column(
                    item.code,
                    label,
                    _item_type(item, type_),
                    item_allowed(item),
                    anchors,
                    rule,
                    vi.instrument.code,
                    vi.version,
                )
            )
    return cols


def score_rules(instruments: Sequence[VersionedInstrument]) -> list[Rule]:
    """The instruments' scoring rules, each named by the score it computes."""
    return [
        Rule(
            rule.code,
            rule.label,
            vi.instrument.rule_text(rule),
            vi.instrument.code,
            vi.version,
        )
        for vi in instruments
        for rule in vi.instrument.scores
    ]


def _score_columns(
    instruments: Sequence[VersionedInstrument], cross_session: bool = False
) -> list[Column]:
    """The scores of the instruments; cross-session ones only with ``cross_session`` (they
    need the session before, which a row of one rating does not have)."""
    return [
        Column(
            rule.code,
            rule.label,
            "number",
            "",
            "",
            rule.code,
            vi.instrument.code,
            vi.version,
        )
        for vi in instruments
        for rule in vi.instrument.scores
        if cross_session or not rule.is_cross_session
    ]


def _rate_measures(instrument: Instrument) -> list[Measure]:
    """The rates per minute of the instrument's count items (``per_minute = true``)."""
    return [m for m in instrument.measures() if m.kind == MeasureKind.RATE]


def _rate_columns(instruments: Sequence[VersionedInstrument]) -> list[Column]:
    """One column per rate per minute of a count item, computed by its own rule."""
    return [
        Column(m.code, m.label, "number", ">=0", "", m.code, vi.instrument.code, vi.version)
        for vi in instruments
        for m in _rate_measures(vi.instrument)
    ]


def rate_rules(instruments: Sequence[VersionedInstrument]) -> list[Rule]:
    """The rule of each rate per minute of a count item."""
    return [
        Rule(
            m.code,
            m.label,
            f"{m.items[0]} / (duration_seconds / 60) of the session's recording; missing when "
            f"{m.items[0]} is missing or the recording's length is unknown.",
            vi.instrument.code,
            vi.version,
        )
        for vi in instruments
        for m in _rate_measures(vi.instrument)
    ]


def _types(instruments: Sequence[VersionedInstrument], attribute: str) -> list[str]:
    seen: list[str] = []
    for vi in instruments:
        for value in getattr(vi.instrument, attribute):
            if value not in seen:
                seen.append(value)
    return seen


def wide_columns(instruments: Sequence[VersionedInstrument]) -> list[Column]:
    versions = [
        Column(
            f"{vi.instrument.code}_version",
            f"Version of {vi.instrument.code} the rating used",
            "integer",
            ">=1",
            instrument=vi.instrument.code,
            instrument_version=vi.version,
        )
        for vi in instruments
    ]
    return [
        *_KEYS,
        *_RATER,
        *_STATUS,
        *versions,
        *_item_columns(instruments),
        *_rate_columns(instruments),
        *_score_columns(instruments),
        *event_measure_columns(instruments),
    ]


def sessions_columns(instruments: Sequence[VersionedInstrument]) -> list[Column]:
    """The analysis dataset's columns (the same under every resolution: rules say how)."""
    homework = _types(instruments, "homework_types")
    difficulties = _types(instruments, "difficulty_types")
    return [
        *_KEYS,
        Column("recorded_on", "Date of the recording", "date"),
        Column("duration_seconds", "Length of the recording in seconds", "number", ">=0"),
        Column(
            "n_raters",
            "Number of ratings the row uses",
            "integer",
            ">=0",
            rule=RATINGS_USED.name,
        ),
        Column(
            "resolution",
            "Where the session's items come from; empty when from nothing",
            "string",
            "|".join(RESOLUTIONS),
            rule=RESOLUTION.name,
        ),
        Column(
            "n_consensus_items",
            "Number of items that are consensus scores",
            "integer",
            ">=0",
            rule=RESOLUTION.name,
        ),
        *_item_columns(instruments, RESOLUTION.name, "number"),
        *_rate_columns(instruments),
        *_score_columns(instruments, cross_session=True),
        *event_measure_columns(instruments, EVENT_MEAN.name),
        Column("phq9", "PHQ-9 total of the session (outcome)", "integer", "0-27"),
        *[
            Column(
                f"hw_reported_{slug(t)}",
                f"Homework of type '{t}' reported since the last session",
                "number",
                ">=0",
                rule=PER_RATING_MEAN.name,
            )
            for t in homework
        ],
        Column(
            "hw_reported_total",
            "Homework reported, all types",
            "number",
            ">=0",
            rule=PER_RATING_MEAN.name,
        ),
        Column(
            "hw_completed",
            "Reported homework marked completed 'yes'",
            "number",
            ">=0",
            rule=PER_RATING_MEAN.name,
        ),
        *[
            Column(
                f"hw_assigned_{slug(t)}",
                f"Homework of type '{t}' assigned for the next session (coordinator entries)",
                "integer",
                ">=0",
            )
            for t in homework
        ],
        Column("hw_assigned_total", "Homework assigned for the next session", "integer", ">=0"),
        *[
            Column(
                f"difficulty_{slug(t)}",
                f"Difficulty '{t}' ticked",
                "integer",
                "0|1",
                rule=ANY_RATING.name,
            )
            for t in difficulties
        ],
    ]


RELIABILITY_NUMBERS = ("value", "ci_low", "ci_high", "khat", "q")


def _reliability_type(name: str, column: pd.Series) -> str:
    """By name first: an empty report has untyped (object) columns."""
    if name in RELIABILITY_NUMBERS or name.startswith("var_"):
        return "number"
    if name == "n" or name.startswith("n_") or name == "needs_training":
        return "integer"
    if pd.api.types.is_integer_dtype(column):
        return "integer"
    return "number" if pd.api.types.is_numeric_dtype(column) else "string"


def reliability_columns(frame: pd.DataFrame | None) -> list[Column]:
    """The columns of the reliability table (known once the report exists)."""
    if frame is None:
        return []
    return [
        Column(
            name,
            RELIABILITY_LABELS.get(name, f"Count or parameter reported with the row: {name}"),
            _reliability_type(name, frame[name]),
            "0|1" if name == "needs_training" else "",
        )
        for name in frame.columns
    ]


def columns_of(
    kind: str,
    instruments: Sequence[VersionedInstrument],
    reliability: pd.DataFrame | None = None,
) -> list[Column]:
    """The columns of one export kind, in their stable order."""
    if kind == "long":
        return LONG
    if kind == "wide":
        return wide_columns(instruments)
    if kind == "sessions":
        return sessions_columns(instruments)
    if kind == "homework":
        return HOMEWORK
    if kind == "events":
        return events_columns(instruments)
    if kind == "audit":
        return AUDIT
    if kind == "codebook":
        return CODEBOOK
    if kind == "reliability":
        return reliability_columns(reliability)
    raise ValueError(f"unknown export kind {kind!r}")


# ---------------------------------------------------------------------------- tables


def _names(columns: Sequence[Column]) -> list[str]:
    return [c.name for c in columns]


def long_table(ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per rating × item, in the ratings frame's order."""
    return ratings[_names(LONG)].reset_index(drop=True)


def _pivot_items(
    ratings: pd.DataFrame, index: str, instruments: Sequence[VersionedInstrument]
) -> pd.DataFrame:
    """One column per item: the score of ordinal and count items (float, NaN when missing or
    not applicable), the value of nominal and text items (text, None when missing)."""
    items = [item for vi in instruments for item in vi.instrument.items]
    scores = ratings.pivot_table(
        index=index, columns="item", values="score", aggfunc="first", sort=False
    ).astype("float64")
    texts = ratings.dropna(subset=["value"]).pivot(index=index, columns="item", values="value")
    out = pd.DataFrame(index=scores.index.union(texts.index, sort=False))
    for item in items:
        source = scores if item.is_numeric else texts
        column = source.get(item.code)
        if item.is_numeric:
            out[item.code] = column if column is not None else np.nan
        else:
            out[item.code] = (column if column is not None else pd.Series(dtype=object)).astype(
                object
            )
    return out


def _add_scores(
    out: pd.DataFrame,
    items: pd.DataFrame,
    instruments: Sequence[VersionedInstrument],
    previous: pd.DataFrame | None = None,
    minutes: pd.Series | None = None,
) -> None:
    """The instruments' scores and rates per minute of each row (``Instrument.scale_scores``);
    cross-session scores only when ``previous`` gives the rows of session t-1; rates from
    ``minutes``, the length of each row's recording in minutes (same index as ``items``)."""
    for vi in instruments:
        scores = vi.instrument.scale_scores(items, previous=previous, minutes=minutes)
        for m in _rate_measures(vi.instrument):
            out[m.code] = scores[m.code].to_numpy()
        for rule in vi.instrument.scores:
            if previous is not None or not rule.is_cross_session:
                out[rule.code] = scores[rule.code].to_numpy()


def wide_table(
    ratings: pd.DataFrame,
    instruments: Sequence[VersionedInstrument],
    events: pd.DataFrame | None = None,
    minutes: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per rating: keys, instrument versions, one column per item, rates per minute,
    mean-rule scores, and the event measures of ratings that code events (``events``: the
    table of ``rater.coding.measures.event_values``; a rating with events only has a row too).
    ``minutes``: the length of each session's recording in minutes (index: session code);
    rates are missing without it."""
    columns = wide_columns(instruments)
    keys = _names([*_KEYS, *_RATER, *_STATUS])
    events = events if events is not None else pd.DataFrame(columns=keys)
    if ratings.empty and events.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _names(columns)})
    first = ratings.drop_duplicates("rating_id").set_index("rating_id")
    out = first[keys].copy()
    coded_only = events.index.difference(out.index)
    if len(coded_only):
        out = pd.concat([out, events.loc[coded_only, keys]]) if len(out) else events[keys].copy()
        out = out.sort_values(["session_id", "rater"], kind="mergesort")
    versions = ratings.pivot_table(
        index="rating_id", columns="instrument", values="instrument_version", aggfunc="first"
    )
    for vi in instruments:
        code = vi.instrument.code
        column = versions[code] if code in versions else pd.Series(dtype="float64")
        if f"{code}_version" in events:
            column = events[f"{code}_version"]
        out[f"{code}_version"] = column.reindex(out.index).astype("Int64")
    items = _pivot_items(ratings, "rating_id", instruments).reindex(out.index)
    for vi in instruments:
        for item in vi.instrument.items:
            column = items[item.code]
            out[item.code] = column.astype("Int64") if item.is_numeric else _text(column)
    length = out["session_id"].map(minutes) if minutes is not None else None
    _add_scores(out, items, instruments, minutes=length)
    for column in _names(event_measure_columns(instruments)):
        out[column] = events[column].reindex(out.index).astype("float64")
    return out[_names(columns)].reset_index(drop=True)


# ------------------------------------------------------------------ sessions (resolution)


def _text(column: pd.Series) -> pd.Series:
    """Text cells with None where missing (the writers' empty cell)."""
    return column.astype(object).where(column.notna(), None)


def _agreed_values(
    used: pd.DataFrame, codes: list[str], index: pd.Index, consensus: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Session x nominal/text item: the consensus value where one was recorded (with
    ``consensus``), else the value when every rating used gives the same value, else missing
    (rule ``resolution``)."""
    rows = used[used["item"].isin(codes)].dropna(subset=["value"])
    grouped = rows.groupby(["session_id", "item"])["value"]
    agreed = grouped.first().where(grouped.nunique() == 1)
    table = agreed.unstack("item") if not agreed.empty else pd.DataFrame(index=index)
    table = table.reindex(index=index, columns=codes).astype(object)
    if consensus is not None and "value" in consensus:
        decided = consensus[consensus["item"].isin(codes)]
        for row in decided.itertuples(index=False):
            if row.session_id in table.index:
                table.loc[row.session_id, row.item] = None if row.not_applicable else row.value
    return table


def _check_resolve(resolve: str) -> None:
    if resolve not in RESOLVE_MODES:
        raise ValueError(f"resolve must be one of {', '.join(RESOLVE_MODES)}")


def ratings_used(ratings: pd.DataFrame, include_calibration: bool, resolve: str) -> pd.DataFrame:
    """The rows of the ratings frame a sessions row is computed from (rule ``ratings_used``)."""
    _check_resolve(resolve)
    used = ratings if include_calibration else ratings[ratings["purpose"] != Purpose.CALIBRATION]
    return used[used["purpose"] == Purpose.MAIN] if resolve == "main" else used


def resolve_items(
    used: pd.DataFrame,
    consensus: pd.DataFrame,
    codes: list[str],
    resolve: str,
) -> pd.DataFrame:
    """Session × item table of resolved scores from the ratings used (rule ``resolution``)."""
    _check_resolve(resolve)
    resolved = (
        used.groupby(["session_id", "item"])["score"].mean().unstack("item")
        if not used.empty
        else pd.DataFrame()
    )
    resolved = resolved.reindex(columns=codes).astype("float64")
    if resolve == "consensus" and not consensus.empty:
        agreed = consensus.pivot_table(
            index="session_id", columns="item", values="score", aggfunc="first"
        ).reindex(columns=codes)
        resolved = agreed.astype("float64").combine_first(resolved).reindex(columns=codes)
        for row in _not_applicable(consensus).itertuples(index=False):
            if row.item in resolved.columns and row.session_id in resolved.index:
                resolved.loc[row.session_id, row.item] = np.nan  # agreed: not applicable
    return resolved


def _not_applicable(consensus: pd.DataFrame) -> pd.DataFrame:
    if "not_applicable" not in consensus:
        return consensus.iloc[0:0]
    return consensus[consensus["not_applicable"] == 1]


def _consensus_counts(consensus: pd.DataFrame, codes: list[str], resolve: str) -> pd.Series:
    if resolve != "consensus" or consensus.empty:
        return pd.Series(dtype="int64")
    return consensus[consensus["item"].isin(codes)].groupby("session_id").size()


def _resolution(
    resolve: str, n_raters: pd.Series, n_consensus: pd.Series, items: pd.DataFrame
) -> pd.Series:
    """Per session, where its items come from (``RESOLUTIONS``); missing when from nothing."""
    missing = np.array(None, dtype=object)
    if resolve != "consensus":
        return pd.Series(np.where(n_raters > 0, resolve, missing), index=n_raters.index)
    from_ratings = items.notna().sum(axis=1) - n_consensus
    agreed = n_consensus > 0
    values = np.select(
        [agreed & (from_ratings == 0), agreed, n_raters > 0],
        ["consensus", "consensus+mean", "mean"],
        default=missing,
    )
    return pd.Series(values, index=n_raters.index, dtype=object)


def _per_rater_mean(
    counts: pd.DataFrame, raters_of: pd.DataFrame, index: pd.Index, columns: list[str]
) -> pd.DataFrame:
    """Mean over the session's included ratings of per-rating counts (0 when a rating has none)."""
    full = raters_of[["rating_id", "session_id"]].merge(
        counts, left_on="rating_id", right_index=True, how="left"
    )
    full[columns] = full[columns].fillna(0)
    return full.groupby("session_id")[columns].mean().reindex(index)


def _count(frame: pd.DataFrame, index: str, column: str) -> pd.DataFrame:
    """How often each value of ``column`` occurs per ``index`` (a cheap crosstab)."""
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], name=index))
    return frame.groupby([index, column]).size().unstack(column, fill_value=0)


def _homework_columns(
    homework: pd.DataFrame,
    ratings_used: pd.DataFrame,
    index: pd.Index,
    types: list[str],
) -> pd.DataFrame:
    out = pd.DataFrame(index=index)
    reported_cols = [f"hw_reported_{slug(t)}" for t in types]
    reported = homework[
        (homework["kind"] == LogKind.REPORTED_COMPLETED)
        & homework["rating_id"].isin(ratings_used["rating_id"])
    ]
    counts = _count(reported, "rating_id", "homework_type").reindex(columns=types, fill_value=0)
    counts.columns = reported_cols
    counts["hw_reported_total"] = counts.sum(axis=1)
    done = reported[reported["completion"] == Completion.YES].groupby("rating_id").size()
    counts["hw_completed"] = done.reindex(counts.index, fill_value=0)
    names = [*reported_cols, "hw_reported_total", "hw_completed"]
    out[names] = _per_rater_mean(counts, ratings_used, index, names)
    assigned = homework[homework["kind"] == LogKind.ASSIGNED_NEXT]
    table = _count(assigned, "session_id", "homework_type").reindex(
        index=index, columns=types, fill_value=0
    )
    for t in types:
        out[f"hw_assigned_{slug(t)}"] = table[t].astype("int64")
    out["hw_assigned_total"] = table.sum(axis=1).astype("int64")
    return out


def _difficulty_columns(
    difficulties: pd.DataFrame, ratings_used: pd.DataFrame, index: pd.Index, types: list[str]
) -> pd.DataFrame:
    ticked = difficulties[difficulties["rating_id"].isin(ratings_used["rating_id"])].merge(
        ratings_used[["rating_id", "session_id"]], on="rating_id"
    )
    table = (_count(ticked, "session_id", "difficulty_type") > 0).astype("int64")
    table = table.reindex(columns=types, fill_value=0).reindex(index, fill_value=0)
    rated = index.isin(ratings_used["session_id"])
    out = pd.DataFrame(index=index)
    for t in types:
        out[f"difficulty_{slug(t)}"] = table[t].astype("Int64").where(rated, pd.NA)
    return out


def sessions_table(
    ratings: pd.DataFrame,
    sessions: pd.DataFrame,
    instruments: Sequence[VersionedInstrument],
    *,
    resolve: str = DEFAULT_RESOLVE,
    include_calibration: bool = False,
    consensus: pd.DataFrame | None = None,
    homework: pd.DataFrame | None = None,
    difficulties: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The analysis dataset: one row per eligible session, items resolved across raters, event
    measures averaged over the ratings used (``events``: see :func:`wide_table`)."""
    consensus = consensus if consensus is not None else empty_consensus()
    homework = homework if homework is not None else empty_homework()
    difficulties = difficulties if difficulties is not None else empty_difficulties()
    eligible = sessions[sessions["status"] == SessionStatus.ELIGIBLE]
    rows = eligible.sort_values(["patient", "session_number", "session_id"], kind="mergesort")
    rows = rows.set_index("session_id", drop=False)
    rows.index.name = None
    used = ratings_used(ratings, include_calibration, resolve)
    used = used[used["session_id"].isin(rows.index)]
    codes = [item.code for vi in instruments for item in vi.instrument.items]
    items = resolve_items(used, consensus, codes, resolve).reindex(rows.index)
    used_ratings = used.drop_duplicates("rating_id")[["rating_id", "session_id"]]
    out = rows[["session_id", "patient", "therapist", "session_number", "phase"]].copy()
    out["recorded_on"] = rows["recorded_on"]
    out["duration_seconds"] = rows["duration_seconds"].astype("float64")
    n_raters = used_ratings.groupby("session_id").size()
    out["n_raters"] = n_raters.reindex(rows.index, fill_value=0).astype("int64")
    out["n_consensus_items"] = (
        _consensus_counts(consensus, codes, resolve).reindex(rows.index, fill_value=0)
    ).astype("int64")
    out["resolution"] = _resolution(resolve, out["n_raters"], out["n_consensus_items"], items)
    texts = [i.code for vi in instruments for i in vi.instrument.items if not i.is_numeric]
    if texts:
        decided = consensus if resolve == "consensus" else None
        items[texts] = _agreed_values(used, texts, rows.index, decided)
    for code in codes:
        out[code] = _text(items[code]) if code in texts else items[code]
    length = out["duration_seconds"] / 60
    _add_scores(out, items, instruments, previous_session(items, rows), length)
    measures = _names(event_measure_columns(instruments))
    if measures:
        coded = events if events is not None else pd.DataFrame(columns=["purpose", *measures])
        coded = ratings_used(coded, include_calibration, resolve)
        means = coded.groupby("session_id")[measures].mean() if len(coded) else None
        for column in measures:
            values = means[column] if means is not None else pd.Series(dtype="float64")
            out[column] = values.reindex(rows.index).astype("float64")
    out["phq9"] = rows["phq9"].astype("Int64")
    types = _types(instruments, "homework_types")
    out = out.join(_homework_columns(homework, used_ratings, rows.index, types))
    kinds = _types(instruments, "difficulty_types")
    out = out.join(_difficulty_columns(difficulties, used_ratings, rows.index, kinds))
    return out[_names(sessions_columns(instruments))].reset_index(drop=True)


# ---------------------------------------------------------------------------- other kinds

HOMEWORK_INPUT = [
    "entry_id",
    "session_id",
    "patient",
    "therapist",
    "session_number",
    "phase",
    "kind",
    "rating_id",
    "rater",
    "homework_type",
    "completion",
    "description",
    "entered_by",
    "rating_status",
    "created_at",
]


def empty_homework() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in HOMEWORK_INPUT})


def empty_difficulties() -> pd.DataFrame:
    return pd.DataFrame({"rating_id": pd.Series(dtype="int64"), "difficulty_type": []})


def empty_consensus() -> pd.DataFrame:
    return pd.DataFrame(
        {"session_id": [], "instrument": [], "item": [], "score": pd.Series(dtype="int64")}
    )


def homework_table(homework: pd.DataFrame, include_drafts: bool = False) -> pd.DataFrame:
    """One row per homework log entry; entries of draft ratings only with ``include_drafts``."""
    rows = homework
    if not include_drafts:
        rows = rows[
            rows["rating_status"].isna() | (rows["rating_status"] == RatingStatus.SUBMITTED)
        ]
    rows = rows.sort_values(
        ["session_id", "kind", "rater", "entry_id"], kind="mergesort", na_position="first"
    )
    out = rows[_names(HOMEWORK)].reset_index(drop=True)
    out["session_number"] = out["session_number"].astype("int64")
    out["created_at"] = pd.to_datetime(out["created_at"])
    return out


def events_table(events: pd.DataFrame, instruments: Sequence[VersionedInstrument]) -> pd.DataFrame:
    """One row per event, ordered by session, rater, time and code (the events frame)."""
    out = events[_names(events_columns(instruments))].reset_index(drop=True)
    out["session_number"] = out["session_number"].astype("int64")
    out["submitted_at"] = pd.to_datetime(out["submitted_at"])
    return out


def _json(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def audit_table(events: pd.DataFrame) -> pd.DataFrame:
    """The audit events, oldest first; ``before`` / ``after`` as JSON text."""
    out = events.sort_values(["at", "event_id"], kind="mergesort").reset_index(drop=True)
    out["before"] = [_json(v) for v in out["before"]]
    out["after"] = [_json(v) for v in out["after"]]
    out["event_id"] = out["event_id"].astype("int64")
    out["at"] = pd.to_datetime(out["at"])
    return out[_names(AUDIT)]


def reliability_table(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The report's tidy tables stacked in long form: ``table``, the key columns of every table
    (empty where a table has no such key), then coefficient, value, ci_low, ci_high, note."""
    names: list[str] = []
    whole: set[str] = set()
    parts = []
    for name, frame in frames.items():
        part = frame.reset_index(drop=True).copy()
        for column in part.columns:
            if pd.api.types.is_bool_dtype(part[column]):
                part[column] = part[column].astype("Int64")
            if pd.api.types.is_integer_dtype(part[column]):
                whole.add(column)
            if column not in names:
                names.append(column)
        part.insert(0, "table", name)
        parts.append(part)
    heads = [n for n in names if n not in RELIABILITY_TAIL]
    tail = [n for n in RELIABILITY_TAIL if n in names]
    if not parts:
        return pd.DataFrame({"table": pd.Series(dtype=object)})
    out = pd.concat(parts, ignore_index=True)
    for column in out.columns:
        if pd.api.types.is_string_dtype(out[column]) or out[column].dtype == object:
            out[column] = out[column].astype(object).where(out[column].notna(), None)
        elif column in whole:  # counts turn float where a table lacks them
            out[column] = out[column].astype("Int64")
    return out[["table", *heads, *tail]]


def codebook_table(
    instruments: Sequence[VersionedInstrument],
    reliability: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per column of every export kind, then one row per rule the columns name.

    The same under every ``--resolve``: the resolution is a rule, and the ``resolution``
    column of ``sessions`` says per session which was applied.
    """
    rows = []
    for kind in KINDS:
        for col in columns_of(kind, instruments, reliability):
            rows.append(
                {
                    "export": kind,
                    "column": col.name,
                    "label": col.label,
                    "type": col.type,
                    "allowed_values": col.allowed or None,
                    "anchors": col.anchors or None,
                    "scoring_rule": col.rule or None,
                    "instrument": col.instrument or None,
                    "instrument_version": col.instrument_version,
                }
            )
    events = event_rules(instruments)
    scored = [*rate_rules(instruments), *score_rules(instruments)]
    for rule in [*scored, *events, *RULES, *([EVENT_MEAN] if events else [])]:
        rows.append(
            {
                "export": RULE_ROW,
                "column": rule.name,
                "label": rule.label,
                "scoring_rule": rule.text,
                "instrument": rule.instrument or None,
                "instrument_version": rule.instrument_version,
            }
        )
    out = pd.DataFrame(rows, columns=_names(CODEBOOK))
    out["instrument_version"] = out["instrument_version"].astype("Int64")
    return out
