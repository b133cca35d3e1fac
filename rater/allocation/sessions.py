"""The coordinator's list of sessions with their assignments: filters and one page (read only).

A page costs a count, the page's session ids (Flask-SQLAlchemy's ``db.paginate``) and one row
query of those sessions with their assignments, whatever the page size (no N+1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, select

from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment, Rating
from rater.states import AssignmentStatus, Purpose, Role
from rater.study.models import Patient, Therapist, TherapySession

UNASSIGNED = "unassigned"
# The states the list filters by: no assignment at all, or an assignment in that status.
SESSION_STATES = (UNASSIGNED, *(status.value for status in AssignmentStatus))


@dataclass(frozen=True)
class SessionFilters:
    therapist: str = ""
    patient: str = ""
    phase: str = ""
    rater: str = ""
    state: str = ""


@dataclass(frozen=True)
class AssignmentCell:
    """One assignment of a listed session, with what the links need."""

    id: int
    rater: str
    purpose: str
    status: str
    has_rating: bool

    @property
    def movable(self) -> bool:
        return (
            self.purpose in Purpose.DESIGN
            and self.status in AssignmentStatus.WAITING
            and not self.has_rating
        )


@dataclass
class SessionRow:
    id: int
    code: str
    patient: str
    therapist: str
    number: int
    phase: str
    status: str
    exclusion_reason: str | None
    assignments: list[AssignmentCell]
    has_audio: bool = False


@dataclass
class SessionPage:
    rows: list[SessionRow]
    total: int
    page: int
    per_page: int
    options: dict[str, list[str]]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _session_conditions(filters: SessionFilters) -> list[Any]:
    conditions: list[Any] = []
    if filters.therapist:
        conditions.append(Therapist.code == filters.therapist)
    if filters.patient:
        conditions.append(Patient.code == filters.patient)
    if filters.phase:
        conditions.append(TherapySession.phase == filters.phase)
    match = [Assignment.session_id == TherapySession.id]
    if filters.rater:
        rater_id = select(User.id).where(User.username == filters.rater).scalar_subquery()
        match.append(Assignment.rater_id == rater_id)
    if filters.state == UNASSIGNED:
        conditions.append(~exists().where(and_(*match)))
    elif filters.state in SESSION_STATES:
        conditions.append(exists().where(and_(*match, Assignment.status == filters.state)))
    elif filters.rater:
        conditions.append(exists().where(and_(*match)))
    return conditions


MAX_PAGE = 1_000_000


def session_page(filters: SessionFilters, page: int = 1, per_page: int = 50) -> SessionPage:
    """One page of sessions with their assignments; a page past the last shows the last."""
    ids = (
        select(TherapySession.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .where(*_session_conditions(filters))
        .order_by(TherapySession.code)
    )
    # A page number beyond any study is the last page; clamped first, as an OFFSET past the
    # engine's 64-bit integers would fail before the last page could be found.
    page = min(max(1, page), MAX_PAGE)
    pagination = db.paginate(ids, page=page, per_page=per_page, error_out=False)
    last = max(1, pagination.pages)
    if pagination.page > last:
        pagination = db.paginate(ids, page=last, per_page=per_page, error_out=False)
    result = db.session.execute(
        select(
            TherapySession.id,
            TherapySession.audio_path,
            TherapySession.code,
            Patient.code,
            Therapist.code,
            TherapySession.session_number,
            TherapySession.phase,
            TherapySession.status,
            TherapySession.exclusion_reason,
            Assignment.id,
            User.username,
            Assignment.purpose,
            Assignment.status,
            Rating.id,
        )
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .outerjoin(Assignment, Assignment.session_id == TherapySession.id)
        .outerjoin(User, Assignment.rater_id == User.id)
        .outerjoin(Rating, Rating.assignment_id == Assignment.id)
        .where(TherapySession.id.in_(list(pagination.items)))
        .order_by(TherapySession.code, Assignment.purpose, User.username)
    )
    rows: dict[str, SessionRow] = {}
    for sid, audio, code, patient, therapist, number, phase, status, reason, *rest in result:
        row = rows.setdefault(
            code,
            SessionRow(
                sid, code, patient, therapist, number, phase, status, reason, [], bool(audio)
            ),
        )
        assignment_id, rater, purpose, assignment_status, rating_id = rest
        if assignment_id is not None:
            row.assignments.append(
                AssignmentCell(
                    assignment_id, rater, purpose, assignment_status, rating_id is not None
                )
            )
    return SessionPage(
        list(rows.values()), pagination.total or 0, pagination.page, per_page, filter_options()
    )


def filter_options() -> dict[str, list[str]]:
    return {
        "therapist": list(db.session.scalars(select(Therapist.code).order_by(Therapist.code))),
        "patient": list(db.session.scalars(select(Patient.code).order_by(Patient.code))),
        "phase": list(
            db.session.scalars(
                select(TherapySession.phase).distinct().order_by(TherapySession.phase)
            )
        ),
        "rater": list(
            db.session.scalars(
                select(User.username).where(User.role == Role.RATER).order_by(User.username)
            )
        ),
        "state": list(SESSION_STATES),
    }
