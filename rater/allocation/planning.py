"""Planning the allocation of the whole study and writing a plan (flush only, never commit).

A *plan* runs the pure :func:`rater.allocation.design.design` on the study as it stands and
compares the result with the assignments in the database. Started work (in progress,
submitted, cannot be rated, or any assignment that already has a rating) is passed to the
design as ``fixed`` and never touched; unstarted ``main``/``double`` assignments may be
re-planned: moved to another rater, given another purpose, removed or created. Applying a plan
writes exactly that difference, audits every row it changes, and flushes; the CLI command or
the request commits once.

Sessions outside the main pool: excluded sessions, calibration sessions (they carry
``calibration`` assignments, and a rater cannot hold two assignments of one session), and
"settled" sessions on which a rater who has left allocation already started work (their work
stays; the design cannot place a rater it does not know).

In the design's frames ``session_id`` is the session *code* (the CSV column); here the
integer key of a session is ``session_id`` and its code ``session_code``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select

from rater import audit
from rater.allocation.calibration import hold_new_main
from rater.allocation.design import BalanceReport, Design, balance_report, design
from rater.allocation.errors import AllocationError
from rater.allocation.settings import (
    SETTING_FRACTION,
    SETTING_SEED,
    allocation_raters,
    double_fraction_or_stored,
    put_setting,
    seed_or_stored,
)
from rater.auth.models import User
from rater.extensions import db
from rater.formatting import plural
from rater.rating.models import Assignment, Rating
from rater.states import AssignmentStatus, Purpose, Role, SessionStatus
from rater.study.models import Patient, Therapist, TherapySession

# ----------------------------------------------------------------------------- study state


@dataclass
class _Row:
    """One assignment as the plan sees it."""

    id: int
    session_id: int
    session_code: str
    rater_id: int
    rater: str
    purpose: str
    status: str
    has_rating: bool

    @property
    def started(self) -> bool:
        return self.status in AssignmentStatus.STARTED or self.has_rating

    def as_dict(self) -> dict[str, Any]:
        return {"session": self.session_code, "rater": self.rater, "purpose": self.purpose}


@dataclass
class _State:
    sessions: pd.DataFrame  # id, session_id (the code), therapist, patient, phase, status
    rows: list[_Row]
    rater_ids: dict[str, int]

    @property
    def calibration_session_ids(self) -> set[int]:
        return {r.session_id for r in self.rows if r.purpose == Purpose.CALIBRATION}

    @property
    def id_of_code(self) -> dict[str, int]:
        return dict(zip(self.sessions["session_id"], self.sessions["id"], strict=True))

    @property
    def not_eligible(self) -> set[int]:
        return set(self.sessions.loc[self.sessions["status"] != SessionStatus.ELIGIBLE, "id"])

    @property
    def design_rows(self) -> list[_Row]:
        return [r for r in self.rows if r.purpose in Purpose.DESIGN]


def _load_state() -> _State:
    """The sessions frame and every assignment, one query each."""
    result = db.session.execute(
        select(
            TherapySession.id,
            TherapySession.code.label("session_id"),
            Therapist.code.label("therapist"),
            Patient.code.label("patient"),
            TherapySession.phase,
            TherapySession.status,
        )
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .order_by(TherapySession.code)
    )
    sessions = pd.DataFrame(result.all(), columns=list(result.keys()))
    rows = [
        _Row(*r)
        for r in db.session.execute(
            select(
                Assignment.id,
                Assignment.session_id,
                TherapySession.code,
                Assignment.rater_id,
                User.username,
                Assignment.purpose,
                Assignment.status,
                Rating.id.is_not(None),
            )
            .join(TherapySession, Assignment.session_id == TherapySession.id)
            .join(User, Assignment.rater_id == User.id)
            .outerjoin(Rating, Rating.assignment_id == Assignment.id)
            .order_by(Assignment.id)
        )
    ]
    rater_ids = dict(
        db.session.execute(select(User.username, User.id).where(User.role == Role.RATER)).all()
    )
    return _State(sessions, rows, rater_ids)


def _design_frame(state: _State, outside: set[int]) -> pd.DataFrame:
    """Sessions as the design sees them: sessions outside the pool count as excluded."""
    frame = state.sessions.copy()
    frame.loc[frame["id"].isin(outside), "status"] = SessionStatus.EXCLUDED.value
    return frame


def _settled(state: _State, raters: set[str]) -> set[int]:
    """Sessions where a rater outside allocation has started main/double work."""
    return {r.session_id for r in state.design_rows if r.started and r.rater not in raters}


def _assignments_frame(rows: list[_Row]) -> pd.DataFrame:
    """Rows as the design takes them: ``session_id`` (the code), ``rater``, ``purpose``."""
    return pd.DataFrame(
        [(r.session_code, r.rater, r.purpose) for r in rows],
        columns=["session_id", "rater", "purpose"],
    )


# ----------------------------------------------------------------------------- plans


@dataclass
class Change:
    """One row of the difference between the database and a design."""

    kind: str  # create | move | remove
    session_id: int
    session_code: str
    rater: str
    purpose: str
    assignment_id: int | None = None
    before: dict[str, Any] | None = None


@dataclass
class AllocationPlan:
    """A design of the whole study, the balance before it, and what applying it changes."""

    design: Design
    before: BalanceReport
    double_fraction: float
    seed: int
    raters: list[str]
    changes: list[Change]
    outside: dict[str, int]
    hold_new: bool
    kept: int
    applied: bool = False
    notes: list[str] = field(default_factory=list)
    started: int = 0  # started or finished main/double assignments (never touched)
    # Active raters in allocation who have no main/double work in this design (a new account
    # while every unstarted assignment is kept): they get work when they *join*.
    idle: list[str] = field(default_factory=list)

    @property
    def after(self) -> BalanceReport:
        return self.design.report

    @property
    def counts(self) -> dict[str, int]:
        out = {"created": 0, "moved": 0, "removed": 0, "kept": self.kept}
        for change in self.changes:
            out[{"create": "created", "move": "moved", "remove": "removed"}[change.kind]] += 1
        return out

    @property
    def digest(self) -> str:
        """Fingerprint of the planned changes: a commit refuses a plan that differs from the
        preview the coordinator saw (the study changed in between)."""
        text = "|".join(
            f"{c.kind}:{c.assignment_id}:{c.session_code}:{c.rater}:{c.purpose}"
            for c in self.changes
        )
        return hashlib.sha256(f"{self.double_fraction}:{self.seed}:{text}".encode()).hexdigest()

    def summary(self) -> str:
        counts = self.counts
        verb = "Wrote" if self.applied else "Would write"
        return (
            f"{verb}: {counts['created']} created, {counts['moved']} moved,"
            f" {counts['removed']} removed, {counts['kept']} kept"
            " (started work is never touched)."
        )

    def plain_summary(self) -> str:
        """What committing changes, in the coordinator's words."""
        counts = self.counts
        if not self.changes:
            if self.idle:
                return "Nothing changes in the assignments already made. " + self.idle_note()
            return "Nothing changes: the assignments already match this design."
        will = "" if self.applied else " will be"
        text = (
            f"{plural(counts['created'], 'assignment')}{will} created,"
            f" {counts['moved']}{will} moved to another rater or purpose,"
            f" {counts['removed']}{will} removed; no started work is touched"
        )
        if self.started:
            stay = "stays as it is" if self.started == 1 else "stay as they are"
            text += f" ({plural(self.started, 'started assignment')} {stay})"
        return text + "." + (" " + self.idle_note() if self.idle else "")

    def idle_note(self) -> str:
        """Why active raters get no work from this design, and what gives them some."""
        if not self.idle:
            return ""
        one = len(self.idle) == 1
        names = ", ".join(self.idle)
        who = f"Active rater {names} has" if one else f"Active raters {names} have"
        return (
            f"{who} no work in this design, because every unstarted assignment is kept with its"
            f" rater. Let {'them' if not one else names} join allocation (Raters joining or"
            " leaving) to re-plan unstarted work and give "
            f"{'each of them' if not one else 'them'} a fair share."
        )

    def to_text(self) -> str:
        """Balance report before and after, for the CLI."""
        outside = ", ".join(f"{n} {k}" for k, n in self.outside.items() if n)
        lines = [
            f"Design: double fraction {self.double_fraction:g}, seed {self.seed},"
            f" {len(self.raters)} raters ({', '.join(self.raters)})",
            f"Sessions outside the main pool: {outside or 'none'}",
        ]
        if self.hold_new:
            lines.append("New main assignments are held until the calibration gate opens.")
        lines += self.notes
        if self.idle:
            lines.append(self.idle_note() + " (rater allocation add-rater NAME)")
        lines += ["", self.after.to_text(), "", self.summary()]
        return "\n".join(lines)


