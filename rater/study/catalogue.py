"""The session catalogue import: all-or-nothing, idempotent (upsert by ``session_id``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select

from rater import audit
from rater.csvinput import ImportFailed, Problem, Record, read_csv_records
from rater.extensions import db
from rater.study.audio import AudioPathError, read_duration, resolve_audio_path
from rater.study.models import Patient, Therapist, TherapySession

REQUIRED = ("session_id", "patient", "therapist", "session_number")
OPTIONAL = ("phase", "audio", "recorded_on", "status", "exclusion_reason", "phq9")
PHASES = ("I", "II")


def phase_for(session_number: int, boundary: int = 5) -> str:
    """Phase I for sessions before ``boundary`` (1-4 by default), phase II from it on."""
    return "I" if session_number < boundary else "II"


@dataclass(frozen=True)
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
            number = int(v["session_number"])
            if number < 1:
                bad("session_number", "must be a whole number of 1 or more")
                number = None
        except ValueError:
            bad("session_number", "must be a whole number")
    phase = v.get("phase") or (phase_for(number, boundary) if number else "")
    if phase and phase not in PHASES:
        bad("phase", f"must be one of {', '.join(PHASES)} or empty")
    status = (v.get("status") or "eligible").lower()
    if status not in ("eligible", "excluded"):
        bad("status", "must be 'eligible' or 'excluded'")
    reason = v.get("exclusion_reason") or None
    if status == "excluded" and not reason:
        bad("exclusion_reason", "an excluded session needs a reason")
    recorded_on = None
    if v.get("recorded_on"):
        try:
            recorded_on = date.fromisoformat(v["recorded_on"])
        except ValueError:
            bad("recorded_on", "must be a date as YYYY-MM-DD")
    phq9 = None
    if v.get("phq9"):
        try:
            phq9 = int(v["phq9"])
            if not 0 <= phq9 <= 27:
                raise ValueError
        except ValueError:
            bad("phq9", "must be a whole number from 0 to 27")
    if problems:
        return None, problems
    return (
        SessionRow(
            line=record.line,
            code=v["session_id"],
            patient=v["patient"],
            therapist=v["therapist"],
            session_number=number,
            phase=phase,
            audio=v.get("audio") or None,
            recorded_on=recorded_on,
            status=status,
            exclusion_reason=reason if status == "excluded" else None,
            phq9=phq9,
        ),
        [],
    )


def parse_sessions_csv(
    data: bytes, source: str, phase_boundary: int = 5
) -> tuple[list[SessionRow], list[Problem]]:
    """Validate the whole file; rows only when there is no problem at all."""
    records, problems = read_csv_records(data, source, REQUIRED, OPTIONAL)
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
            problems.append(
                Problem(
                    source,
                    row.line,
                    "session_number",
                    str(row.session_number),
                    f"patient {row.patient} already has this session number on line "
                    f"{seen_number[key]}",
                )
            )
        seen_number.setdefault(key, row.line)
    return problems


def import_sessions(
    data: bytes,
    source: str,
    audio_dir: str | Path,
    phase_boundary: int = 5,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate, then upsert every row; raise ImportFailed (writing nothing) on any problem."""
    rows, problems = parse_sessions_csv(data, source, phase_boundary)
    audio, audio_problems, warnings = _resolve_audio(rows, source, audio_dir)
    problems.extend(audio_problems)
    if problems:
        raise ImportFailed(sorted(problems, key=lambda p: (p.line or 0, p.column or "")))
    result = ImportResult(warnings=warnings)
    therapists = _get_or_create(Therapist, {r.therapist for r in rows})
    patients = _get_or_create(Patient, {r.patient for r in rows})
    existing = {
        s.code: s
        for s in db.session.scalars(
            select(TherapySession).where(TherapySession.code.in_([r.code for r in rows]))
        )
    }
    _check_patient_numbers(rows, existing, source, patients)
    for index, row in enumerate(rows, start=1):
        values = {
            "patient_id": patients[row.patient].id,
            "therapist_id": therapists[row.therapist].id,
            "session_number": row.session_number,
            "phase": row.phase,
            "audio_path": row.audio,
            "recorded_on": row.recorded_on,
            "duration_seconds": audio.get(row.code),
            "status": row.status,
            "exclusion_reason": row.exclusion_reason,
            "phq9": row.phq9,
        }
        _upsert(existing.get(row.code), row.code, values, result)
        if progress:
            progress(index)
    db.session.flush()
    return result


def _check_patient_numbers(rows, existing, source, patients) -> None:
    """A (patient, session number) taken by another session code already in the database."""
    taken = {
        (s.patient_id, s.session_number): s.code
        for s in db.session.scalars(
            select(TherapySession).where(
                TherapySession.patient_id.in_([p.id for p in patients.values()])
            )
        )
    }
    problems = []
    for row in rows:
        owner = taken.get((patients[row.patient].id, row.session_number))
        if owner is not None and owner != row.code:
            problems.append(
                Problem(
                    source,
                    row.line,
                    "session_number",
                    str(row.session_number),
                    f"patient {row.patient} already has this session number as {owner}",
                )
            )
    if problems:
        raise ImportFailed(problems)


def _upsert(session: TherapySession | None, code: str, values: dict, result: ImportResult) -> None:
    if session is None:
        session = TherapySession(code=code, **values)
        db.session.add(session)
        db.session.flush()
        audit.record("session.import", "session", session.id, after=_auditable(values))
        result.created += 1
        return
    before = {k: getattr(session, k) for k in values}
    if before == values:
        result.unchanged += 1
        return
    for key, value in values.items():
        setattr(session, key, value)
    audit.record(
        "session.update", "session", session.id, before=_auditable(before), after=_auditable(values)
    )
    result.updated += 1


def _auditable(values: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()}


def _get_or_create(model, codes: set[str]) -> dict:
    found = {o.code: o for o in db.session.scalars(select(model).where(model.code.in_(codes)))}
    for code in sorted(codes - set(found)):
        found[code] = model(code=code)
        db.session.add(found[code])
    db.session.flush()
    return found


def _resolve_audio(
    rows: Iterable[SessionRow], source: str, audio_dir: str | Path
) -> tuple[dict[str, float | None], list[Problem], list[str]]:
    durations: dict[str, float | None] = {}
    problems: list[Problem] = []
    warnings: list[str] = []
    cache: dict[Path, float | None] = {}
    for row in rows:
        if row.audio is None:
            durations[row.code] = None
            continue
        try:
            path = resolve_audio_path(audio_dir, row.audio)
        except AudioPathError as exc:
            problems.append(Problem(source, row.line, "audio", row.audio, str(exc)))
            continue
        if not path.is_file():
            warnings.append(f"{source}, line {row.line}: audio file {row.audio!r} not found")
            durations[row.code] = None
            continue
        if path not in cache:
            cache[path] = read_duration(path)
        durations[row.code] = cache[path]
    return durations, problems, warnings
