"""Homework assigned for the next session: entered by coordinators per session (flush only).

These ``assigned_next`` entries are the second GHES homework-log item; raters see the entries of
the previous session of the same patient as read-only context when they rate a session.
"""

from __future__ import annotations

from sqlalchemy import func, select

from rater import audit
from rater.extensions import db
from rater.instruments import LogKind, load_instruments
from rater.rating.models import HomeworkEntry
from rater.study.instrument_store import instruments_dir
from rater.study.models import Patient, TherapySession


def homework_types() -> list[str]:
    """The homework types of the instruments folder, in file order, without duplicates."""
    types: list[str] = []
    for instrument in load_instruments(instruments_dir()):
        types.extend(t for t in instrument.homework_types if t not in types)
    return types


def sessions_with_counts(patient: str | None = None) -> list[tuple[TherapySession, int]]:
    """Sessions (optionally of one patient) with their number of assigned entries, one query."""
    counts = (
        select(HomeworkEntry.session_id, func.count().label("n"))
        .where(HomeworkEntry.kind == LogKind.ASSIGNED_NEXT)
        .group_by(HomeworkEntry.session_id)
        .subquery()
    )
    query = (
        select(TherapySession, func.coalesce(counts.c.n, 0))
        .join(Patient, TherapySession.patient_id == Patient.id)
        .outerjoin(counts, counts.c.session_id == TherapySession.id)
        .order_by(Patient.code, TherapySession.session_number)
    )
    if patient:
        query = query.where(Patient.code == patient)
    return [(s, n) for s, n in db.session.execute(query).unique()]


def patient_codes() -> list[str]:
    return list(db.session.scalars(select(Patient.code).order_by(Patient.code)))


def assigned_entries(session: TherapySession) -> list[HomeworkEntry]:
    return list(
        db.session.scalars(
            select(HomeworkEntry)
            .where(
                HomeworkEntry.session_id == session.id, HomeworkEntry.kind == LogKind.ASSIGNED_NEXT
            )
            .order_by(HomeworkEntry.created_at, HomeworkEntry.id)
        )
    )


def _snapshot(entry: HomeworkEntry) -> dict[str, str]:
    return {"homework_type": entry.homework_type, "description": entry.description}


def add_assigned(
    session: TherapySession, homework_type: str, description: str, user_id: int
) -> HomeworkEntry:
    entry = HomeworkEntry(
        session_id=session.id,
        entered_by_id=user_id,
        kind=LogKind.ASSIGNED_NEXT,
        homework_type=homework_type,
        description=description,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record("homework.assign", "homework_entry", entry.id, after=_snapshot(entry))
    return entry


def update_assigned(entry: HomeworkEntry, homework_type: str, description: str) -> None:
    before = _snapshot(entry)
    entry.homework_type = homework_type
    entry.description = description
    db.session.flush()
    audit.record(
        "homework.update", "homework_entry", entry.id, before=before, after=_snapshot(entry)
    )


def delete_assigned(entry: HomeworkEntry) -> None:
    audit.record("homework.delete", "homework_entry", entry.id, before=_snapshot(entry))
    db.session.delete(entry)
    db.session.flush()
