"""``rater events import``: coded events from a CSV file (CACTI or any other tool), all-or-nothing.

Columns: ``session_id, rater, code, time_s``; optional ``end_s, note`` (extra columns are
ignored, so ``rater export events`` can be imported back). Each (session, rater) must be an
assignment of the study; its rating is started when there is none. A code must belong to a
coding sheet the rating uses, or to the current version of a coding sheet (which the rating then
uses too). Every event passes the same check as on the rating page
(:func:`rater.rating.events.check_event`).

The file holds the complete coding of each (session, rater) it names: their stored events are
replaced by the file's, so importing a file twice leaves one copy. Every problem is reported
with its line, column and value, and then nothing is written.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, delete, insert, select

from rater import audit
from rater.auth.models import User
from rater.csvinput import ImportFailed, Problem, in_file_order, read_csv_records
from rater.extensions import db, table_of
from rater.instruments import Instrument
from rater.rating import service as rating_service
from rater.rating.events import check_event, codes_of
from rater.rating.models import Assignment, CodedEvent, rating_instruments
from rater.states import AssignmentStatus
from rater.study.instrument_store import current_versions, instrument_of
from rater.study.models import TherapySession

REQUIRED = ("session_id", "rater", "code", "time_s")
LENGTHS = {"session_id": 64, "rater": 80, "code": 64}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
COLUMN_OF = {"code": "code", "time_s": "time_s", "end_s": "end_s", "note": "note"}


@dataclass
class EventsImportResult:
    events: int = 0
    ratings: int = 0
    replaced: int = 0  # events stored before for those ratings
    ratings_started: int = 0


@dataclass
class _Target:
    """One (session, rater) of the file: its assignment and the codes it may use."""

    assignment: Assignment
    codes: dict[str, Any]
    owners: dict[str, int]  # code -> instrument version id
    duration: float | None
    rows: list[dict[str, Any]]


def _number(text: str) -> float | str:
    """A decimal number, or the text itself (refused by the event check as not a number)."""
    return float(text) if _NUMBER.match(text) else text


def import_events(data: bytes, source: str) -> EventsImportResult:
    """Check the whole file, then replace the events of every (session, rater) it names."""
    records, problems = read_csv_records(data, source, REQUIRED, lengths=LENGTHS)
    coding = {v.id: instrument_of(v) for v in current_versions().values() if instrument_of(v).codes}
    targets: dict[tuple[str, str], _Target | None] = {}
    for record in records:
        values = record.values
        key = (values["session_id"], values["rater"])
        if key not in targets:
            targets[key] = _target(key, coding)
        target = targets[key]
        if target is None:
            problems.append(_no_assignment(source, record.line, key))
            continue
        end = values.get("end_s", "")
        event, found = check_event(
            target.codes, values["code"], _number(values["time_s"]),
            None if end == "" else _number(end), values.get("note", ""), target.duration,
        )  # fmt: skip
        for p in found:
            column = COLUMN_OF[p.field]
            problems.append(Problem(source, record.line, column, values.get(column), p.message))
        if event is not None:
            target.rows.append(event)
    if problems:
        raise ImportFailed(in_file_order(problems))
    return _write([t for t in targets.values() if t is not None])


def _no_assignment(source: str, line: int, key: tuple[str, str]) -> Problem:
    return Problem(
        source, line, "rater", key[1],
        f"is not assigned session {key[0]} (or the session or the rater does not exist, or the "
        "assignment is held or flagged); assign it first",
    )  # fmt: skip


def _target(key: tuple[str, str], coding: dict[int, Instrument]) -> _Target | None:
    assignment = db.session.scalar(
        select(Assignment)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(User, Assignment.rater_id == User.id)
        .where(TherapySession.code == key[0], User.username == key[1])
    )
    if assignment is None or assignment.status not in AssignmentStatus.RATEABLE:
        return None
    pinned: list[tuple[int, Instrument]] = []
    if assignment.rating is not None:
        pinned = [
            (vid, i) for vid, i in rating_service.pinned_versions(assignment.rating.id) if i.codes
        ]
    pinned_codes = {i.code for _, i in pinned}
    usable = pinned + [(vid, i) for vid, i in coding.items() if i.code not in pinned_codes]
    owners: dict[str, int] = {}
    for vid, instrument in reversed(usable):
        owners.update(dict.fromkeys((c.code for c in instrument.codes), vid))
    codes = codes_of(i for _, i in usable)
    return _Target(assignment, codes, owners, assignment.session.duration_seconds, [])


def _write(targets: list[_Target]) -> EventsImportResult:
    result = EventsImportResult()
    events = table_of(CodedEvent)
    for target in targets:
        assignment = target.assignment
        if assignment.rating is None:
            rating_service.start_rating(assignment)
            result.ratings_started += 1
        rating = assignment.rating
        assert rating is not None
        _pin(rating.id, {target.owners[row["code"]] for row in target.rows})
        removed = db.session.execute(delete(events).where(events.c.rating_id == rating.id))
        assert isinstance(removed, CursorResult)  # a DELETE's result counts its rows
        result.replaced += removed.rowcount or 0
        rows = [
            {"rating_id": rating.id, "instrument_version_id": target.owners[row["code"]],
             "client_id": f"import-{uuid.uuid4().hex}", **row}
            for row in target.rows
        ]  # fmt: skip
        if rows:
            db.session.execute(insert(events), rows)
        audit.record("events.import", "rating", rating.id, after={"events": len(rows)})
        result.events += len(rows)
        result.ratings += 1
    db.session.flush()
    return result


def _pin(rating_id: int, version_ids: set[int]) -> None:
    """The rating uses these (coding sheet) versions too."""
    pinned = set(
        db.session.scalars(
            select(rating_instruments.c.instrument_version_id).where(
                rating_instruments.c.rating_id == rating_id
            )
        )
    )
    missing = sorted(version_ids - pinned)
    if missing:
        db.session.execute(
            insert(rating_instruments),
            [{"rating_id": rating_id, "instrument_version_id": v} for v in missing],
        )
