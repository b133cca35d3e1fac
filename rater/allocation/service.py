"""Persisting allocation designs and changing them mid-study (flush only, never commit).

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
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, exists, func, select

from rater import audit
from rater.allocation.design import BalanceReport, Design, balance_report, design
from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment, Rating
from rater.study.models import Patient, StudySetting, Therapist, TherapySession
from rater.timeutil import utcnow

DESIGN_PURPOSES = ("main", "double")
STARTED = ("in_progress", "submitted", "cannot_rate")
SETTING_FRACTION = "allocation.double_fraction"
SETTING_SEED = "allocation.seed"
SETTING_EXCLUDED_RATERS = "allocation.excluded_raters"
DEFAULT_FRACTION = 0.4
DEFAULT_SEED = 0


class AllocationError(ValueError):
    """A change the allocation refuses (the message says why)."""


# ----------------------------------------------------------------------------- settings


def get_setting(key: str, default: Any = None) -> Any:
    row = db.session.get(StudySetting, key)
    return default if row is None else row.value


def put_setting(key: str, value: Any) -> None:
    """Set a study setting; audited when the value changes."""
    row = db.session.get(StudySetting, key)
    before = None if row is None else row.value
    if row is not None and before == value:
        return
    if row is None:
        db.session.add(StudySetting(key=key, value=value))
    else:
        row.value = value
    audit.record("setting.change", "study_setting", key, before=before, after=value)


def excluded_raters() -> list[str]:
    """Raters the coordinator removed from allocation (their account may stay active)."""
    return list(get_setting(SETTING_EXCLUDED_RATERS, []))


def allocation_raters() -> list[str]:
    """Active raters that take part in allocation, by username."""
    names = db.session.scalars(
        select(User.username)
        .where(User.role == "rater", User.active.is_(True))
        .order_by(User.username)
    )
    out = set(excluded_raters())
    return [n for n in names if n not in out]


# ----------------------------------------------------------------------------- study state


@dataclass
class _Row:
    id: int
    session_pk: int
    session: str
    rater_id: int
    rater: str
    purpose: str
    status: str
    has_rating: bool

    @property
    def started(self) -> bool:
        return self.status in STARTED or self.has_rating

    def as_dict(self) -> dict[str, Any]:
        return {"session": self.session, "rater": self.rater, "purpose": self.purpose}


@dataclass
class _State:
    sessions: pd.DataFrame  # id, session_id (code), therapist, patient, phase, status
    rows: list[_Row]
    rater_ids: dict[str, int]

    @property
    def calibration_pks(self) -> set[int]:
        return {r.session_pk for r in self.rows if r.purpose == "calibration"}


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
        db.session.execute(select(User.username, User.id).where(User.role == "rater")).all()
    )
    return _State(sessions, rows, rater_ids)


def _design_frame(state: _State, raters: list[str], outside: set[int]) -> pd.DataFrame:
    """Sessions as the design sees them: sessions outside the pool count as excluded."""
    frame = state.sessions.copy()
    frame.loc[frame["id"].isin(outside), "status"] = "excluded"
    return frame


def _settled(state: _State, raters: set[str]) -> set[int]:
    """Sessions where a rater outside allocation has started main/double work."""
    return {
        r.session_pk
        for r in state.rows
        if r.purpose in DESIGN_PURPOSES and r.started and r.rater not in raters
    }


def _frame(rows: list[_Row]) -> pd.DataFrame:
    return pd.DataFrame(
        [(r.session, r.rater, r.purpose) for r in rows],
        columns=["session_id", "rater", "purpose"],
    )


# ----------------------------------------------------------------------------- plans


@dataclass
class Change:
    """One row of the difference between the database and a design."""

    kind: str  # create | move | remove
    session_pk: int
    session: str
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

    @property
    def after(self) -> BalanceReport:
        return self.design.report

    @property
    def counts(self) -> dict[str, int]:
        out = {"created": 0, "moved": 0, "removed": 0, "kept": self.kept}
        for c in self.changes:
            out[{"create": "created", "move": "moved", "remove": "removed"}[c.kind]] += 1
        return out

    @property
    def digest(self) -> str:
        """Fingerprint of the planned changes: a commit refuses a plan that differs from the
        preview the coordinator saw (the study changed in between)."""
        text = "|".join(
            f"{c.kind}:{c.assignment_id}:{c.session}:{c.rater}:{c.purpose}" for c in self.changes
        )
        return hashlib.sha256(f"{self.double_fraction}:{self.seed}:{text}".encode()).hexdigest()

    def summary(self) -> str:
        c = self.counts
        verb = "Wrote" if self.applied else "Would write"
        return (
            f"{verb}: {c['created']} created, {c['moved']} moved, {c['removed']} removed,"
            f" {c['kept']} kept (started work is never touched)."
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
    allocation; ``calibration`` names sessions about to become calibration sessions.
    """
    f = float(
        get_setting(SETTING_FRACTION, DEFAULT_FRACTION)
        if double_fraction is None
        else double_fraction
    )
    s = int(get_setting(SETTING_SEED, DEFAULT_SEED) if seed is None else seed)
    raters = allocation_raters() if raters is None else sorted(raters)
    if len(raters) < 2:
        raise AllocationError("allocation needs at least two active raters")
    state = _load_state()
    in_alloc = set(raters)
    by_code = dict(zip(state.sessions["session_id"], state.sessions["id"], strict=True))
    calib = state.calibration_pks | {by_code[c] for c in calibration if c in by_code}
    settled = _settled(state, in_alloc) - calib
    excluded = set(state.sessions.loc[state.sessions["status"] != "eligible", "id"])
    outside = calib | settled | excluded
    frame = _design_frame(state, raters, outside)
    design_rows = [r for r in state.rows if r.purpose in DESIGN_PURPOSES]
    fixed = [
        r
        for r in design_rows
        if r.session_pk not in outside and r.rater in in_alloc and (r.started or keep_unstarted)
    ]
    before_raters = sorted(in_alloc | {r.rater for r in design_rows if r.session_pk not in outside})
    before = balance_report(frame, before_raters, _frame(design_rows), f)
    try:
        result = design(frame, raters, double_fraction=f, seed=s, fixed=_frame(fixed))
    except ValueError as exc:
        raise AllocationError(f"the design cannot be built: {exc}") from exc
    changes, kept = _diff(state, result, design_rows, outside, settled, in_alloc)
    from rater.allocation.calibration import hold_new_main

    notes = []
    if settled:
        notes.append(
            f"{len(settled)} session(s) stay with raters who left allocation but started them."
        )
    return AllocationPlan(
        design=result,
        before=before,
        double_fraction=f,
        seed=s,
        raters=raters,
        changes=changes,
        outside={
            "excluded": len(excluded - calib),
            "calibration": len(calib),
            "settled": len(settled),
        },
        hold_new=hold_new_main(),
        kept=kept,
        notes=notes,
    )


