"""Import existing ratings (from paper or spreadsheets) in long form, all-or-nothing.

Columns: ``session_id, rater, instrument, item, score``; optional ``purpose, submitted_at``.
Extra columns are ignored, so a ``long`` export can be imported back. Each (session, rater)
becomes an assignment with a submitted rating.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from rater import audit
from rater.auth.models import User
from rater.csvinput import ImportFailed, Problem, read_csv_records
from rater.extensions import db
from rater.rating.models import PURPOSES, Assignment, ItemScore, Rating
from rater.study.instrument_store import current_versions, instrument_of
from rater.study.models import TherapySession
from rater.timeutil import utcnow

REQUIRED = ("session_id", "rater", "instrument", "item", "score")
OPTIONAL = ("purpose", "submitted_at")


@dataclass(frozen=True)
class ScoreRow:
    line: int
    session: str
    rater: str
    instrument: str
    item: str
    score: int
    purpose: str | None
    submitted_at: datetime | None


@dataclass
class RatingsImportResult:
    ratings: int = 0
    scores: int = 0
    assignments_created: int = 0


def _parse_datetime(text: str) -> datetime:
    """ISO 8601; an offset is converted to naive UTC as stored."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_ratings_csv(data: bytes, source: str, known) -> tuple[list[ScoreRow], list[Problem]]:
    """Check every row against the known sessions, raters and instruments."""
    records, problems = read_csv_records(data, source, REQUIRED, OPTIONAL)
    rows: list[ScoreRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for rec in records:
        v = rec.values
        before = len(problems)

        def bad(column: str, message: str, rec=rec, v=v) -> None:
            problems.append(Problem(source, rec.line, column, v.get(column), message))

        for column in REQUIRED:
            if not v.get(column):
                bad(column, "is empty")
        if v.get("session_id") and v["session_id"] not in known.sessions:
            bad("session_id", "unknown session")
        if v.get("rater") and v["rater"] not in known.raters:
            bad("rater", "unknown rater (add the user with role rater first)")
        instrument = known.instruments.get(v.get("instrument", ""))
        if v.get("instrument") and instrument is None:
            bad("instrument", "unknown instrument")
        elif instrument is not None and v.get("item") and v["item"] not in instrument.item_codes:
            bad("item", f"not an item of {instrument.code}")
        score = None
        if v.get("score"):
            try:
                score = int(v["score"])
                if not 0 <= score <= 4:
                    bad("score", "out of range: scores are whole numbers from 0 to 4")
            except ValueError:
                bad("score", "must be a whole number from 0 to 4")
        purpose = v.get("purpose") or None
        if purpose is not None and purpose not in PURPOSES:
            bad("purpose", f"must be one of {', '.join(PURPOSES)}")
        submitted_at = None
        if v.get("submitted_at"):
            try:
                submitted_at = _parse_datetime(v["submitted_at"])
            except ValueError:
                bad("submitted_at", "must be an ISO 8601 date and time")
        key = (v.get("session_id", ""), v.get("rater", ""), v.get("item", ""))
        if key in seen and len(problems) == before:
            bad("item", f"duplicate: this rater already scored this item on line {seen[key]}")
        seen.setdefault(key, rec.line)
        if len(problems) == before:
            rows.append(
                ScoreRow(
                    rec.line,
                    v["session_id"],
                    v["rater"],
                    v["instrument"],
                    v["item"],
                    score,
                    purpose,
                    submitted_at,
                )
            )
    return rows, problems


@dataclass(frozen=True)
class Known:
    sessions: dict[str, TherapySession]
    raters: dict[str, User]
    instruments: dict
    versions: dict


def _known() -> Known:
    versions = current_versions()
    return Known(
        sessions={s.code: s for s in db.session.scalars(select(TherapySession))},
        raters={
            u.username: u for u in db.session.scalars(select(User).where(User.role == "rater"))
        },
        instruments={code: instrument_of(v) for code, v in versions.items()},
        versions=versions,
    )


def import_ratings(
    data: bytes, source: str, progress: Callable[[int], None] | None = None
) -> RatingsImportResult:
    """Validate everything, then write; raise ImportFailed (writing nothing) on any problem."""
    known = _known()
    rows, problems = parse_ratings_csv(data, source, known)
    groups: dict[tuple[str, str], list[ScoreRow]] = defaultdict(list)
    for row in rows:
        groups[(row.session, row.rater)].append(row)
    existing = _existing_assignments(known, groups)
    problems.extend(_conflicts(groups, existing, source))
    if problems:
        raise ImportFailed(sorted(problems, key=lambda p: (p.line or 0, p.column or "")))
    result = RatingsImportResult()
    for index, ((session_code, rater_name), group) in enumerate(groups.items(), start=1):
        session = known.sessions[session_code]
        rater = known.raters[rater_name]
        assignment = existing.get((session.id, rater.id))
        if assignment is None:
            assignment = Assignment(
                session_id=session.id,
                rater_id=rater.id,
                purpose=_purpose(group, session.id, existing),
                status="submitted",
            )
            db.session.add(assignment)
            db.session.flush()
            existing[(session.id, rater.id)] = assignment
            result.assignments_created += 1
        _write_rating(assignment, group, known)
        result.ratings += 1
        result.scores += len(group)
        if progress:
            progress(index)
    db.session.flush()
    return result


def _purpose(group: list[ScoreRow], session_id: int, existing: dict) -> str:
    stated = {r.purpose for r in group if r.purpose}
    if stated:
        return stated.pop()
    taken = [
        a for (sid, _), a in existing.items() if sid == session_id and a.purpose != "calibration"
    ]
    return "main" if not taken else "double"


def _existing_assignments(known: Known, groups) -> dict[tuple[int, int], Assignment]:
    session_ids = {known.sessions[s].id for s, _ in groups}
    if not session_ids:
        return {}
    found = db.session.scalars(select(Assignment).where(Assignment.session_id.in_(session_ids)))
    return {(a.session_id, a.rater_id): a for a in found}


def _conflicts(groups, existing, source: str) -> list[Problem]:
    problems = []
    for (session_code, rater_name), group in groups.items():
        purposes = {r.purpose for r in group if r.purpose}
        if len(purposes) > 1:
            problems.append(
                Problem(
                    source, group[0].line, "purpose", None, "differs between rows of one rating"
                )
            )
        matches = [
            a
            for a in existing.values()
            if a.session.code == session_code and a.rater.username == rater_name
        ]
        if not matches:
            continue
        assignment = matches[0]
        if purposes and assignment.purpose not in purposes:
            problems.append(
                Problem(
                    source,
                    group[0].line,
                    "purpose",
                    purposes.pop(),
                    f"the existing assignment's purpose is {assignment.purpose}",
                )
            )
        scored = {s.item_code for s in assignment.rating.scores} if assignment.rating else set()
        for row in group:
            if row.item in scored:
                problems.append(
                    Problem(
                        source,
                        row.line,
                        "item",
                        row.item,
                        "duplicate: this rater's rating already has a score for this item",
                    )
                )
    return problems


def _write_rating(assignment: Assignment, group: list[ScoreRow], known: Known) -> None:
    submitted = [r.submitted_at for r in group if r.submitted_at]
    rating = assignment.rating
    if rating is None:
        rating = Rating(assignment_id=assignment.id, status="submitted")
        db.session.add(rating)
    rating.status = "submitted"
    rating.submitted_at = max(submitted) if submitted else (rating.submitted_at or utcnow())
    assignment.status = "submitted"
    used = {r.instrument for r in group}
    for code in sorted(used):
        version = known.versions[code]
        if version not in rating.instrument_versions:
            rating.instrument_versions.append(version)
    for row in group:
        rating.scores.append(
            ItemScore(
                instrument_version_id=known.versions[row.instrument].id,
                item_code=row.item,
                score=row.score,
            )
        )
    db.session.flush()
    audit.record(
        "rating.import",
        "rating",
        rating.id,
        after={r.item: r.score for r in group},
    )
