"""The coordinator's home page counts: sessions by therapist and phase, raters' progress."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment
from rater.states import AssignmentStatus, Role, SessionStatus
from rater.study.models import Patient, Therapist, TherapySession


@dataclass(frozen=True)
class StudyOverview:
    """Counts for the coordinator's home page."""

    cells: dict[tuple[str, str], dict[str, int]]  # (therapist, phase) -> status -> count
    therapists: list[str]
    phases: list[str]
    n_patients: int
    n_sessions: int
    n_eligible: int
    raters: list[tuple[str, bool, int, int]]  # username, active, assigned, submitted


def study_overview() -> StudyOverview:
    rows = db.session.execute(
        select(Therapist.code, TherapySession.phase, TherapySession.status, func.count())
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .group_by(Therapist.code, TherapySession.phase, TherapySession.status)
    ).all()
    cells: dict[tuple[str, str], dict[str, int]] = {}
    for therapist, phase, status, count in rows:
        cells.setdefault((therapist, phase), {})[status] = count
    rater_rows = db.session.execute(
        select(
            User.username,
            User.active,
            func.count(Assignment.id),
            func.count(Assignment.id).filter(Assignment.status == AssignmentStatus.SUBMITTED),
        )
        .outerjoin(Assignment, Assignment.rater_id == User.id)
        .where(User.role == Role.RATER)
        .group_by(User.id, User.username, User.active)
        .order_by(User.username)
    ).all()
    n_sessions = sum(sum(c.values()) for c in cells.values())
    return StudyOverview(
        cells=cells,
        therapists=sorted({t for t, _ in cells}),
        phases=sorted({p for _, p in cells}),
        n_patients=db.session.scalar(select(func.count(Patient.id))) or 0,
        n_sessions=n_sessions,
        n_eligible=sum(c.get(SessionStatus.ELIGIBLE, 0) for c in cells.values()),
        raters=[
            (name, active, int(assigned), int(submitted))
            for name, active, assigned, submitted in rater_rows
        ],
    )