def _managed(row: _Row, settled: set[int], in_alloc: set[str]) -> bool:
    """May this row be moved or removed by a plan?"""
    if row.started:
        return False
    return not (row.session_pk in settled and row.rater in in_alloc)


def _diff(
    state: _State,
    result: Design,
    design_rows: list[_Row],
    outside: set[int],
    settled: set[int],
    in_alloc: set[str],
) -> tuple[list[Change], int]:
    """Creates, moves and removes that turn the database into the design."""
    pk_of = dict(zip(state.sessions["session_id"], state.sessions["id"], strict=True))
    existing: dict[int, list[_Row]] = defaultdict(list)
    for r in design_rows:
        existing[r.session_pk].append(r)
    target: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for sid, rater, purpose in result.assignments[["session_id", "rater", "purpose"]].itertuples(
        index=False
    ):
        target[int(pk_of[sid])].append((str(rater), str(purpose)))
    changes: list[Change] = []
    kept = 0
    for pk in sorted(set(existing) | set(target)):
        have = list(existing.get(pk, []))
        want = list(target.get(pk, []))
        for r in list(have):
            if (r.rater, r.purpose) in want:
                want.remove((r.rater, r.purpose))
                have.remove(r)
                kept += 1
        movable = [r for r in have if _managed(r, settled, in_alloc)]
        kept += len(have) - len(movable)
        # same rater, new purpose first; then any free row to a new rater
        movable.sort(key=lambda r: r.rater not in {w[0] for w in want})
        for r in movable:
            if want:
                same = [w for w in want if w[0] == r.rater]
                rater, purpose = (same or want)[0]
                want.remove((rater, purpose))
                changes.append(
                    Change("move", pk, r.session, rater, purpose, r.id, before=r.as_dict())
                )
            else:
                changes.append(
                    Change("remove", pk, r.session, r.rater, r.purpose, r.id, before=r.as_dict())
                )
        session = have[0].session if have else _code_of(state, pk)
        changes += [Change("create", pk, session, rater, purpose) for rater, purpose in want]
    return changes, kept


