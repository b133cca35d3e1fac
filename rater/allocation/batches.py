"""Releasing held work in batches, in a seeded order per rater (flush only, never commit).

Held main/double assignments (``AssignmentStatus.HELD``) wait for a release. A release opens
a batch: per rater the first N held sessions of the seeded order (or all), optionally only
one phase or one therapist. Each released assignment gets the batch number (1, 2, ...) and
its place in the rater's queue (``queue_order``, continuing after what the rater already
has). Later batches stay held. The calibration gate still rules: while it is enabled and
closed nothing is released.

With the setting ``allocation.release_in_batches`` new main work starts held even when the
gate is off or open, so the coordinator releases it batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from rater import audit
from rater.allocation import calibration as calib
from rater.allocation.errors import CalibrationError
from rater.allocation.ordering import Item, QueueOrder, pick_batch
from rater.allocation.progress import StatusTally
from rater.allocation.settings import SETTING_SEED, get_setting
from rater.auth.models import User
from rater.extensions import db
from rater.formatting import plural
from rater.rating.models import Assignment
from rater.states import AssignmentStatus, Purpose
from rater.study.models import Patient, Therapist, TherapySession


@dataclass
class BatchRelease:
    """What one release opened: its number, per rater the session codes in queue order."""

    batch: int | None
    per_rater: dict[str, list[str]] = field(default_factory=dict)
    still_held: int = 0

    @property
    def released(self) -> int:
        return sum(len(codes) for codes in self.per_rater.values())

    def plain_preview(self) -> str:
        """The release before it is done, in plain words."""
        if not self.released:
            return "No held work matches: nothing would be released."
        raters = ", ".join(f"{r} {len(c)}" for r, c in self.per_rater.items())
        return (
            f"Batch {self.batch} will release {plural(self.released, 'assignment')} ({raters});"
            f" {plural(self.still_held, 'assignment')} stay held for later batches."
            " No started work is touched."
        )

    def summary(self) -> str:
        if not self.released:
            return f"Nothing released; {plural(self.still_held, 'assignment')} still held."
        raters = ", ".join(f"{r} {len(c)}" for r, c in self.per_rater.items())
        return (
            f"Batch {self.batch}: {plural(self.released, 'assignment')} released ({raters});"
            f" {plural(self.still_held, 'assignment')} still held for later batches."
        )


def held_items() -> list[Item]:
    """Every held main/double assignment with what ordering needs (one query)."""
    rows = db.session.execute(
        select(
            Assignment.id,
            User.username,
            Patient.code,
            Therapist.code,
            TherapySession.phase,
            TherapySession.session_number,
            TherapySession.code,
        )
        .join(User, Assignment.rater_id == User.id)
        .join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .where(Assignment.status == AssignmentStatus.HELD, Assignment.purpose.in_(Purpose.DESIGN))
    )
    return [Item(*row) for row in rows]


def preview(
    *,
    per_rater: int | None = None,
    phase: str | None = None,
    therapist: str | None = None,
    order: QueueOrder = QueueOrder.SHUFFLED,
    seed: int | None = None,
) -> tuple[BatchRelease, dict[str, list[Item]]]:
    """What ``release`` would open, writing nothing; refused while the gate is closed."""
    if per_rater is not None and per_rater < 1:
        raise CalibrationError("a batch needs at least one session per rater")
    status = calib.gate_status()
    if not status.passes:
        raise CalibrationError("the calibration gate is closed: " + " ".join(status.lines()))
    seed = int(get_setting(SETTING_SEED, 0)) if seed is None else seed
    items = held_items()
    chosen = pick_batch(items, order, seed, per_rater=per_rater, phase=phase, therapist=therapist)
    number = None
    if chosen:
        number = (db.session.scalar(select(func.max(Assignment.batch))) or 0) + 1
    result = BatchRelease(number, {r: [i.code for i in its] for r, its in chosen.items()})
    result.still_held = len(items) - result.released
    return result, chosen


def release(
    *,
    per_rater: int | None = None,
    phase: str | None = None,
    therapist: str | None = None,
    order: QueueOrder = QueueOrder.SHUFFLED,
    seed: int | None = None,
) -> BatchRelease:
    """Open the next batch of held work; refused while the calibration gate is closed."""
    result, chosen = preview(
        per_rater=per_rater, phase=phase, therapist=therapist, order=order, seed=seed
    )
    if result.batch is None:
        return result
    _open(chosen, result.batch, order)
    audit.record(
        "allocation.release",
        "study",
        None,
        after={
            "batch": result.batch,
            "released": result.released,
            "per_rater": per_rater,
            "phase": phase,
            "therapist": therapist,
            "order": str(order),
        },
    )
    db.session.flush()
    return result


def _open(chosen: dict[str, list[Item]], number: int, order: QueueOrder) -> None:
    """Make the chosen assignments pending, numbered after each rater's existing queue."""
    ids = [i.key for its in chosen.values() for i in its]
    by_id = {a.id: a for a in db.session.scalars(select(Assignment).where(Assignment.id.in_(ids)))}
    last = dict(
        db.session.execute(
            select(User.username, func.max(Assignment.queue_order))
            .join(User, Assignment.rater_id == User.id)
            .group_by(User.username)
        ).all()
    )
    for rater, items in chosen.items():
        start = (last.get(rater) or 0) + 1
        for place, item in enumerate(items, start=start):
            a = by_id[item.key]
            a.status, a.batch, a.queue_order = AssignmentStatus.PENDING, number, place
            audit.record(
                "assignment.release",
                "assignment",
                a.id,
                before={"status": AssignmentStatus.HELD},
                after={"status": AssignmentStatus.PENDING, "batch": number, "order": str(order)},
            )


@dataclass
class BatchProgress(StatusTally):
    batch: int | None  # None: held, in no batch yet; 0: open work released without a batch
    counts: dict[str, int]

    @property
    def label(self) -> str:
        if self.batch is None:
            return "held for later batches"
        return "released without a batch" if self.batch == 0 else f"batch {self.batch}"


def batch_progress() -> list[BatchProgress]:
    """Main/double assignments per batch by status (one grouped query), held work last;
    empty while no batch was ever released (one row would only repeat the study total)."""
    out: dict[int | None, BatchProgress] = {}
    for number, status, n in db.session.execute(
        select(Assignment.batch, Assignment.status, func.count(Assignment.id))
        .where(Assignment.purpose.in_(Purpose.DESIGN))
        .group_by(Assignment.batch, Assignment.status)
    ):
        key = None if status == AssignmentStatus.HELD else (number or 0)
        row = out.setdefault(key, BatchProgress(key, {}))
        row.counts[status] = row.counts.get(status, 0) + n
    if not any(key for key in out):
        return []
    return sorted(out.values(), key=lambda b: (b.batch is None, b.batch or 0))


def release_held() -> int:
    """All held main work becomes pending (one batch), once the gate is open (or off)."""
    return release().released
