"""Rating services: the queue, starting, loading, submitting and flagging ratings (flush only).

The views call these and commit once at the end of the request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import aliased, joinedload, selectinload

from rater import audit
from rater.auth.models import User
from rater.extensions import db
from rater.instruments import Instrument, LogKind, answer_json
from rater.rating.models import Assignment, HomeworkEntry, Rating, rating_instruments
from rater.states import AssignmentStatus, Purpose, RatingStatus
from rater.study.instrument_store import cached_instrument, current_versions
from rater.study.models import (
    GATE_ENABLED,
    InstrumentVersion,
    Patient,
    StudySetting,
    TherapySession,
)
from rater.timeutil import utcnow


class RatingStateError(Exception):
    """An action that the rating's current state does not allow (e.g. editing a locked one)."""


class MissingItems(RatingStateError):
    """Submitting with required items unscored; ``items`` lists (code, label) of each."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items
        names = ", ".join(f"{code} ({label})" for code, label in items)
        super().__init__(f"Please score every required item before submitting. Missing: {names}")


@dataclass
class Queue:
    to_do: list[Assignment] = field(default_factory=list)
    in_progress: list[Assignment] = field(default_factory=list)
    submitted: list[Assignment] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.to_do) + len(self.in_progress) + len(self.submitted)

    @property
    def done(self) -> int:
        return len(self.submitted)

    @property
    def next(self) -> Assignment | None:
        """The session to work on next: an unfinished one first, then the first to do."""
        waiting = self.in_progress or self.to_do
        return waiting[0] if waiting else None


def queue_for(user: User) -> Queue:
    """The rater's queue in one query; held and flagged assignments are not part of it."""
    rows = db.session.scalars(
        select(Assignment)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .where(Assignment.rater_id == user.id, Assignment.status.in_(AssignmentStatus.RATEABLE))
        .order_by(
            Assignment.purpose != Purpose.CALIBRATION,
            # released work in its seeded order (NULL last on both engines), then by session
            Assignment.queue_order.is_(None),
            Assignment.queue_order,
            Patient.code,
            TherapySession.session_number,
            TherapySession.code,
        )
    ).unique()
    queue = Queue()
    groups: dict[str, list[Assignment]] = {
        AssignmentStatus.PENDING: queue.to_do,
        AssignmentStatus.IN_PROGRESS: queue.in_progress,
        AssignmentStatus.SUBMITTED: queue.submitted,
    }
    for assignment in rows:
        groups[assignment.status].append(assignment)
    return queue


def start_next(user: User) -> Assignment | None:
    """The rater's next session (an unfinished one first, then the first to do), started."""
    assignment = queue_for(user).next
    if assignment is not None and assignment.rating is None:
        start_rating(assignment)
    return assignment


def get_assignment(assignment_id: int) -> Assignment | None:
    """An assignment with its session and rating (one query)."""
    return db.session.scalar(
        select(Assignment)
        .options(joinedload(Assignment.rating))
        .where(Assignment.id == assignment_id)
    )


def start_rating(assignment: Assignment) -> Rating:
    """The assignment's rating, created on first open with the current instruments pinned."""
    if assignment.rating is not None:
        return assignment.rating
    if assignment.status not in AssignmentStatus.STARTABLE:
        raise RatingStateError("This assignment cannot be started.")
    versions = sorted(current_versions().values(), key=lambda v: v.code)
    rating = Rating(assignment=assignment, status=RatingStatus.DRAFT, instrument_versions=versions)
    assignment.status = AssignmentStatus.IN_PROGRESS
    db.session.add(rating)
    db.session.flush()
    audit.record(
        "rating.start",
        "rating",
        rating.id,
        after={
            "assignment": assignment.id,
            "instruments": {v.code: v.version for v in rating.instrument_versions},
        },
    )
    return rating