def _code_of(state: _State, pk: int) -> str:
    return str(state.sessions.loc[state.sessions["id"] == pk, "session_id"].iloc[0])


def apply_plan(p: AllocationPlan) -> AllocationPlan:
    """Write the plan's changes (removes, then moves, then creates) and flush; audited."""
    ids = dict(db.session.execute(select(User.username, User.id)).all())
    status = "held" if p.hold_new else "pending"
    by_id = _assignments_by_id([c.assignment_id for c in p.changes if c.assignment_id])
    for c in p.changes:
        if c.kind == "remove":
            a = by_id[c.assignment_id]
            _refuse_started(a)
            audit.record("assignment.remove", "assignment", a.id, before=c.before)
            db.session.delete(a)
    db.session.flush()
    for c in p.changes:
        if c.kind == "move":
            a = by_id[c.assignment_id]
            _refuse_started(a)
            a.rater_id, a.purpose = ids[c.rater], c.purpose
            after = {"session": c.session, "rater": c.rater, "purpose": c.purpose}
            audit.record("assignment.move", "assignment", a.id, before=c.before, after=after)
    db.session.flush()
    for c in p.changes:
        if c.kind == "create":
            a = Assignment(
                session_id=c.session_pk, rater_id=ids[c.rater], purpose=c.purpose, status=status
            )
            db.session.add(a)
            db.session.flush()
            after = {"session": c.session, "rater": c.rater, "purpose": c.purpose, "status": status}
            audit.record("assignment.create", "assignment", a.id, after=after)
    put_setting(SETTING_FRACTION, p.double_fraction)
    put_setting(SETTING_SEED, p.seed)
    audit.record(
        "allocation.apply",
        "study",
        None,
        after={**p.counts, "double_fraction": p.double_fraction, "seed": p.seed},
    )
    db.session.flush()
    p.applied = True
    return p


def _assignments_by_id(ids: list[int]) -> dict[int, Assignment]:
    if not ids:
        return {}
    found = db.session.scalars(select(Assignment).where(Assignment.id.in_(ids)))
    return {a.id: a for a in found}


def _refuse_started(a: Assignment) -> None:
    if a.is_started or a.rating is not None:
        raise AllocationError(f"assignment {a.id} was started in the meantime; nothing changed")


def allocate(
    double_fraction: float | None = None,
    seed: int | None = None,
    *,
    keep_unstarted: bool = False,
    dry_run: bool = False,
) -> AllocationPlan:
    """Plan and (unless ``dry_run``) write the allocation of the whole study."""
    p = plan(double_fraction, seed, keep_unstarted=keep_unstarted)
    return p if dry_run else apply_plan(p)


# ----------------------------------------------------------------------------- mid-study


def rater_joins(username: str, *, dry_run: bool = False) -> AllocationPlan:
    """Take a rater (back) into allocation: re-plan unstarted work so they get a fair share,
    and give them the calibration sessions."""
    user = _rater(username)
    raters = sorted(set(allocation_raters()) | {user.username})
    p = plan(raters=raters)
    if dry_run:
        return p
    if not user.active:
        from rater.auth.service import set_active

        set_active(user.username, True)
    put_setting(SETTING_EXCLUDED_RATERS, [n for n in excluded_raters() if n != user.username])
    from rater.allocation.calibration import ensure_calibration_assignments

    ensure_calibration_assignments()
    return apply_plan(p)


def rater_leaves(
    username: str, *, deactivate: bool = False, dry_run: bool = False
) -> AllocationPlan:
    """Take a rater out of allocation (optionally deactivating the account): their unstarted
    main/double work goes to the others; everyone else's unstarted work stays where it is."""
    user = _rater(username)
    raters = [n for n in allocation_raters() if n != user.username]
    p = plan(raters=raters, keep_unstarted=True)
    if dry_run:
        return p
    if deactivate:
        from rater.auth.service import set_active

        set_active(user.username, False)
    elif user.username not in excluded_raters():
        put_setting(SETTING_EXCLUDED_RATERS, sorted([*excluded_raters(), user.username]))
    return apply_plan(p)


