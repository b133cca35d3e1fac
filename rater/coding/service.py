"""Coded events from the database: the events frame, the rating page's coding panel, and the
double-coded sessions whose events two coders can be compared on (flush only, never commit).

Like the ratings frame (``rater.rating.frame``), the events frame is built in one query and
is what reliability and every export read; ``coded_ratings_frame`` lists every rating that
uses a coding sheet, so a rating without events counts 0 (not missing).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Select, select

from rater.auth.models import User
from rater.coding.measures import event_values
from rater.extensions import db
from rater.instruments import Instrument
from rater.rating.events import codes_of
from rater.rating.frame import rating_key_columns
from rater.rating.models import Assignment, CodedEvent, Rating, rating_instruments
from rater.rating.service import pinned_instruments
from rater.states import RatingStatus
from rater.study.models import InstrumentVersion, Patient, Therapist, TherapySession

RATING_COLUMNS = [
    "rating_id", "session_id", "patient", "therapist", "session_number", "phase", "rater",
    "purpose", "rating_status", "submitted_at", "duration_seconds", "batch",
]  # fmt: skip
EVENT_COLUMNS = [*RATING_COLUMNS, "instrument", "client_id", "code", "time_s", "end_s", "note"]
CODED_COLUMNS = [*RATING_COLUMNS, "instrument", "instrument_version"]


def _rating_columns() -> list[Any]:
    return [
        *rating_key_columns(),
        Rating.status.label("rating_status"),
        Rating.submitted_at,
        TherapySession.duration_seconds,
        Assignment.batch,
    ]


def _joined(query: Select, include_drafts: bool) -> Select:
    query = (
        query.join(Assignment, Rating.assignment_id == Assignment.id)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(User, Assignment.rater_id == User.id)
    )
    return query if include_drafts else query.where(Rating.status == RatingStatus.SUBMITTED)


def events_frame(include_drafts: bool = False) -> pd.DataFrame:
    """One row per event (``EVENT_COLUMNS``), ordered by session, rater, time and code."""
    query = _joined(
        select(
            *_rating_columns(),
            InstrumentVersion.code.label("instrument"),
            CodedEvent.client_id,
            CodedEvent.code,
            CodedEvent.time_s,
            CodedEvent.end_s,
            CodedEvent.note,
        )
        .select_from(CodedEvent)
        .join(Rating, CodedEvent.rating_id == Rating.id)
        .join(InstrumentVersion, CodedEvent.instrument_version_id == InstrumentVersion.id),
        include_drafts,
    ).order_by(
        TherapySession.code, User.username, CodedEvent.time_s, CodedEvent.code, CodedEvent.id
    )
    frame = pd.DataFrame(db.session.execute(query).all(), columns=EVENT_COLUMNS)
    frame["end_s"] = frame["end_s"].astype("float64")
    frame["time_s"] = frame["time_s"].astype("float64")
    return frame


def coded_ratings_frame(
    instruments: list[Instrument], include_drafts: bool = False
) -> pd.DataFrame:
    """One row per rating x pinned instrument with behaviour codes (``CODED_COLUMNS``)."""
    coding = [i.code for i in instruments if i.codes]
    if not coding:
        return pd.DataFrame(columns=CODED_COLUMNS)
    query = _joined(
        select(
            *_rating_columns(),
            InstrumentVersion.code.label("instrument"),
            InstrumentVersion.version.label("instrument_version"),
        )
        .select_from(Rating)
        .join(rating_instruments, rating_instruments.c.rating_id == Rating.id)
        .join(InstrumentVersion, rating_instruments.c.instrument_version_id == InstrumentVersion.id)
        .where(InstrumentVersion.code.in_(coding)),
        include_drafts,
    ).order_by(TherapySession.code, User.username, InstrumentVersion.code)
    return pd.DataFrame(db.session.execute(query).all(), columns=CODED_COLUMNS)


EVENT_FIELDS = ("client_id", "code", "time_s", "end_s", "note")


def rating_events(rating_id: int) -> list[dict[str, Any]]:
    """A rating's events as plain values, in time order (Core rows: a long session has
    thousands, and ORM objects would cost more than the rest of the page)."""
    columns = [getattr(CodedEvent, f) for f in EVENT_FIELDS]
    rows = db.session.execute(
        select(*columns)
        .where(CodedEvent.rating_id == rating_id)
        .order_by(CodedEvent.time_s, CodedEvent.id)
    )
    return [dict(zip(EVENT_FIELDS, row, strict=True)) for row in rows]


def coding_panel(rating: Rating) -> dict[str, Any] | None:
    """What the rating page's coding panel needs (JSON-able), or None without codes."""
    instruments = [i for i in pinned_instruments(rating) if i.codes]
    if not instruments:
        return None
    code_fields = ("code", "label", "key", "group", "segment", "description")
    return {
        "codes": [{f: getattr(c, f) for f in code_fields} for c in codes_of(instruments).values()],
        "events": rating_events(rating.id),
    }


def coded_values(
    instruments: list[Instrument], include_drafts: bool = False
) -> pd.DataFrame | None:
    """The event measures of every rating that uses one of the coding sheets among
    ``instruments`` (``rater.coding.measures.event_values``); None without coding sheets."""
    sheets = [i for i in instruments if i.codes]
    if not sheets:
        return None
    coded = coded_ratings_frame(sheets, include_drafts)
    return event_values(coded, events_frame(include_drafts), sheets)
