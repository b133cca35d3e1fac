"""The one tidy long frame of item scores, built from the database in one query.

Reliability and every export read this frame; neither goes back to the database on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, SQLColumnExpression, case, func, literal, null, select

from rater.auth.models import User
from rater.extensions import db
from rater.instruments import instrument_from_definition
from rater.rating.models import Assignment, ItemScore, Rating
from rater.states import RatingStatus
from rater.study.models import InstrumentVersion, Patient, Therapist, TherapySession

RATINGS_COLUMNS = [
    "rating_id",
    "session_id",
    "patient",
    "therapist",
    "session_number",
    "phase",
    "rater",
    "purpose",
    "instrument",
    "instrument_version",
    "item",
    "subscale",
    "score",
    "value",
    "not_applicable",
    "rating_status",
    "submitted_at",
    "batch",
]

SESSIONS_COLUMNS = [
    "session_id",
    "patient",
    "therapist",
    "session_number",
    "phase",
    "status",
    "exclusion_reason",
    "recorded_on",
    "duration_seconds",
    "phq9",
]


CHUNK_ROWS = 50_000
_TEXT_COLUMNS = [
    "session_id",
    "patient",
    "therapist",
    "phase",
    "rater",
    "purpose",
    "instrument",
    "item",
    "subscale",
    "value",
    "rating_status",
]
# What pandas makes of text (``str`` from pandas 3, ``object`` before), missing values kept.
_TEXT_DTYPE = pd.Series(["text"]).dtype
_INTEGER_COLUMNS = ["rating_id", "session_number", "instrument_version", "not_applicable"]
_NULLABLE_INTEGER_COLUMNS = ["score", "batch"]
# Text is ordered by code point (Python's ``sorted``): PostgreSQL's locale collations would not.
_BINARY_COLLATION = {"postgresql": "C", "sqlite": "BINARY"}


def ratings_frame(include_drafts: bool = False) -> pd.DataFrame:
    """One row per item score: the columns of ``RATINGS_COLUMNS``.

    ``session_id`` is the session's code; an item's answer is ``score`` (nullable integer: ordinal
    and count items), ``value`` (text: the category code(s) of nominal items, joined by ";", or
    a text item's text) or ``not_applicable`` (1, with score and value missing; else 0);
    ``submitted_at`` a naive UTC datetime (NaT for drafts); ``subscale`` comes from the stored
    instrument definition; ``batch`` the number of the release that opened the rating's
    assignment to its rater (nullable integer: missing for work that was never held, and for
    calibration).
    Rows are ordered by session, rater, instrument and item position in the instrument
    (text by code point). The concatenation of :func:`iter_ratings_frames`.
    """
    return pd.concat(list(iter_ratings_frames(include_drafts)), ignore_index=True)


def iter_ratings_frames(
    include_drafts: bool = False, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The ratings frame in chunks of at most ``chunk_rows`` rows, streamed from one query.

    The database orders the rows, so memory is bounded by one chunk whatever the study's size
    (a server-side cursor on PostgreSQL). Yields at least one frame (empty for no scores), every
    chunk with the columns and dtypes of :func:`ratings_frame`.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    # Core rows, not ORM ones: the frame needs plain values, and the ORM layer costs time per row.
    result = db.session.connection().execute(
        ratings_query(include_drafts),
        execution_options={"stream_results": True, "yield_per": chunk_rows},
    )
    try:
        yielded = False
        for rows in result.partitions(chunk_rows):
            yielded = True
            yield _typed(rows)
        if not yielded:
            yield _typed([])
    finally:
        result.close()


def count_ratings(include_drafts: bool = False) -> int:
    """The number of rows :func:`iter_ratings_frames` yields (for progress bars)."""
    query = _ratings_from(select(func.count()), include_drafts)
    return int(db.session.scalar(query) or 0)


def rating_key_columns() -> list[Any]:
    """The columns that name a rating in every frame: its id, session, patient, therapist,
    session number, phase, rater and purpose (the session's code is the ``session_id``)."""
    return [
        Rating.id.label("rating_id"),
        TherapySession.code.label("session_id"),
        Patient.code.label("patient"),
        Therapist.code.label("therapist"),
        TherapySession.session_number,
        TherapySession.phase,
        User.username.label("rater"),
        Assignment.purpose,
    ]


def ratings_query(include_drafts: bool = False) -> Select:
    """The one query of the ratings frame, ordered in the database.

    The item layout (subscale, position in the instrument) lives in the stored instrument
    definitions, not in columns: it enters the query as CASE expressions built from those
    definitions (a few small rows, read first).
    """
    subscale, position = _item_layout_cases(item_layout())
    binary = _binary_collation()
    query = select(
        *rating_key_columns(),
        InstrumentVersion.code.label("instrument"),
        InstrumentVersion.version.label("instrument_version"),
        ItemScore.item_code.label("item"),
        subscale.label("subscale"),
        ItemScore.score,
        ItemScore.value_text.label("value"),
        ItemScore.not_applicable,
        Rating.status.label("rating_status"),
        Rating.submitted_at,
        Assignment.batch,
    )
    return _ratings_from(query, include_drafts).order_by(
        binary(TherapySession.code),
        binary(User.username),
        binary(InstrumentVersion.code),
        position,
        InstrumentVersion.version,
        binary(ItemScore.item_code),
        Rating.id,
    )


def _ratings_from(query: Select, include_drafts: bool) -> Select:
    query = (
        query.select_from(ItemScore)
        .join(Rating, ItemScore.rating_id == Rating.id)
        .join(Assignment, Rating.assignment_id == Assignment.id)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(User, Assignment.rater_id == User.id)
        .join(InstrumentVersion, ItemScore.instrument_version_id == InstrumentVersion.id)
    )
    return query if include_drafts else query.where(Rating.status == RatingStatus.SUBMITTED)


def _binary_collation() -> Callable[[SQLColumnExpression[str]], SQLColumnExpression[str]]:
    """Wrap text so the database compares it by code point, as Python's ``sorted`` does."""
    name = _BINARY_COLLATION.get(db.session.get_bind().dialect.name)
    return (lambda column: column.collate(name)) if name else (lambda column: column)


def _item_layout_cases(
    layout: dict[tuple[int, str], tuple[str | None, int]],
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """CASE expressions (version id, item code) -> subscale and -> position."""
    by_version: dict[int, dict[str, tuple[str | None, int]]] = {}
    for (version_id, code), entry in layout.items():
        by_version.setdefault(version_id, {})[code] = entry

    def per_version(pick: int, default: Any) -> ColumnElement[Any]:
        whens = [
            (
                ItemScore.instrument_version_id == version_id,
                case(
                    {code: entry[pick] for code, entry in items.items()},
                    value=ItemScore.item_code,
                    else_=default,
                ),
            )
            for version_id, items in sorted(by_version.items())
        ]
        return case(*whens, else_=default) if whens else default

    return per_version(0, null()), per_version(1, literal(0))


def _typed(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Rows -> a frame with fixed dtypes whatever the chunk holds (all drafts, or empty)."""
    values = list(zip(*rows, strict=True)) if rows else [()] * len(RATINGS_COLUMNS)
    columns = dict(zip(RATINGS_COLUMNS, values, strict=True))
    frame = {}
    for name in RATINGS_COLUMNS:
        if name in _INTEGER_COLUMNS:
            frame[name] = pd.Series(columns[name], dtype="int64")
        elif name in _NULLABLE_INTEGER_COLUMNS:
            frame[name] = pd.Series(columns[name], dtype="Int64")
        elif name == "submitted_at":
            frame[name] = pd.to_datetime(pd.Series(columns[name], dtype=object)).astype(
                "datetime64[us]"
            )
        else:
            frame[name] = pd.Series(columns[name], dtype=object).astype(_TEXT_DTYPE)
    return pd.DataFrame(frame, columns=RATINGS_COLUMNS)


def item_layout(
    version_ids: list[int] | None = None,
) -> dict[tuple[int, str], tuple[str | None, int]]:
    """(instrument version id, item code) -> (subscale, position in the instrument).

    Every stored version when ``version_ids`` is None (they are few and small).
    """
    query = select(InstrumentVersion)
    if version_ids is not None:
        if not version_ids:
            return {}
        query = query.where(InstrumentVersion.id.in_([int(v) for v in version_ids]))
    layout = {}
    for version in db.session.scalars(query):
        instrument = instrument_from_definition(version.definition)
        for position, item in enumerate(instrument.items):
            layout[(version.id, item.code)] = (item.subscale, position)
    return layout


def sessions_frame() -> pd.DataFrame:
    """One row per session (all statuses): the columns of ``SESSIONS_COLUMNS``.

    Contains PHQ-9: for coordinators' analysis and exports only, never for raters.
    """
    rows = db.session.execute(
        select(
            TherapySession.code,
            Patient.code,
            Therapist.code,
            TherapySession.session_number,
            TherapySession.phase,
            TherapySession.status,
            TherapySession.exclusion_reason,
            TherapySession.recorded_on,
            TherapySession.duration_seconds,
            TherapySession.phq9,
        )
        .join(Patient, TherapySession.patient_id == Patient.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .order_by(TherapySession.code)
    ).all()
    frame = pd.DataFrame(rows, columns=SESSIONS_COLUMNS)
    frame["phq9"] = frame["phq9"].astype("Int64")
    frame["session_number"] = frame["session_number"].astype("int64")
    return frame