def rater_names() -> list[str]:
    """Every rater account, active or not."""
    return list(
        db.session.scalars(
            select(User.username).where(User.role == "rater").order_by(User.username)
        )
    )


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


def current_report(double_fraction: float | None = None) -> BalanceReport:
    """Balance of the main/double assignments as they are now."""
    f = float(
        get_setting(SETTING_FRACTION, DEFAULT_FRACTION)
        if double_fraction is None
        else double_fraction
    )
    state = _load_state()
    raters = allocation_raters()
    outside = state.calibration_pks | _settled(state, set(raters))
    outside |= set(state.sessions.loc[state.sessions["status"] != "eligible", "id"])
    rows = [r for r in state.rows if r.purpose in DESIGN_PURPOSES]
    names = sorted(set(raters) | {r.rater for r in rows if r.session_pk not in outside})
    return balance_report(_design_frame(state, raters, outside), names, _frame(rows), f)


def move_assignment(assignment_id: int, to_username: str) -> MoveResult:
    """Give one unstarted main/double assignment to another rater by hand (audited)."""
    a = db.session.get(Assignment, assignment_id)
    if a is None:
        raise AllocationError(f"no assignment {assignment_id}")
    if a.purpose not in DESIGN_PURPOSES:
        raise AllocationError("calibration assignments belong to every rater and are not moved")
    if a.is_started or a.rating is not None:
        raise AllocationError("this assignment was started; started work is never moved")
    target = _rater(to_username)
    if not target.active:
        raise AllocationError(f"{target.username} is not active")
    if target.id == a.rater_id:
        raise AllocationError(f"{target.username} already has this assignment")
    taken = db.session.scalar(
        select(Assignment.id).where(
            Assignment.session_id == a.session_id, Assignment.rater_id == target.id
        )
    )
    if taken is not None:
        raise AllocationError(f"{target.username} already has session {a.session.code}")
    before_report = current_report()
    before = {"session": a.session.code, "rater": a.rater.username, "purpose": a.purpose}
    a.rater_id = target.id
    db.session.flush()
    db.session.refresh(a)
    after = {**before, "rater": target.username, "by_hand": True}
    audit.record("assignment.move", "assignment", a.id, before=before, after=after)
    db.session.flush()
    return MoveResult(a, before_report, current_report())


def move_targets(a: Assignment) -> list[str]:
    """Active raters who could take this assignment (none of them has the session)."""
    busy = select(Assignment.rater_id).where(Assignment.session_id == a.session_id)
    return list(
        db.session.scalars(
            select(User.username)
            .where(User.role == "rater", User.active.is_(True), User.id.not_in(busy))
            .order_by(User.username)
        )
    )


# ----------------------------------------------------------------------------- progress


@dataclass
class RaterProgress:
    rater: str
    active: bool
    in_allocation: bool
    counts: dict[str, int]  # status -> main/double assignments
    calibration: dict[str, int]

    @property
    def assigned(self) -> int:
        return sum(self.counts.values())

    @property
    def in_progress(self) -> int:
        return self.counts.get("in_progress", 0)

    @property
    def submitted(self) -> int:
        return self.counts.get("submitted", 0)

    @property
    def cannot_rate(self) -> int:
        return self.counts.get("cannot_rate", 0)

    @property
    def waiting(self) -> int:
        return self.counts.get("pending", 0) + self.counts.get("held", 0)


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
        return self.counts.get("submitted", 0) + self.counts.get("cannot_rate", 0)


@dataclass
class StaleDraft:
    session: str
    rater: str
    purpose: str
    updated_at: Any
    days: int


@dataclass
class Progress:
    raters: list[RaterProgress]
    cells: list[CellProgress]
    stale: list[StaleDraft]
    stale_days: int


