"""The session catalogue import: all-or-nothing, idempotent (upsert by ``session_id``).

A file of any length is checked completely before anything is written; then the rows are
written in blocks (``rater.bulk``: multi-row INSERTs within each engine's parameter limit), all
in the caller's transaction. No ORM object is made per row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from rater import data_version
from rater.bulk import chunked, insert_audit_events, insert_rows, select_in, update_rows
from rater.csvinput import (
    INT_MAX,
    ImportFailed,
    Problem,
    Record,
    in_file_order,
    read_csv_records,
    whole_number,
)
from rater.extensions import db, length_of, table_of
from rater.states import SessionStatus
from rater.study.audio import AudioPathError, read_duration, resolve_audio_path
from rater.study.models import Patient, Therapist, TherapySession

REQUIRED = ("session_id", "patient", "therapist", "session_number")
PHASES = ("I", "II")
SESSIONS = table_of(TherapySession)
# The most characters each column takes, from the schema.
LENGTHS = {
    "session_id": length_of(SESSIONS.c.code),
    "patient": length_of(table_of(Patient).c.code),
    "therapist": length_of(table_of(Therapist).c.code),
    "audio": length_of(SESSIONS.c.audio_path),
}
# The columns an import sets (besides ``code``), in the order they are compared and audited.
FIELDS = (
    "patient_id",
    "therapist_id",
    "session_number",
    "phase",
    "audio_path",
    "recorded_on",
    "duration_seconds",
    "status",
    "exclusion_reason",
    "phq9",
)
BLOCK = 10_000  # rows written (and audited) per step


# A million rows share a few values: each row holds the one object of its status and phase (and
# of its patient, therapist and day), not a copy of its own.
_SHARED = {value: value for value in (*(status.value for status in SessionStatus), *PHASES)}


@lru_cache(maxsize=100_000)
def _day(text: str) -> date:
    return date.fromisoformat(text)


def phase_for(session_number: int, boundary: int = 5) -> str:
    """Phase I for sessions before ``boundary`` (1-4 by default), phase II from it on."""
    return "I" if session_number < boundary else "II"


@dataclass(slots=True)
class SessionRow:
    line: int
    code: str
    patient: str
    therapist: str
    session_number: int
    phase: str
    audio: str | None
    recorded_on: date | None
    status: str
    exclusion_reason: str | None
    phq9: int | None


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


def _parse_row(
    record: Record, source: str, boundary: int
) -> tuple[SessionRow | None, list[Problem]]:
    v = record.values
    problems: list[Problem] = []

    def bad(column: str, message: str) -> None:
        problems.append(Problem(source, record.line, column, v.get(column), message))

    for column in REQUIRED:
        if not v.get(column):
            bad(column, "is empty")
    number = None
    if v.get("session_number"):
        try:
            number = whole_number(v["session_number"], 1, INT_MAX)
        except ValueError:
            bad("session_number", f"must be a whole number from 1 to {INT_MAX}")
    phase = v.get("phase") or (phase_for(number, boundary) if number else "")
    if phase and phase not in PHASES:
        bad("phase", f"must be one of {', '.join(PHASES)} or empty")
    status = (v.get("status") or SessionStatus.ELIGIBLE).lower()
    if status not in set(SessionStatus):
        bad("status", f"must be {' or '.join(repr(str(s)) for s in SessionStatus)}")
    reason = v.get("exclusion_reason") or None
    if status == SessionStatus.EXCLUDED and not reason:
        bad("exclusion_reason", "an excluded session needs a reason")
    recorded_on = None
    if v.get("recorded_on"):
        try:
            recorded_on = _day(v["recorded_on"])
        except ValueError:
            bad("recorded_on", "must be a date as YYYY-MM-DD")
    phq9 = None
    if v.get("phq9"):
        try:
            phq9 = whole_number(v["phq9"], 0, 27)
        except ValueError:
            bad("phq9", "must be a whole number from 0 to 27")
    if problems:
        return None, problems
    assert number is not None  # an empty or bad session_number is a problem above
    return (
        SessionRow(
            line=record.line,
            code=v["session_id"],
            patient=sys.intern(v["patient"]),
            therapist=sys.intern(v["therapist"]),
            session_number=number,
            phase=_SHARED[phase],
            audio=v.get("audio") or None,
            recorded_on=recorded_on,
            status=_SHARED[status],
            exclusion_reason=reason if status == SessionStatus.EXCLUDED else None,
            phq9=phq9,
        ),
        [],
    )


def parse_sessions_csv(
    data: bytes, source: str, phase_boundary: int = 5
) -> tuple[list[SessionRow], list[Problem]]:
    """Validate the whole file; rows only when there is no problem at all."""
    records, problems = read_csv_records(data, source, REQUIRED, lengths=LENGTHS)
    rows: list[SessionRow] = []
    for record in records:
        row, row_problems = _parse_row(record, source, phase_boundary)
        problems.extend(row_problems)
        if row:
            rows.append(row)
    problems.extend(_duplicates(rows, source))
    return rows, problems


def _duplicates(rows: Iterable[SessionRow], source: str) -> list[Problem]:
    problems = []
    seen_code: dict[str, int] = {}
    seen_number: dict[tuple[str, int], int] = {}
    for row in rows:
        if row.code in seen_code:
            problems.append(
                Problem(
                    source,
                    row.line,
                    "session_id",
                    row.code,
                    f"duplicate of line {seen_code[row.code]}",
                )
            )
        seen_code.setdefault(row.code, row.line)
        key = (row.patient, row.session_number)
        if key in seen_number:
            problems.append(_number_taken(source, row, f"on line {seen_number[key]}"))
        seen_number.setdefault(key, row.line)
    return problems


@dataclass
class _Plan:
    """What the import does to each row: insert it, update a session, or leave one alone."""

    new: list[int] = field(default_factory=list)  # indexes of rows
    changed: list[tuple[int, int, dict[str, Any]]] = field(
        default_factory=list
    )  # (index, id, before)
    unchanged: int = 0


def import_sessions(
    data: bytes,
    source: str,
    audio_dir: str | Path,
    phase_boundary: int = 5,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate, then upsert every row; raise ImportFailed (writing nothing) on any problem.

    The audit events of an import name no user: imports run from the command line.
    """
    rows, problems = parse_sessions_csv(data, source, phase_boundary)
    audio, audio_problems, warnings = _resolve_audio(rows, source, audio_dir)
    problems.extend(audio_problems)
    if problems:
        raise ImportFailed(in_file_order(problems))
    db.session.flush()
    connection = db.session.connection()
    therapists = _ids_by_code(connection, Therapist, {r.therapist for r in rows})
    patients = _ids_by_code(connection, Patient, {r.patient for r in rows})
    taken = _numbers_taken(connection, rows, patients, source)
    if taken:
        raise ImportFailed(taken)
    therapists |= _create_codes(
        connection, Therapist, {r.therapist for r in rows} - set(therapists)
    )
    patients |= _create_codes(connection, Patient, {r.patient for r in rows} - set(patients))

    def values(row: SessionRow) -> dict[str, Any]:
        return {
            "patient_id": patients[row.patient],
            "therapist_id": therapists[row.therapist],
            "session_number": row.session_number,
            "phase": row.phase,
            "audio_path": row.audio,
            "recorded_on": row.recorded_on,
            "duration_seconds": audio.get(row.code),
            "status": row.status,
            "exclusion_reason": row.exclusion_reason,
            "phq9": row.phq9,
        }

    plan = _plan(connection, rows, values)
    done = plan.unchanged
    for block in chunked(plan.new, BLOCK):
        _insert_sessions(connection, [(rows[i].code, values(rows[i])) for i in block])
        done += len(block)
        if progress:
            progress(done)
    for changes in chunked(plan.changed, BLOCK):
        _update_sessions(connection, [(id_, before, values(rows[i])) for i, id_, before in changes])
        done += len(changes)
        if progress:
            progress(done)
    if plan.new or plan.changed:
        data_version.bump()  # Core writes: the ORM's flush listener does not see them
    db.session.expire_all()  # sessions the ORM holds may have been changed underneath it
    return ImportResult(len(plan.new), len(plan.changed), plan.unchanged, warnings)


