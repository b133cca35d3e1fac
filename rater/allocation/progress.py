"""Progress of the allocation: per rater and per therapist x phase cell, counts of assignments
by status, and drafts nobody touched for a while (read only; a few grouped queries)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from rater.allocation.settings import excluded_raters
from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment, Rating
from rater.states import AssignmentStatus, Purpose, RatingStatus, Role, SessionStatus
from rater.study.models import Therapist, TherapySession
from rater.timeutil import utcnow


def _count_of(counts: dict[str, int], states: frozenset[str]) -> int:
    return sum(counts.get(state, 0) for state in states)


class StatusTally:
    """``assigned`` and ``done`` of a ``counts`` mapping (assignment status -> number), shared by
    the progress of a rater and of a batch."""

    counts: dict[str, int]

    @property
    def assigned(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return _count_of(self.counts, AssignmentStatus.DONE)


@dataclass
class RaterProgress(StatusTally):
    rater: str
    active: bool
    in_allocation: bool
    counts: dict[str, int]  # status -> main/double assignments
    calibration: dict[str, int]

    @property
    def in_progress(self) -> int:
        return self.counts.get(AssignmentStatus.IN_PROGRESS, 0)

    @property
    def submitted(self) -> int:
        return self.counts.get(AssignmentStatus.SUBMITTED, 0)

    @property
    def cannot_rate(self) -> int:
        return self.counts.get(AssignmentStatus.CANNOT_RATE, 0)

    @property
    def waiting(self) -> int:
        return _count_of(self.counts, AssignmentStatus.WAITING)

    @property
    def calibration_done(self) -> int:
        return _count_of(self.calibration, AssignmentStatus.DONE)

    @property
    def calibration_assigned(self) -> int:
        return sum(self.calibration.values())


@dataclass
class CellProgress:
    therapist: str
    phase: str
    sessions: int
    counts: dict[str, int]

    @property
    def assigned(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return _count_of(self.counts, AssignmentStatus.DONE)


@dataclass
class StaleDraft:
    session: str
    rater: str
    purpose: str
    updated_at: datetime
    days: int


@dataclass
class StudyTotal:
    """Main and double-coding work of the whole study (calibration counted apart), and when
    it will be done at the pace of the last ``pace_days`` days."""

    assigned: int
    done: int
    calibration_assigned: int
    calibration_done: int
    recent: int  # main/double ratings submitted in the last pace_days days
    pace_days: int
    today: date

    @property
    def remaining(self) -> int:
        return self.assigned - self.done

    @property
    def per_day(self) -> float:
        return self.recent / self.pace_days if self.pace_days else 0.0

    @property
    def finish(self) -> date | None:
        """Expected finish date at the recent pace; None without recent submissions."""
        if self.remaining <= 0:
            return self.today
        if self.per_day <= 0:
            return None
        return self.today + timedelta(days=math.ceil(self.remaining / self.per_day))

    def finish_text(self) -> str:
        if self.assigned == 0:
            return "No main work is assigned yet."
        if self.remaining <= 0:
            return "All main work is done."
        if self.finish is None:
            return (
                f"No main rating was submitted in the last {self.pace_days} days, so no finish"
                " date can be estimated."
            )
        return (
            f"At the pace of the last {self.pace_days} days ({self.recent} submitted,"
            f" {self.per_day:.1f} a day) the remaining {self.remaining} will be done around"
            f" {self.finish.isoformat()}."
        )


@dataclass
class Progress:
    raters: list[RaterProgress]
    cells: list[CellProgress]
    stale: list[StaleDraft]
    stale_days: int
    total: StudyTotal | None = None


def progress(stale_days: int = 14) -> Progress:
    """Per rater and per therapist x phase cell assignment counts by status; stale drafts."""
    out = excluded_raters()
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    is_calibration = Assignment.purpose == Purpose.CALIBRATION
    for name, calibration, status, n in db.session.execute(
        select(User.username, is_calibration, Assignment.status, func.count(Assignment.id))
        .join(User, Assignment.rater_id == User.id)
        .group_by(User.username, is_calibration, Assignment.status)
    ):
        counts[name]["calibration" if calibration else "design"][status] = n
    users = db.session.execute(
        select(User.username, User.active).where(User.role == Role.RATER).order_by(User.username)
    ).all()
    raters = [
        RaterProgress(
            name,
            active,
            active and name not in out,
            dict(counts[name]["design"]),
            dict(counts[name]["calibration"]),
        )
        for name, active in users
    ]
    return Progress(raters, _cells(), _stale(stale_days), stale_days, _total(raters))


PACE_DAYS = 14


def _total(raters: list[RaterProgress], pace_days: int = PACE_DAYS) -> StudyTotal:
    """Sums of the per-rater counts (so every page counts the same things) and the pace."""
    now = utcnow()
    recent = db.session.scalar(
        select(func.count(Rating.id))
        .join(Assignment, Rating.assignment_id == Assignment.id)
        .where(
            Assignment.purpose.in_(Purpose.DESIGN),
            Rating.status == RatingStatus.SUBMITTED,
            Rating.submitted_at >= now - timedelta(days=pace_days),
        )
    )
    return StudyTotal(
        assigned=sum(r.assigned for r in raters),
        done=sum(_count_of(r.counts, AssignmentStatus.DONE) for r in raters),
        calibration_assigned=sum(sum(r.calibration.values()) for r in raters),
        calibration_done=sum(_count_of(r.calibration, AssignmentStatus.DONE) for r in raters),
        recent=recent or 0,
        pace_days=pace_days,
        today=now.date(),
    )


MAIN_POOL, CALIBRATION, EXCLUDED = "main", "calibration", "excluded"


def session_counts() -> dict[tuple[str, str], dict[str, int]]:
    """(therapist, phase) -> sessions in the main pool (eligible, not calibration sessions),
    calibration sessions (whatever their status) and other excluded sessions.

    The one count of sessions the coordinator's home page and the progress page share, so
    their totals agree: calibration sessions are counted apart, never in the main pool.
    """
    calibration = (
        select(Assignment.session_id).where(Assignment.purpose == Purpose.CALIBRATION).distinct()
    )
    is_calibration = TherapySession.id.in_(calibration)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for therapist, phase, status, in_calibration, n in db.session.execute(
        select(
            Therapist.code, TherapySession.phase, TherapySession.status, is_calibration,
            func.count(TherapySession.id),
        )
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .group_by(Therapist.code, TherapySession.phase, TherapySession.status, is_calibration)
    ):  # fmt: skip
        if in_calibration:
            kind = CALIBRATION
        elif status == SessionStatus.ELIGIBLE:
            kind = MAIN_POOL
        else:
            kind = EXCLUDED
        cell = counts.setdefault((therapist, phase), {MAIN_POOL: 0, CALIBRATION: 0, EXCLUDED: 0})
        cell[kind] += n
    return counts


def _cells() -> list[CellProgress]:
    cells = {
        (t, p): CellProgress(t, p, n[MAIN_POOL], {})
        for (t, p), n in session_counts().items()
        if n[MAIN_POOL]
    }
    for therapist, phase, status, n in db.session.execute(
        select(Therapist.code, TherapySession.phase, Assignment.status, func.count(Assignment.id))
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .where(Assignment.purpose.in_(Purpose.DESIGN))
        .group_by(Therapist.code, TherapySession.phase, Assignment.status)
    ):
        cell = cells.setdefault((therapist, phase), CellProgress(therapist, phase, 0, {}))
        cell.counts[status] = n
    return [cells[k] for k in sorted(cells)]


def _stale(days: int) -> list[StaleDraft]:
    now = utcnow()
    rows = db.session.execute(
        select(TherapySession.code, User.username, Assignment.purpose, Rating.updated_at)
        .select_from(Rating)
        .join(Assignment, Rating.assignment_id == Assignment.id)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(User, Assignment.rater_id == User.id)
        .where(Rating.status == RatingStatus.DRAFT, Rating.updated_at < now - timedelta(days=days))
        .order_by(Rating.updated_at)
    ).all()
    return [StaleDraft(s, r, p, at, (now - at).days) for s, r, p, at in rows]