def progress(stale_days: int = 14) -> Progress:
    """Per rater and per therapist x phase cell assignment counts by status; stale drafts."""
    out = excluded_raters()
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    purpose_kind = Assignment.purpose == "calibration"
    for name, calib, status, n in db.session.execute(
        select(User.username, purpose_kind, Assignment.status, func.count(Assignment.id))
        .join(User, Assignment.rater_id == User.id)
        .group_by(User.username, purpose_kind, Assignment.status)
    ):
        counts[name]["calibration" if calib else "design"][status] = n
    users = db.session.execute(
        select(User.username, User.active).where(User.role == "rater").order_by(User.username)
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
    return Progress(raters, _cells(), _stale(stale_days), stale_days)


def _cells() -> list[CellProgress]:
    sizes = db.session.execute(
        select(Therapist.code, TherapySession.phase, func.count(TherapySession.id))
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .where(TherapySession.status == "eligible")
        .group_by(Therapist.code, TherapySession.phase)
    ).all()
    cells = {(t, p): CellProgress(t, p, n, {}) for t, p, n in sizes}
    for t, p, status, n in db.session.execute(
        select(Therapist.code, TherapySession.phase, Assignment.status, func.count(Assignment.id))
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .where(Assignment.purpose.in_(DESIGN_PURPOSES))
        .group_by(Therapist.code, TherapySession.phase, Assignment.status)
    ):
        cells.setdefault((t, p), CellProgress(t, p, 0, {})).counts[status] = n
    return [cells[k] for k in sorted(cells)]


def _stale(days: int) -> list[StaleDraft]:
    now = utcnow()
    rows = db.session.execute(
        select(TherapySession.code, User.username, Assignment.purpose, Rating.updated_at)
        .select_from(Rating)
        .join(Assignment, Rating.assignment_id == Assignment.id)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(User, Assignment.rater_id == User.id)
        .where(Rating.status == "draft", Rating.updated_at < now - timedelta(days=days))
        .order_by(Rating.updated_at)
    ).all()
    return [StaleDraft(s, r, p, at, (now - at).days) for s, r, p, at in rows]


# ----------------------------------------------------------------------------- sessions list

SESSION_STATES = ("unassigned", "held", "pending", "in_progress", "submitted", "cannot_rate")


@dataclass(frozen=True)
class SessionFilters:
    therapist: str = ""
    patient: str = ""
    phase: str = ""
    rater: str = ""
    state: str = ""


@dataclass
class SessionRow:
    code: str
    patient: str
    therapist: str
    number: int
    phase: str
    status: str
    exclusion_reason: str | None
    assignments: list[tuple[int, str, str, str]]  # id, rater, purpose, status


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


def _session_conditions(f: SessionFilters) -> list[Any]:
    cond: list[Any] = []
    if f.therapist:
        cond.append(Therapist.code == f.therapist)
    if f.patient:
        cond.append(Patient.code == f.patient)
    if f.phase:
        cond.append(TherapySession.phase == f.phase)
    match = [Assignment.session_id == TherapySession.id]
    if f.rater:
        match.append(
            Assignment.rater_id == select(User.id).where(User.username == f.rater).scalar_subquery()
        )
    if f.state == "unassigned":
        cond.append(~exists().where(and_(*match)))
    elif f.state in SESSION_STATES:
        cond.append(exists().where(and_(*match, Assignment.status == f.state)))
    elif f.rater:
        cond.append(exists().where(and_(*match)))
    return cond


def session_page(filters: SessionFilters, page: int = 1, per_page: int = 50) -> SessionPage:
    """One page of sessions with their assignments: a count and one row query (no N+1)."""
    base = (
        select(TherapySession.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .where(*_session_conditions(filters))
    )
    total = db.session.scalar(select(func.count()).select_from(base.subquery())) or 0
    page = max(1, min(page, max(1, -(-total // per_page))))
    page_ids = base.order_by(TherapySession.code).limit(per_page).offset((page - 1) * per_page)
    result = db.session.execute(
        select(
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
        )
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .outerjoin(Assignment, Assignment.session_id == TherapySession.id)
        .outerjoin(User, Assignment.rater_id == User.id)
        .where(TherapySession.id.in_(page_ids.scalar_subquery()))
        .order_by(TherapySession.code, Assignment.purpose, User.username)
    )
    rows: dict[str, SessionRow] = {}
    for code, pat, th, num, phase, status, reason, aid, rater, purpose, astatus in result:
        row = rows.setdefault(code, SessionRow(code, pat, th, num, phase, status, reason, []))
        if aid is not None:
            row.assignments.append((aid, rater, purpose, astatus))
    return SessionPage(list(rows.values()), total, page, per_page, _filter_options())


def _filter_options() -> dict[str, list[str]]:
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
                select(User.username).where(User.role == "rater").order_by(User.username)
            )
        ),
        "state": list(SESSION_STATES),
    }