def _ids_by_code(connection: Connection, model, codes: set[str]) -> dict[str, int]:
    """Id of each of ``codes`` already stored."""
    table = table_of(model)
    return dict(
        select_in(connection, select(table.c.code, table.c.id), table.c.code, sorted(codes))
    )


def _create_codes(connection: Connection, model, codes: set[str]) -> dict[str, int]:
    """Store new therapists or patients; the id of each."""
    insert_rows(connection, table_of(model), ({"code": code} for code in sorted(codes)))
    return _ids_by_code(connection, model, codes)


def _numbers_taken(
    connection: Connection, rows: list[SessionRow], patients: dict[str, int], source: str
) -> list[Problem]:
    """A (patient, session number) held by another session code already in the database.

    Read block by block of rows: the stored sessions of the block's patients."""
    problems = []
    numbers = select(SESSIONS.c.patient_id, SESSIONS.c.session_number, SESSIONS.c.code)
    for block in chunked((r for r in rows if r.patient in patients), BLOCK):
        wanted = {(patients[r.patient], r.session_number): r for r in block}
        patient_ids = sorted({patient_id for patient_id, _ in wanted})
        for patient_id, number, owner in select_in(
            connection, numbers, SESSIONS.c.patient_id, patient_ids
        ):
            row = wanted.get((patient_id, number))
            if row is not None and owner != row.code:
                problems.append(_number_taken(source, row, f"as {owner}"))
    return in_file_order(problems)