def load_rating(rating_id: int) -> Rating:
    """A rating with everything its page shows, in a fixed number of queries (no N+1).

    The pinned instruments are read by ``pinned_instruments`` (ids and hashes only).
    """
    return db.session.scalars(
        select(Rating)
        .options(
            selectinload(Rating.scores),
            selectinload(Rating.notes),
            selectinload(Rating.difficulties),
        )
        .where(Rating.id == rating_id)
        .execution_options(populate_existing=True)
    ).one()


def pinned_instruments(rating: Rating) -> list[Instrument]:
    """The rating's pinned instruments in code order (one small query, parsed once per process)."""
    return [instrument for _, instrument in pinned_versions(rating.id)]


def pinned_versions(rating_id: int) -> list[tuple[int, Instrument]]:
    """(instrument version id, instrument) pinned by a rating, in code order.

    Reads only the ids and content hashes; a definition is read and parsed only the first time
    this process meets that version.
    """
    return instruments_of_rows(db.session.execute(pinned_versions_query(rating_id)).all())


def pinned_versions_query(rating_id: int | ColumnElement[int]) -> Select:
    """Id, code and content hash of each pinned version (callers may add columns and joins)."""
    return (
        select(InstrumentVersion.id, InstrumentVersion.code, InstrumentVersion.content_hash)
        .join(
            rating_instruments, rating_instruments.c.instrument_version_id == InstrumentVersion.id
        )
        .where(rating_instruments.c.rating_id == rating_id)
        .order_by(InstrumentVersion.code)
    )


def instruments_of_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[int, Instrument]]:
    """Rows starting (id, code, content hash) -> (id, instrument), parsed once per process."""
    return [(row[0], cached_instrument(row[1], row[2], _definition_of(row[0]))) for row in rows]


def _definition_of(version_id: int) -> Callable[[], Any]:
    """The loader of one version's definition, called only on a cache miss."""
    return lambda: _definition(version_id)


def _definition(version_id: int) -> Any:
    return db.session.scalar(
        select(InstrumentVersion.definition).where(InstrumentVersion.id == version_id)
    )


def homework_context(rating: Rating) -> tuple[list[HomeworkEntry], list[HomeworkEntry]]:
    """(assigned in the previous session, reported by this rater) in one query.

    The first list is what coordinators entered as ``assigned_next`` for the same patient's
    previous session; the second is this rating's own ``reported_completed`` entries. Nothing of
    any other rater is ever read.
    """
    session = rating.assignment.session
    previous = aliased(TherapySession)
    rows = db.session.scalars(
        select(HomeworkEntry)
        .outerjoin(previous, HomeworkEntry.session_id == previous.id)
        .where(
            or_(
                HomeworkEntry.rating_id == rating.id,
                and_(
                    HomeworkEntry.kind == LogKind.ASSIGNED_NEXT,
                    previous.patient_id == session.patient_id,
                    previous.session_number == session.session_number - 1,
                ),
            )
        )
        .order_by(HomeworkEntry.created_at, HomeworkEntry.id)
    )
    assigned: list[HomeworkEntry] = []
    reported: list[HomeworkEntry] = []
    for entry in rows:
        (assigned if entry.kind == LogKind.ASSIGNED_NEXT else reported).append(entry)
    return assigned, reported


def missing_items(rating: Rating) -> list[tuple[str, str]]:
    """(code, label) of every required item of every pinned instrument not yet scored."""
    scored = {s.item_code for s in rating.scores}
    return [
        (item.code, item.label)
        for instrument in pinned_instruments(rating)
        for item in instrument.items
        if item.required and item.code not in scored
    ]


def ensure_editable(rating: Rating) -> None:
    if rating.is_locked:
        raise RatingStateError("This rating is submitted and locked; it can no longer be changed.")
    if rating.cannot_rate:
        raise RatingStateError("This session was marked as 'cannot be rated'.")


def submit(rating: Rating) -> None:
    """Lock the rating; every required item must be scored."""
    ensure_editable(rating)
    missing = missing_items(rating)
    if missing:
        raise MissingItems(missing)
    rating.status = RatingStatus.SUBMITTED
    rating.submitted_at = utcnow()
    rating.version += 1
    rating.assignment.status = AssignmentStatus.SUBMITTED
    audit.record(
        "rating.submit",
        "rating",
        rating.id,
        after={"scores": {s.item_code: answer_json(s.answer) for s in rating.scores}},
    )
    db.session.flush()