def plan(
    double_fraction: float | None = None,
    seed: int | None = None,
    *,
    keep_unstarted: bool = False,
    raters: list[str] | None = None,
    calibration: list[str] | tuple[str, ...] = (),
) -> AllocationPlan:
    """Design the study as it stands; write nothing (this is the dry run).

    ``keep_unstarted`` also fixes the unstarted assignments of raters in allocation, so only
    uncovered work (new sessions, work of raters who left) is placed; otherwise every
    unstarted main/double assignment may be re-planned. ``raters`` overrides the raters in
    allocation; ``calibration`` names (by code) sessions about to become calibration sessions.
    """
    fraction = double_fraction_or_stored(double_fraction)
    seed = seed_or_stored(seed)
    raters = allocation_raters() if raters is None else sorted(raters)
    if len(raters) < 2:
        raise AllocationError("allocation needs at least two active raters")
    state = _load_state()
    in_allocation = set(raters)
    id_of_code = state.id_of_code
    calibration_ids = state.calibration_session_ids | {
        id_of_code[code] for code in calibration if code in id_of_code
    }
    settled = _settled(state, in_allocation) - calibration_ids
    excluded = state.not_eligible
    outside = calibration_ids | settled | excluded
    frame = _design_frame(state, outside)
    design_rows = state.design_rows
    fixed = [
        r
        for r in design_rows
        if r.session_id not in outside
        and r.rater in in_allocation
        and (r.started or keep_unstarted)
    ]
    before_raters = sorted(
        in_allocation | {r.rater for r in design_rows if r.session_id not in outside}
    )
    before = balance_report(frame, before_raters, _assignments_frame(design_rows), fraction)
    try:
        result = design(
            frame, raters, double_fraction=fraction, seed=seed, fixed=_assignments_frame(fixed)
        )
    except ValueError as exc:
        raise AllocationError(f"the design cannot be built: {exc}") from exc
    changes, kept = _diff(state, result, settled, in_allocation)
    with_work = set(result.assignments["rater"]) | {
        r.rater for r in design_rows if r.session_id in settled
    }
    notes = []
    if settled:
        notes.append(
            f"{len(settled)} session(s) stay with raters who left allocation but started them."
        )
    return AllocationPlan(
        design=result,
        before=before,
        double_fraction=fraction,
        seed=seed,
        raters=raters,
        changes=changes,
        outside={
            "excluded": len(excluded - calibration_ids),
            "calibration": len(calibration_ids),
            "settled": len(settled),
        },
        hold_new=hold_new_main(),
        kept=kept,
        notes=notes,
        started=sum(r.started for r in design_rows),
        idle=[r for r in raters if r not in with_work],
    )


