"""Changes to the allocation mid-study: a rater joins or leaves, an assignment moves by hand
(flush only, never commit; every change audited)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from rater import audit
from rater.allocation.calibration import (
    calibration_left_for,
    ensure_calibration_assignments,
    hold_main_work_of,
)
from rater.allocation.design import BalanceReport
from rater.allocation.errors import AllocationError
from rater.allocation.planning import AllocationPlan, apply_plan, current_report, plan
from rater.allocation.settings import (
    SETTING_EXCLUDED_RATERS,
    allocation_raters,
    excluded_raters,
    put_setting,
)
from rater.auth.models import User
from rater.auth.service import set_active
from rater.extensions import db
from rater.formatting import plural
from rater.rating.models import Assignment
from rater.states import Purpose, Role


def rater_joins(username: str, *, dry_run: bool = False) -> AllocationPlan:
    """Take a rater (back) into allocation: re-plan unstarted work so they get a fair share,
    and give them the calibration sessions.

    While the calibration gate is on, a rater who has not finished the calibration sessions
    closes it by joining (the round is no longer complete): their main work, and any other
    new main assignment of the plan, is held until the round is finished and reliable again.
    """
    user = _rater(username)
    raters = sorted(set(allocation_raters()) | {user.username})
    joined = plan(raters=raters)
    left = calibration_left_for(user)
    if left:
        joined.hold_new = True
        joined.notes.append(
            f"{user.username} rates {plural(left, 'calibration session')} first: the"
            " calibration gate is on, so their main work and any new main assignment are"
            " held until the round is finished and reliable again (then release them on the"
            " Calibration page)."
        )
    if dry_run:
        return joined
    if not user.active:
        set_active(user.username, True)
    put_setting(SETTING_EXCLUDED_RATERS, [n for n in excluded_raters() if n != user.username])
    ensure_calibration_assignments()
    applied = apply_plan(joined)
    if left:
        hold_main_work_of(user)  # what moved to them from other raters, too
    return applied


def rater_leaves(
    username: str, *, deactivate: bool = False, dry_run: bool = False
) -> AllocationPlan:
    """Take a rater out of allocation (optionally deactivating the account): their unstarted
    main/double work goes to the others; everyone else's unstarted work stays where it is."""
    user = _rater(username)
    raters = [n for n in allocation_raters() if n != user.username]
    left = plan(raters=raters, keep_unstarted=True)
    if dry_run:
        return left
    if deactivate:
        set_active(user.username, False)
    elif user.username not in excluded_raters():
        put_setting(SETTING_EXCLUDED_RATERS, sorted([*excluded_raters(), user.username]))
    return apply_plan(left)


def _rater(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_rater:
        raise AllocationError(f"no rater named '{username}'")
    return user


@dataclass
class MoveResult:
    assignment: Assignment
    before: BalanceReport
    after: BalanceReport


def move_assignment(assignment_id: int, to_username: str, reason: str = "") -> MoveResult:
    """Give one unstarted main/double assignment to another rater by hand (audited with the
    coordinator's reason)."""
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        raise AllocationError(f"no assignment {assignment_id}")
    if assignment.purpose not in Purpose.DESIGN:
        raise AllocationError("calibration assignments belong to every rater and are not moved")
    if assignment.is_started or assignment.rating is not None:
        raise AllocationError("this assignment was started; started work is never moved")
    target = _rater(to_username)
    if not target.active:
        raise AllocationError(f"{target.username} is not active")
    if target.id == assignment.rater_id:
        raise AllocationError(f"{target.username} already has this assignment")
    taken = db.session.scalar(
        select(Assignment.id).where(
            Assignment.session_id == assignment.session_id, Assignment.rater_id == target.id
        )
    )
    if taken is not None:
        raise AllocationError(f"{target.username} already has session {assignment.session.code}")
    before_report = current_report()
    before = {
        "session": assignment.session.code,
        "rater": assignment.rater.username,
        "purpose": assignment.purpose,
    }
    assignment.rater_id = target.id
    db.session.flush()
    db.session.refresh(assignment)
    after = {**before, "rater": target.username, "by_hand": True, "reason": reason.strip()}
    audit.record("assignment.move", "assignment", assignment.id, before=before, after=after)
    db.session.flush()
    return MoveResult(assignment, before_report, current_report())


def describe_move(assignment: Assignment, to_username: str) -> str:
    """The move in plain words, for the confirmation."""
    purpose = "main rating" if assignment.purpose == Purpose.MAIN else "double-coding"
    return (
        f"Session {assignment.session.code} ({purpose}) moves from"
        f" {assignment.rater.username} to {to_username}: 1 assignment moved, none created or"
        " removed; no started work is touched."
    )


def move_targets(assignment: Assignment) -> list[str]:
    """Active raters who could take this assignment (none of them has the session)."""
    busy = select(Assignment.rater_id).where(Assignment.session_id == assignment.session_id)
    return list(
        db.session.scalars(
            select(User.username)
            .where(User.role == Role.RATER, User.active.is_(True), User.id.not_in(busy))
            .order_by(User.username)
        )
    )
