"""Batches: the seeded queue order (pure) and releasing held work batch by batch."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from rater.allocation import batches, planning
from rater.allocation import calibration as calib
from rater.allocation.ordering import (
    Item,
    QueueOrder,
    adjacent_same_patient,
    interleave,
    pick_batch,
    session_order,
)
from rater.allocation.settings import put_setting
from rater.auth.models import User
from rater.demo import DemoSizes, catalogue_csv
from rater.extensions import db
from rater.rating import service
from rater.rating.models import Assignment
from rater.states import AssignmentStatus
from rater.study.catalogue import import_sessions

HASH = generate_password_hash("correct-horse-battery", method="pbkdf2:sha256:1")


@st.composite
def item_lists(draw):
    n = draw(st.integers(0, 40))
    patients = draw(st.integers(1, 8))
    return [
        Item(
            key=k,
            rater="r1",
            patient=f"P{draw(st.integers(0, patients - 1))}",
            therapist=f"T{draw(st.integers(0, 2))}",
            phase=draw(st.sampled_from(["I", "II"])),
            number=draw(st.integers(1, 9)),
            code=f"S{k:03d}",
        )
        for k in range(n)
    ]


def _fewest_neighbours(items: list[Item]) -> int:
    """Independent bound: the least number of same-patient neighbours any order can have."""
    if not items:
        return 0
    top = max(Counter(i.patient for i in items).values())
    return max(0, top - 1 - (len(items) - top))


@settings(max_examples=150, deadline=None)
@given(items=item_lists(), seed=st.integers(0, 2**20))
def test_interleave_is_a_seeded_permutation_with_fewest_same_patient_neighbours(items, seed):
    out = interleave(items, seed)
    assert sorted(i.key for i in out) == sorted(i.key for i in items)
    assert out == interleave(list(reversed(items)), seed)  # depends on the seed, not input order
    assert adjacent_same_patient(out) == _fewest_neighbours(items)


def test_different_seeds_give_different_orders_and_session_order_is_plain():
    items = [
        Item(k, "r1", f"P{k % 4}", f"T{k % 2}", "I", k // 4 + 1, f"S{k:02d}") for k in range(20)
    ]
    orders = {tuple(i.key for i in interleave(items, seed)) for seed in range(10)}
    assert len(orders) > 5
    plain = session_order(items)
    assert [(i.patient, i.number) for i in plain] == sorted((i.patient, i.number) for i in items)


def test_pick_batch_takes_n_per_rater_matching_the_filters():
    items = [
        Item(k, f"r{k % 3}", f"P{k % 5}", f"T{k % 2}", "I" if k % 4 < 2 else "II", k, f"S{k:02d}")
        for k in range(60)
    ]
    chosen = pick_batch(items, QueueOrder.SHUFFLED, 3, per_rater=5, phase="II", therapist="T1")
    assert set(chosen) == {"r0", "r1", "r2"}
    for rater, picked in chosen.items():
        assert len(picked) == 5
        assert all(i.rater == rater and i.phase == "II" and i.therapist == "T1" for i in picked)
        assert len({i.patient for i in picked}) >= 2
    everything = pick_batch(items, QueueOrder.SESSION, 3)
    assert sum(map(len, everything.values())) == 60


# ----------------------------------------------------------------------------- the service


def build(app, raters: int = 3) -> None:
    import_sessions(
        catalogue_csv(DemoSizes(therapists=3, patients=6)),
        "sessions.csv",
        app.config["RATER_AUDIO_DIR"],
    )
    for i in range(1, raters + 1):
        db.session.add(User(username=f"r{i}", role="rater", active=True, password_hash=HASH))
    db.session.commit()


def _statuses() -> Counter:
    db.session.expire_all()
    return Counter(db.session.scalars(select(Assignment.status)))


def test_release_in_batches_holds_new_work_and_opens_n_per_rater(app):
    build(app)
    put_setting(calib.RELEASE_IN_BATCHES, True)
    plan = planning.allocate(0.4, 1)
    db.session.commit()
    total = len(plan.design.assignments)
    assert _statuses() == Counter({AssignmentStatus.HELD: total})
    first = batches.release(per_rater=5)
    db.session.commit()
    assert first.batch == 1 and first.released == 15 and first.still_held == total - 15
    assert _statuses()[AssignmentStatus.PENDING] == 15
    for i in range(1, 4):
        user = db.session.scalar(select(User).where(User.username == f"r{i}"))
        queue = service.queue_for(user)
        codes = [a.session.code for a in queue.to_do]
        assert codes == first.per_rater[f"r{i}"]  # the queue shows the released order
        assert [a.queue_order for a in queue.to_do] == [1, 2, 3, 4, 5]
        assert (
            adjacent_same_patient(
                [Item(a.id, "", a.session.patient.code, "", "", 0, "") for a in queue.to_do]
            )
            == 0
        )
    second = batches.release(per_rater=2, phase="II")
    db.session.commit()
    assert second.batch == 2 and second.released == 6
    opened = db.session.scalars(select(Assignment).where(Assignment.batch == 2)).all()
    assert {a.session.phase for a in opened} == {"II"}
    assert sorted(a.queue_order for a in opened if a.rater.username == "r1") == [6, 7]
    rows = {b.label: (b.assigned, b.done) for b in batches.batch_progress()}
    assert rows == {
        "batch 1": (15, 0),
        "batch 2": (6, 0),
        "held for later batches": (total - 21, 0),
    }


def test_session_order_puts_each_raters_batch_in_session_order(app):
    build(app)
    put_setting(calib.RELEASE_IN_BATCHES, True)
    planning.allocate(0.4, 1)
    released = batches.release(per_rater=4, order=QueueOrder.SESSION, therapist="T1")
    db.session.commit()
    for rater, codes in released.per_rater.items():
        rows = db.session.scalars(
            select(Assignment).join(User).where(User.username == rater, Assignment.batch == 1)
        ).all()
        assert {a.session.therapist.code for a in rows} == {"T1"}
        expected = sorted(rows, key=lambda a: (a.session.patient.code, a.session.session_number))
        assert codes == [a.session.code for a in expected]


def test_release_is_refused_while_the_gate_is_closed(app):
    build(app)
    calib.add_calibration_sessions(calib.draw_sessions(2, seed=1))
    calib.set_gate(True, 0.9)
    planning.allocate(0.4, 1)
    db.session.commit()
    with pytest.raises(calib.CalibrationError, match="closed"):
        batches.release(per_rater=5)
    assert db.session.scalar(select(func.max(Assignment.batch))) is None


def test_cli_release_per_rater(app, runner):
    build(app)
    put_setting(calib.RELEASE_IN_BATCHES, True)
    planning.allocate(0.4, 1)
    db.session.commit()
    result = runner.invoke(
        args=["allocation", "release", "--per-rater", "3", "--order", "session", "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "Batch 1: 9 assignments released" in result.output
    assert _statuses()[AssignmentStatus.PENDING] == 9
    result = runner.invoke(args=["allocation", "batches"])
    assert "batch 1: 0 of 9 done" in result.output


def test_cli_gate_says_saving_does_not_release_held_work(app, runner):
    build(app)
    put_setting(calib.RELEASE_IN_BATCHES, True)
    planning.allocate(0.4, 1)
    db.session.commit()
    held = _statuses()[AssignmentStatus.HELD]
    result = runner.invoke(args=["allocation", "gate", "--disable"])
    assert result.exit_code == 0, result.output
    assert f"{held} main assignments held back." in result.output
    assert "Saving the gate does not release held work" in result.output
    assert _statuses()[AssignmentStatus.HELD] == held
