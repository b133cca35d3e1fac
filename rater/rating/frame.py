"""The one tidy long frame of item scores, built from the database in one query.

Reliability and every export read this frame; neither goes back to the database on its own.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from rater.auth.models import User
from rater.extensions import db
from rater.instruments import instrument_from_definition
from rater.rating.models import Assignment, ItemScore, Rating
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
    "rating_status",
    "submitted_at",
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


def ratings_frame(include_drafts: bool = False) -> pd.DataFrame:
    """One row per item score: the columns of ``RATINGS_COLUMNS``.

    ``session_id`` is the session's code; ``score`` an integer 0–4; ``submitted_at`` a naive UTC
    datetime (NaT for drafts); ``subscale`` comes from the stored instrument definition.
    Rows are ordered by session, rater, instrument and item position in the instrument.
    """
    query = (
        select(
            Rating.id.label("rating_id"),
            TherapySession.code.label("session_id"),
            Patient.code.label("patient"),
            Therapist.code.label("therapist"),
            TherapySession.session_number,
            TherapySession.phase,
            User.username.label("rater"),
            Assignment.purpose,
            InstrumentVersion.code.label("instrument"),
            InstrumentVersion.version.label("instrument_version"),
            ItemScore.instrument_version_id,
            ItemScore.item_code.label("item"),
            ItemScore.score,
            Rating.status.label("rating_status"),
            Rating.submitted_at,
        )
        .select_from(ItemScore)
        .join(Rating, ItemScore.rating_id == Rating.id)
        .join(Assignment, Rating.assignment_id == Assignment.id)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(User, Assignment.rater_id == User.id)
        .join(InstrumentVersion, ItemScore.instrument_version_id == InstrumentVersion.id)
    )
    if not include_drafts:
        query = query.where(Rating.status == "submitted")
    result = db.session.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    return _with_item_layout(frame)


def _with_item_layout(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``subscale`` and order rows by the items' position in their instrument."""
    layout = item_layout(frame["instrument_version_id"].unique().tolist())
    subscale = {k: v[0] for k, v in layout.items()}
    position = {k: v[1] for k, v in layout.items()}
    keys = list(zip(frame["instrument_version_id"], frame["item"], strict=True))
    frame["subscale"] = pd.Series([subscale.get(k) for k in keys], index=frame.index, dtype=object)
    frame["_position"] = [position.get(k, 0) for k in keys]
    frame = frame.sort_values(
        ["session_id", "rater", "instrument", "_position"], kind="mergesort"
    ).reset_index(drop=True)
    frame["score"] = frame["score"].astype("int64")
    frame["session_number"] = frame["session_number"].astype("int64")
    frame["submitted_at"] = pd.to_datetime(frame["submitted_at"])
    return frame[RATINGS_COLUMNS]


def item_layout(version_ids: list[int]) -> dict[tuple[int, str], tuple[str | None, int]]:
    """(instrument version id, item code) -> (subscale, position in the instrument)."""
    if not version_ids:
        return {}
    versions = db.session.scalars(
        select(InstrumentVersion).where(InstrumentVersion.id.in_([int(v) for v in version_ids]))
    )
    layout = {}
    for version in versions:
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