def _managed(row: _Row, settled: set[int], in_allocation: set[str]) -> bool:
    """May this row be moved or removed by a plan?"""
    if row.started:
        return False
    return not (row.session_id in settled and row.rater in in_allocation)


def _diff(
    state: _State,
    result: Design,
    settled: set[int],
    in_allocation: set[str],
) -> tuple[list[Change], int]:
    """Creates, moves and removes that turn the database into the design."""
    id_of_code = state.id_of_code
    existing: dict[int, list[_Row]] = defaultdict(list)
    for row in state.design_rows:
        existing[row.session_id].append(row)
    target: dict[int, list[tuple[str, str]]] = defaultdict(list)
    planned = result.assignments[["session_id", "rater", "purpose"]]
    for session_code, rater, purpose in planned.itertuples(index=False):
        target[int(id_of_code[session_code])].append((str(rater), str(purpose)))
    changes: list[Change] = []
    kept = 0
    for session_id in sorted(set(existing) | set(target)):
        have = list(existing.get(session_id, []))
        want = list(target.get(session_id, []))
        for row in list(have):
            if (row.rater, row.purpose) in want:
                want.remove((row.rater, row.purpose))
                have.remove(row)
                kept += 1
        movable = [row for row in have if _managed(row, settled, in_allocation)]
        kept += len(have) - len(movable)
        # same rater, new purpose first; then any free row to a new rater
        movable.sort(key=lambda row: row.rater not in {w[0] for w in want})
        for row in movable:
            if want:
                same = [w for w in want if w[0] == row.rater]
                rater, purpose = (same or want)[0]
                want.remove((rater, purpose))
                changes.append(
                    Change(
                        "move",
                        session_id,
                        row.session_code,
                        rater,
                        purpose,
                        row.id,
                        before=row.as_dict(),
                    )
                )
            else:
                changes.append(
                    Change(
                        "remove",
                        session_id,
                        row.session_code,
                        row.rater,
                        row.purpose,
                        row.id,
                        before=row.as_dict(),
                    )
                )
        session_code = have[0].session_code if have else _code_of(state, session_id)
        changes += [
            Change("create", session_id, session_code, rater, purpose) for rater, purpose in want
        ]
    return changes, kept


