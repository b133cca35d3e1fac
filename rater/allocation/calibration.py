"""The calibration round and the gate in front of main rating (flush only, never commit).

Every active rater in allocation rates the same calibration sessions first. The coordinator
picks them, or draws N stratified by therapist and phase (seeded). Calibration sessions are
outside the main design; the coordinator may also mark them ``excluded`` with the reason
"calibration session", as the reference study did.

The gate (settings ``calibration.gate_enabled`` and ``calibration.threshold``): while it is
enabled and closed, main/double assignments are ``held``. It opens when every calibration
assignment is finished and the calibration reliability reaches the threshold. Reliability is
``rater.reliability.calibration.calibration_icc(frame)``: the lowest ICC(A,1) of the round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd
from flask import current_app
from sqlalchemy import select

from rater import audit
from rater.allocation.design import stratified_draw
from rater.allocation.errors import CalibrationError
from rater.allocation.settings import allocation_raters, get_setting, put_setting
from rater.auth.models import User
from rater.extensions import db
from rater.formatting import format_number, plural
from rater.rating.frame import ratings_frame
from rater.rating.models import Assignment
from rater.reliability.calibration import calibration_icc
from rater.states import AssignmentStatus, Purpose, SessionStatus
from rater.study.models import GATE_ENABLED, Patient, Therapist, TherapySession

GATE_THRESHOLD = "calibration.threshold"
RELEASE_IN_BATCHES = "allocation.release_in_batches"
DEFAULT_THRESHOLD = 0.75
CALIBRATION_REASON = "calibration session"

# ----------------------------------------------------------------------------- drawing


def draw_candidates() -> pd.DataFrame:
    """Eligible sessions that are not calibration sessions and have no started main work."""
    busy = select(Assignment.session_id).where(
        (Assignment.purpose == Purpose.CALIBRATION)
        | Assignment.status.in_(AssignmentStatus.STARTED)
    )
    result = db.session.execute(
        select(
            TherapySession.code.label("session_id"),
            Therapist.code.label("therapist"),
            TherapySession.phase,
            Patient.code.label("patient"),
        )
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .where(TherapySession.status == SessionStatus.ELIGIBLE, TherapySession.id.not_in(busy))
    )
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def draw_sessions(n: int, seed: int = 0) -> list[str]:
    """Codes of n calibration sessions drawn stratified (writes nothing)."""
    return stratified_draw(draw_candidates(), n, seed)


# ----------------------------------------------------------------------------- sessions


def calibration_sessions() -> list[TherapySession]:
    ids = select(Assignment.session_id).where(Assignment.purpose == Purpose.CALIBRATION)
    return list(
        db.session.scalars(
            select(TherapySession).where(TherapySession.id.in_(ids)).order_by(TherapySession.code)
        )
    )


@dataclass
class CalibrationChange:
    sessions: list[str]
    created: int
    removed: int
    excluded: int


def add_calibration_sessions(codes: Sequence[str], *, exclude: bool = False) -> CalibrationChange:
    """Make these sessions calibration sessions rated by every rater in allocation.

    Unstarted main/double assignments of the sessions are removed (re-run the allocation to
    rebalance); a session with started main work is refused. ``exclude`` marks the sessions
    excluded from the main pool with the reason "calibration session".
    """
    codes = sorted({c.strip() for c in codes if c.strip()})
    if not codes:
        raise CalibrationError("no sessions given")
    found = {
        s.code: s
        for s in db.session.scalars(select(TherapySession).where(TherapySession.code.in_(codes)))
    }
    missing = [c for c in codes if c not in found]
    if missing:
        raise CalibrationError(f"unknown session(s): {', '.join(missing)}")
    rows = list(
        db.session.scalars(
            select(Assignment).where(
                Assignment.session_id.in_([s.id for s in found.values()]),
                Assignment.purpose.in_(Purpose.DESIGN),
            )
        )
    )
    started = sorted({a.session.code for a in rows if a.is_started or a.rating is not None})
    if started:
        raise CalibrationError(f"main rating already started on: {', '.join(started)}")
    for a in rows:
        before = {"session": a.session.code, "rater": a.rater.username, "purpose": a.purpose}
        audit.record(
            "assignment.remove", "assignment", a.id, before=before, after={"reason": "calibration"}
        )
        db.session.delete(a)
    db.session.flush()
    excluded = 0
    for s in found.values():
        if exclude and s.status != SessionStatus.EXCLUDED:
            previous = {"status": s.status, "exclusion_reason": s.exclusion_reason}
            s.status, s.exclusion_reason = SessionStatus.EXCLUDED, CALIBRATION_REASON
            audit.record(
                "session.exclude",
                "session",
                s.code,
                before=previous,
                after={"status": SessionStatus.EXCLUDED, "exclusion_reason": CALIBRATION_REASON},
            )
            excluded += 1
    created = _create_calibration_rows([s.id for s in found.values()])
    return CalibrationChange(codes, created, len(rows), excluded)


def ensure_calibration_assignments() -> int:
    """Every rater in allocation gets every calibration session (e.g. after joining)."""
    return _create_calibration_rows([s.id for s in calibration_sessions()])


def calibration_left_for(user: User) -> int:
    """How many calibration sessions a rater who joins has yet to finish while the gate is on
    (0 when it is off): their joining closes the gate until they have."""
    if not get_setting(GATE_ENABLED, False):
        return 0
    finished = db.session.scalars(
        select(Assignment.session_id).where(
            Assignment.rater_id == user.id,
            Assignment.purpose == Purpose.CALIBRATION,
            Assignment.status.in_(AssignmentStatus.DONE),
        )
    )
    return len({s.id for s in calibration_sessions()} - set(finished))


def _create_calibration_rows(session_ids: list[int]) -> int:
    if not session_ids:
        return 0
    names = allocation_raters()
    users = list(db.session.scalars(select(User).where(User.username.in_(names))))
    have = set(
        db.session.execute(
            select(Assignment.session_id, Assignment.rater_id).where(
                Assignment.session_id.in_(session_ids)
            )
        ).all()
    )
    created = 0
    for session_id in session_ids:
        for u in users:
            if (session_id, u.id) in have:
                continue
            a = Assignment(
                session_id=session_id,
                rater_id=u.id,
                purpose=Purpose.CALIBRATION,
                status=AssignmentStatus.PENDING,
            )
            db.session.add(a)
            db.session.flush()
            audit.record(
                "assignment.create",
                "assignment",
                a.id,
                after={
                    "session_id": session_id,
                    "rater": u.username,
                    "purpose": Purpose.CALIBRATION,
                },
            )
            created += 1
    return created


# ----------------------------------------------------------------------------- the gate


@dataclass(frozen=True)
class GateStatus:
    enabled: bool
    threshold: float
    sessions: int
    done: int
    total: int
    reliability: float | None
    reliability_note: str
    held: int

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.done == self.total

    @property
    def reliable(self) -> bool:
        return self.reliability is not None and self.reliability >= self.threshold

    @property
    def passes(self) -> bool:
        return not self.enabled or (self.complete and self.reliable)

    def lines(self) -> list[str]:
        """Plain-text description for the CLI and the page."""
        state = "off" if not self.enabled else ("open" if self.passes else "closed")
        out = [
            f"Calibration gate: {state} (threshold {self.threshold:g});"
            f" {plural(self.sessions, 'calibration session')}, {self.done} of {self.total}"
            " calibration assignments finished.",
        ]
        if self.reliability is None:
            out.append(f"Calibration reliability: not yet available ({self.reliability_note}).")
        else:
            value = format_number(self.reliability, 3)
            out.append(f"Calibration reliability: {value} ({self.reliability_note}).")
        if self.held:
            out.append(f"{plural(self.held, 'main assignment')} held back.")
        return out


def calibration_reliability() -> tuple[float | None, str]:
    """(lowest ICC(A,1) of the calibration round or None, a note saying what it rests on)."""
    frame = ratings_frame()
    frame = frame[frame["purpose"] == Purpose.CALIBRATION].reset_index(drop=True)
    try:
        value, note = calibration_icc(frame)
    except Exception:  # a failing coefficient must not break the coordinator's page
        current_app.logger.exception("calibration_icc failed")
        return None, "could not be computed (the server log has the details)"
    return None if value is None else float(value), note


def gate_status() -> GateStatus:
    enabled = bool(get_setting(GATE_ENABLED, False))
    threshold = float(get_setting(GATE_THRESHOLD, DEFAULT_THRESHOLD))
    names = allocation_raters()
    rows = db.session.execute(
        select(Assignment.session_id, Assignment.status)
        .join(User, Assignment.rater_id == User.id)
        .where(Assignment.purpose == Purpose.CALIBRATION, User.username.in_(names))
    ).all()
    held = db.session.scalar(
        select(db.func.count(Assignment.id)).where(Assignment.status == AssignmentStatus.HELD)
    )
    value, note = calibration_reliability()
    return GateStatus(
        enabled=enabled,
        threshold=threshold,
        sessions=len({s for s, _ in rows}),
        done=sum(status in AssignmentStatus.DONE for _, status in rows),
        total=len(rows),
        reliability=value,
        reliability_note=note,
        held=held or 0,
    )


def hold_new_main() -> bool:
    """Should new main/double assignments start ``held``? (Gate enabled and closed, or the
    coordinator releases work in batches.)"""
    if get_setting(RELEASE_IN_BATCHES, False):
        return True
    if not get_setting(GATE_ENABLED, False):
        return False
    return not gate_status().passes


@dataclass(frozen=True)
class GateChange:
    """What saving gate settings will do, said before it is done."""

    enabled: bool
    threshold: float
    passes: bool  # the gate with the new settings lets main work through
    to_hold: int  # pending main work that becomes held
    held: int  # main work held now (by the gate or for later batches)
    batches: bool  # new work is held for release in batches anyway

    @property
    def offers_release(self) -> bool:
        return self.passes and self.held > 0

    def lines(self) -> list[str]:
        if self.enabled:
            out = [
                f"The gate will hold main work until calibration reaches"
                f" {format_number(self.threshold, 2)}."
            ]
            if self.to_hold:
                out.append(
                    f"{plural(self.to_hold, 'pending main assignment')} will be held back"
                    " and disappear from the raters' queues until the gate opens."
                )
            elif not self.passes:
                out.append("No pending work is held back by this change.")
        else:
            out = ["The gate will be off: calibration no longer holds main work back."]
        if self.offers_release:
            out.append(
                f"{plural(self.held, 'main assignment')} are held now. Saving does not"
                " release them by itself: tick the box to release them all now, or release"
                " them later in batches."
            )
        out.append("No started work is touched.")
        return out


def gate_change(enabled: bool, threshold: float) -> GateChange:
    """Preview of ``set_gate`` (writes nothing)."""
    status = replace(gate_status(), enabled=bool(enabled), threshold=float(threshold))
    pending = db.session.scalar(
        select(db.func.count(Assignment.id)).where(
            Assignment.status == AssignmentStatus.PENDING, Assignment.purpose.in_(Purpose.DESIGN)
        )
    )
    return GateChange(
        enabled=bool(enabled),
        threshold=float(threshold),
        passes=status.passes,
        to_hold=0 if status.passes else int(pending or 0),
        held=status.held,
        batches=bool(get_setting(RELEASE_IN_BATCHES, False)),
    )


def set_gate(enabled: bool, threshold: float) -> int:
    """Store the gate settings; enabling a closed gate holds pending main work. Returns the
    number of assignments held."""
    if not -1.0 <= threshold <= 1.0:
        raise CalibrationError("the threshold must lie between -1 and 1")
    put_setting(GATE_ENABLED, bool(enabled))
    put_setting(GATE_THRESHOLD, float(threshold))
    db.session.flush()
    if not enabled or gate_status().passes:
        return 0
    return _set_status(AssignmentStatus.PENDING, AssignmentStatus.HELD, "assignment.hold")


def hold_main_work_of(user: User) -> int:
    """Hold the rater's pending main work (they rate the calibration sessions first); the
    number of assignments held."""
    return _set_status(AssignmentStatus.PENDING, AssignmentStatus.HELD, "assignment.hold", user)


def _set_status(old: str, new: str, action: str, rater: User | None = None) -> int:
    """Main work in status ``old`` (of ``rater`` only, if given) set to ``new``, audited."""
    query = select(Assignment).where(
        Assignment.status == old, Assignment.purpose.in_(Purpose.DESIGN)
    )
    if rater is not None:
        query = query.where(Assignment.rater_id == rater.id)
    rows = list(db.session.scalars(query))
    for a in rows:
        a.status = new
        audit.record(action, "assignment", a.id, before={"status": old}, after={"status": new})
    db.session.flush()
    return len(rows)


@dataclass
class CalibrationGrid:
    """Status of every calibration assignment: sessions x raters."""

    sessions: list[str]
    raters: list[str]
    status: dict[tuple[str, str], str]


def calibration_assignments() -> CalibrationGrid:
    rows = db.session.execute(
        select(TherapySession.code, User.username, Assignment.status)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(User, Assignment.rater_id == User.id)
        .where(Assignment.purpose == Purpose.CALIBRATION)
    ).all()
    return CalibrationGrid(
        sorted({s for s, _, _ in rows}),
        sorted({r for _, r, _ in rows}),
        {(session, rater): status for session, rater, status in rows},
    )