def _number_taken(source: str, row: SessionRow, holder: str) -> Problem:
    return Problem(
        source,
        row.line,
        "session_number",
        str(row.session_number),
        f"patient {row.patient} already has this session number {holder}",
    )


def _plan(connection: Connection, rows: list[SessionRow], values) -> _Plan:
    """Compare each row with the stored session of its code (read in bounded lookups)."""
    index = {row.code: i for i, row in enumerate(rows)}
    plan = _Plan()
    stored: set[int] = set()
    columns = [SESSIONS.c.code, SESSIONS.c.id, *(SESSIONS.c[name] for name in FIELDS)]
    for code, session_id, *current in select_in(
        connection, select(*columns), SESSIONS.c.code, list(index)
    ):
        i = index[code]
        stored.add(i)
        before = dict(zip(FIELDS, current, strict=True))
        if before == values(rows[i]):
            plan.unchanged += 1
        else:
            plan.changed.append((i, session_id, before))
    plan.new = [i for i in range(len(rows)) if i not in stored]
    plan.changed.sort()
    return plan


def _insert_sessions(connection: Connection, block: list[tuple[str, dict[str, Any]]]) -> None:
    insert_rows(connection, SESSIONS, ({"code": code, **values} for code, values in block))
    ids = dict(
        select_in(
            connection,
            select(SESSIONS.c.code, SESSIONS.c.id),
            SESSIONS.c.code,
            [c for c, _ in block],
        )
    )
    insert_audit_events(
        connection,
        "session.import",
        "session",
        ((ids[code], None, _auditable(values)) for code, values in block),
    )


def _update_sessions(
    connection: Connection, block: list[tuple[int, dict[str, Any], dict[str, Any]]]
) -> None:
    statement = (
        update(SESSIONS)
        .where(SESSIONS.c.id == bindparam("session_id"))
        .values({name: bindparam(name) for name in FIELDS})
    )
    update_rows(connection, statement, [{"session_id": id_, **values} for id_, _, values in block])
    insert_audit_events(
        connection,
        "session.update",
        "session",
        ((id_, _auditable(before), _auditable(values)) for id_, before, values in block),
    )


def _auditable(values: dict[str, Any]) -> dict[str, Any]:
    """The values as JSON holds them (the one date as ISO text)."""
    day = values["recorded_on"]
    return values if day is None else {**values, "recorded_on": day.isoformat()}


def _resolve_audio(
    rows: Iterable[SessionRow], source: str, audio_dir: str | Path
) -> tuple[dict[str, float | None], list[Problem], list[str]]:
    durations: dict[str, float | None] = {}
    problems: list[Problem] = []
    warnings: list[str] = []
    cache: dict[Path, float | None] = {}
    for row in rows:
        if row.audio is None:
            continue
        try:
            path = resolve_audio_path(audio_dir, row.audio)
            found = path.is_file()
        except AudioPathError as exc:
            problems.append(Problem(source, row.line, "audio", row.audio, str(exc)))
            continue
        except OSError:  # e.g. a name longer than the file system allows
            problems.append(
                Problem(source, row.line, "audio", row.audio, "is not a usable file name here")
            )
            continue
        if not found:
            warnings.append(f"{source}, line {row.line}: audio file {row.audio!r} not found")
            continue
        if path not in cache:
            cache[path] = read_duration(path)
        durations[row.code] = cache[path]
    return durations, problems, warnings