def reopen(rating: Rating, reason: str) -> None:
    """A coordinator reopens a submitted rating for its rater (audited with the reason)."""
    if not rating.is_locked:
        raise RatingStateError("Only a submitted rating can be reopened.")
    assert rating.submitted_at is not None  # a submitted rating has its time
    before = {"status": rating.status, "submitted_at": rating.submitted_at.isoformat()}
    rating.status = RatingStatus.DRAFT
    rating.submitted_at = None
    rating.version += 1
    rating.assignment.status = AssignmentStatus.IN_PROGRESS
    audit.record(
        "rating.reopen",
        "rating",
        rating.id,
        before=before,
        after={"status": RatingStatus.DRAFT, "reason": reason},
    )
    db.session.flush()


def _set_flag(rating: Rating, category: str | None, reason: str | None) -> dict[str, Any]:
    """Set or clear the 'cannot be rated' flag; returns the flag as it was (for the audit)."""
    before = {
        "status": rating.assignment.status,
        "category": rating.cannot_rate_category,
        "reason": rating.cannot_rate_reason,
    }
    rating.cannot_rate = category is not None
    rating.cannot_rate_category = category
    rating.cannot_rate_reason = reason
    rating.version += 1
    rating.assignment.status = (
        AssignmentStatus.CANNOT_RATE if category is not None else AssignmentStatus.IN_PROGRESS
    )
    return before


def mark_cannot_rate(rating: Rating, category: str, reason: str) -> None:
    """The rater flags the session; the assignment leaves the queue and shows as flagged."""
    ensure_editable(rating)
    before = _set_flag(rating, category, reason)
    after = {"status": AssignmentStatus.CANNOT_RATE, "category": category, "reason": reason}
    audit.record(
        "assignment.cannot_rate", "assignment", rating.assignment_id, before=before, after=after
    )
    db.session.flush()


def return_to_queue(rating: Rating) -> None:
    """A coordinator sends a flagged assignment back to its rater (the flag is cleared)."""
    if not rating.cannot_rate:
        raise RatingStateError("This assignment is not flagged.")
    before = _set_flag(rating, None, None)
    after = {"status": AssignmentStatus.IN_PROGRESS}
    audit.record(
        "assignment.unflag", "assignment", rating.assignment_id, before=before, after=after
    )
    db.session.flush()


def flagged_assignments() -> list[Assignment]:
    """Assignments a rater marked as 'cannot be rated', for coordinators (one query)."""
    return list(
        db.session.scalars(
            select(Assignment)
            .options(joinedload(Assignment.rating))
            .where(Assignment.status == AssignmentStatus.CANNOT_RATE)
            .order_by(Assignment.id)
        ).unique()
    )


WAITING_FOR_CALIBRATION = "Your sessions appear once the calibration round is complete."
WAITING_FOR_RELEASE = (
    "More sessions are assigned to you but not released yet; they appear here when a "
    "coordinator releases them."
)
NOTHING_RELEASED = (
    "No sessions released to you yet. A study coordinator assigns them; they appear here "
    "as soon as they are released."
)


def waiting_reason(user: User, queue: Queue) -> str | None:
    """Why a rater has nothing (more) to start, in the rater's words; None when they have.

    Held work is named by its cause: the calibration gate (enabled, so held main work waits
    for the round to complete) or a coordinator's later release. Only counts of the rater's
    own assignments are read: nothing about other raters is revealed.
    """
    if queue.next is not None:
        return None
    held = db.session.scalar(
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.rater_id == user.id, Assignment.status == AssignmentStatus.HELD)
    )
    if held:
        gate = db.session.get(StudySetting, GATE_ENABLED)
        return WAITING_FOR_CALIBRATION if gate is not None and gate.value else WAITING_FOR_RELEASE
    return None if queue.total else NOTHING_RELEASED
