"""Homework assigned for the next session: entered by coordinators per session (flush only).

These ``assigned_next`` entries are the second GHES homework-log item; raters see the entries of
the previous session of the same patient as read-only context when they rate a session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select

from rater import audit
from rater.csvinput import ImportFailed, Problem, Record, in_file_order, read_csv_records
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


# --- many sessions at once: the grid of one patient, and CSV files ----------------------------

DESCRIPTION_MAX = 2000


@dataclass(frozen=True)
class GridRow:
    """One row of the grid: an existing entry (``entry``) or the blank row of a session."""

    session: TherapySession
    entry: HomeworkEntry | None
    homework_type: str
    description: str
    delete: bool = False
    problem: str = ""

    @property
    def key(self) -> str:
        return f"e{self.entry.id}" if self.entry else f"n{self.session.id}"


@dataclass
class GridResult:
    added: int = 0
    changed: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.added + self.changed + self.deleted


def patient_sessions(patient: Patient) -> list[TherapySession]:
    return list(
        db.session.scalars(
            select(TherapySession)
            .where(TherapySession.patient_id == patient.id)
            .order_by(TherapySession.session_number)
        )
    )


def grid_rows(patient: Patient, form: Mapping[str, str] | None = None) -> list[GridRow]:
    """The grid of a patient: per session (by number) its entries, then a blank row; with
    ``form`` (a submitted grid) the values and problems of that submission."""
    sessions = patient_sessions(patient)
    entries = _entries_by_session([s.id for s in sessions])
    types = set(homework_types())
    rows = []
    for session in sessions:
        for entry in entries.get(session.id, []):
            rows.append(_row(session, entry, form, types))
        rows.append(_row(session, None, form, types))
    return rows


def _entries_by_session(session_ids: list[int]) -> dict[int, list[HomeworkEntry]]:
    if not session_ids:
        return {}
    found: dict[int, list[HomeworkEntry]] = {}
    query = (
        select(HomeworkEntry)
        .where(HomeworkEntry.session_id.in_(session_ids), HomeworkEntry.kind == "assigned_next")
        .order_by(HomeworkEntry.created_at, HomeworkEntry.id)
    )
    for entry in db.session.scalars(query):
        found.setdefault(entry.session_id, []).append(entry)
    return found


def _row(
    session: TherapySession,
    entry: HomeworkEntry | None,
    form: Mapping[str, str] | None,
    types: set[str],
) -> GridRow:
    key = f"e{entry.id}" if entry else f"n{session.id}"
    if form is None:
        return GridRow(
            session,
            entry,
            entry.homework_type if entry else "",
            entry.description if entry else "",
        )
    homework_type = (form.get(f"{key}-type") or "").strip()
    description = (form.get(f"{key}-description") or "").strip()
    delete = entry is not None and form.get(f"{key}-delete") == "on"
    row = GridRow(session, entry, homework_type, description, delete)
    problem = "" if delete else _grid_problem(row, types)
    return GridRow(session, entry, homework_type, description, delete, problem)


def _grid_problem(row: GridRow, types: set[str]) -> str:
    if row.entry is None and not row.description and not row.homework_type:
        return ""  # a blank row stays blank
    if not row.description:
        return "the description is empty" + ("; tick 'delete' to remove it" if row.entry else "")
    if len(row.description) > DESCRIPTION_MAX:
        return f"the description has more than {DESCRIPTION_MAX} characters"
    if row.homework_type not in types:
        return f"choose a homework type (one of {', '.join(sorted(types))})"
    return ""


def save_grid(rows: list[GridRow], user_id: int) -> GridResult:
    """Apply a submitted grid (every row without a problem; check ``rows`` first)."""
    if any(row.problem for row in rows):
        raise ValueError("the grid has problems; nothing may be saved")
    result = GridResult()
    for row in rows:
        if row.entry is None:
            if row.description:
                add_assigned(row.session, row.homework_type, row.description, user_id)
                result.added += 1
        elif row.delete:
            delete_assigned(row.entry)
            result.deleted += 1
        elif (row.homework_type, row.description) != (
            row.entry.homework_type,
            row.entry.description,
        ):
            update_assigned(row.entry, row.homework_type, row.description)
            result.changed += 1
    return result


IMPORT_COLUMNS = ("session_id", "homework_type", "description")


@dataclass
class HomeworkImportResult:
    added: int = 0
    present: int = 0  # identical entries already stored: a file can be imported again


def import_homework(data: bytes, source: str, user_id: int) -> HomeworkImportResult:
    """Add the file's entries (columns ``session_id, homework_type, description``): validate
    every row, then write all or nothing (raise ImportFailed naming line, column and value).

    An entry identical to one stored already (session, type, description) is not added again;
    the same entry twice in the file is a problem."""
    records, problems = read_csv_records(
        data, source, IMPORT_COLUMNS, lengths={"description": DESCRIPTION_MAX}
    )
    types = homework_types()
    sessions = {s.code: s for s in db.session.scalars(select(TherapySession))}
    rows: list[tuple[TherapySession, str, str]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for record in records:
        row = _import_row(record, source, sessions, types, seen, problems)
        if row is not None:
            rows.append(row)
    if problems:
        raise ImportFailed(in_file_order(problems))
    stored = _entries_by_session(list({s.id for s, _, _ in rows}))
    result = HomeworkImportResult()
    for session, homework_type, description in rows:
        existing = {(e.homework_type, e.description) for e in stored.get(session.id, [])}
        if (homework_type, description) in existing:
            result.present += 1
            continue
        entry = add_assigned(session, homework_type, description, user_id)
        stored.setdefault(session.id, []).append(entry)
        result.added += 1
    return result


def _import_row(
    record: Record,
    source: str,
    sessions: dict[str, TherapySession],
    types: list[str],
    seen: dict[tuple[str, str, str], int],
    problems: list[Problem],
) -> tuple[TherapySession, str, str] | None:
    v = record.values
    found: list[Problem] = []

    def bad(column: str, message: str) -> None:
        found.append(Problem(source, record.line, column, v.get(column), message))

    code, homework_type, description = (v.get(c, "") for c in IMPORT_COLUMNS)
    if not code:
        bad("session_id", "is empty")
    elif code not in sessions:
        bad("session_id", "no session has this code")
    if homework_type not in types:
        bad("homework_type", f"must be one of {', '.join(types)}")
    if not description:
        bad("description", "is empty")
    key = (code, homework_type, description)
    if not found and key in seen:
        bad("description", f"the same entry is on line {seen[key]} already")
    seen.setdefault(key, record.line)
    problems.extend(found)
    return None if found else (sessions[code], homework_type, description)