def _code_of(state: _State, session_id: int) -> str:
    return str(state.sessions.loc[state.sessions["id"] == session_id, "session_id"].iloc[0])


def apply_plan(allocation_plan: AllocationPlan) -> AllocationPlan:
    """Write the plan's changes (removes, then moves, then creates) and flush; audited."""
    changes = allocation_plan.changes
    user_ids = dict(db.session.execute(select(User.username, User.id)).all())
    status = AssignmentStatus.HELD if allocation_plan.hold_new else AssignmentStatus.PENDING
    by_id = _assignments_by_id([c.assignment_id for c in changes if c.assignment_id])
    for change in changes:
        if change.kind == "remove":
            assert change.assignment_id is not None  # removes and moves name their assignment
            assignment = by_id[change.assignment_id]
            _refuse_started(assignment)
            audit.record("assignment.remove", "assignment", assignment.id, before=change.before)
            db.session.delete(assignment)
    db.session.flush()
    for change in changes:
        if change.kind == "move":
            assert change.assignment_id is not None
            assignment = by_id[change.assignment_id]
            _refuse_started(assignment)
            assignment.rater_id, assignment.purpose = user_ids[change.rater], change.purpose
            after = {
                "session": change.session_code,
                "rater": change.rater,
                "purpose": change.purpose,
            }
            audit.record(
                "assignment.move", "assignment", assignment.id, before=change.before, after=after
            )
    db.session.flush()
    for change in changes:
        if change.kind == "create":
            assignment = Assignment(
                session_id=change.session_id,
                rater_id=user_ids[change.rater],
                purpose=change.purpose,
                status=status,
            )
            db.session.add(assignment)
            db.session.flush()
            after = {
                "session": change.session_code,
                "rater": change.rater,
                "purpose": change.purpose,
                "status": status,
            }
            audit.record("assignment.create", "assignment", assignment.id, after=after)
    put_setting(SETTING_FRACTION, allocation_plan.double_fraction)
    put_setting(SETTING_SEED, allocation_plan.seed)
    audit.record(
        "allocation.apply",
        "study",
        None,
        after={
            **allocation_plan.counts,
            "double_fraction": allocation_plan.double_fraction,
            "seed": allocation_plan.seed,
        },
    )
    db.session.flush()
    allocation_plan.applied = True
    return allocation_plan


def _assignments_by_id(ids: list[int]) -> dict[int, Assignment]:
    if not ids:
        return {}
    found = db.session.scalars(select(Assignment).where(Assignment.id.in_(ids)))
    return {a.id: a for a in found}


def _refuse_started(assignment: Assignment) -> None:
    """Started work is never moved or removed, even when it started after the preview."""
    if assignment.is_started or assignment.rating is not None:
        raise AllocationError(
            f"assignment {assignment.id} was started in the meantime; nothing changed"
        )


def allocate(
    double_fraction: float | None = None,
    seed: int | None = None,
    *,
    keep_unstarted: bool = False,
    dry_run: bool = False,
) -> AllocationPlan:
    """Plan and (unless ``dry_run``) write the allocation of the whole study."""
    allocation_plan = plan(double_fraction, seed, keep_unstarted=keep_unstarted)
    return allocation_plan if dry_run else apply_plan(allocation_plan)


def rating_started() -> bool:
    """Has any main or double-coding work started? (Then keeping unstarted work is the
    default of a new plan: a coordinator rarely wants raters' queues reshuffled mid-study.)"""
    started = select(Assignment.id).where(
        Assignment.purpose.in_(Purpose.DESIGN),
        Assignment.status.in_(AssignmentStatus.STARTED) | Assignment.rating.has(),
    )
    return db.session.scalar(started.limit(1)) is not None


def current_report(double_fraction: float | None = None) -> BalanceReport:
    """Balance of the main/double assignments as they are now."""
    fraction = double_fraction_or_stored(double_fraction)
    state = _load_state()
    raters = allocation_raters()
    outside = state.calibration_session_ids | _settled(state, set(raters)) | state.not_eligible
    rows = state.design_rows
    names = sorted(set(raters) | {r.rater for r in rows if r.session_id not in outside})
    return balance_report(_design_frame(state, outside), names, _assignments_frame(rows), fraction)
