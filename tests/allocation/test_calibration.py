"""Calibration round and gate (rater.allocation.calibration)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from rater.allocation import batches, changes, design, planning
from rater.allocation import calibration as calib
from rater.audit import AuditEvent
from rater.auth.models import User
from rater.demo import DemoSizes, catalogue_csv
from rater.extensions import db
from rater.rating.models import Assignment
from rater.study.catalogue import import_sessions
from rater.study.models import TherapySession

HASH = generate_password_hash("correct-horse-battery", method="pbkdf2:sha256:1")


# ----------------------------------------------------------------------------- pure draw


@st.composite
def candidate_frames(draw):
    n = draw(st.integers(1, 80))
    therapists = draw(st.integers(1, 4))
    patients = draw(st.integers(1, 12))
    rows = [
        (
            f"S{i:03d}",
            f"T{draw(st.integers(0, therapists - 1))}",
            draw(st.sampled_from(["I", "II"])),
            f"P{draw(st.integers(0, patients - 1))}",
        )
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=["session_id", "therapist", "phase", "patient"])


@settings(max_examples=80, deadline=None)
@given(frame=candidate_frames(), data=st.data())
def test_draw_is_stratified_by_therapist_then_phase(frame, data):
    n = data.draw(st.integers(0, len(frame)))
    seed = data.draw(st.integers(0, 2**16))
    chosen = design.stratified_draw(frame, n, seed)
    assert len(chosen) == len(set(chosen)) == n
    assert set(chosen) <= set(frame["session_id"])
    assert chosen == design.stratified_draw(frame, n, seed)  # same seed, same draw
    picked = frame[frame["session_id"].isin(chosen)]
    sizes = frame["therapist"].value_counts()
    got = picked["therapist"].value_counts()
    for therapist, size in sizes.items():
        share = n * size / len(frame)
        assert share - 1 < got.get(therapist, 0) < share + 1
    for therapist, sub in picked.groupby("therapist"):
        pool = frame[frame["therapist"] == therapist]
        k = len(sub)
        for phase, size in pool["phase"].value_counts().items():
            share = k * size / len(pool)
            assert share - 1 < (sub["phase"] == phase).sum() < share + 1


@settings(max_examples=60, deadline=None)
@given(frame=candidate_frames(), data=st.data())
def test_draw_spreads_patients_within_a_stratum(frame, data):
    n = data.draw(st.integers(0, len(frame)))
    chosen = design.stratified_draw(frame, n, data.draw(st.integers(0, 999)))
    picked = frame[frame["session_id"].isin(chosen)]
    for (therapist, phase), sub in picked.groupby(["therapist", "phase"]):
        pool = frame[(frame["therapist"] == therapist) & (frame["phase"] == phase)]
        assert sub["patient"].nunique() == min(len(sub), pool["patient"].nunique())


def test_draw_refuses_more_sessions_than_candidates():
    frame = pd.DataFrame(
        [("S1", "T1", "I", "P1")], columns=["session_id", "therapist", "phase", "patient"]
    )
    with pytest.raises(calib.CalibrationError, match="only 1"):
        design.stratified_draw(frame, 2, 0)


def test_other_seeds_give_other_draws():
    frame = pd.DataFrame(
        [(f"S{i:02d}", f"T{i % 3}", "I" if i % 2 else "II", f"P{i}") for i in range(60)],
        columns=["session_id", "therapist", "phase", "patient"],
    )
    draws = {tuple(design.stratified_draw(frame, 3, seed)) for seed in range(10)}
    assert len(draws) > 1


# ----------------------------------------------------------------------------- database


def build(app, raters: int = 3) -> None:
    import_sessions(
        catalogue_csv(DemoSizes(therapists=3, patients=4)),
        "sessions.csv",
        app.config["RATER_AUDIO_DIR"],
    )
    for i in range(1, raters + 1):
        db.session.add(User(username=f"r{i}", role="rater", active=True, password_hash=HASH))
    db.session.commit()


def calibration_rows() -> Counter:
    db.session.expire_all()
    return Counter(
        (a.session.code, a.status)
        for a in db.session.scalars(select(Assignment).where(Assignment.purpose == "calibration"))
    )


def finish_calibration(status: str = "submitted") -> None:
    for a in db.session.scalars(select(Assignment).where(Assignment.purpose == "calibration")):
        a.status = status
    db.session.commit()


def test_drawn_sessions_go_to_every_rater_and_may_be_excluded(app):
    build(app)
    codes = calib.draw_sessions(3, seed=4)
    assert len({c.split("-")[0] for c in codes}) >= 2
    change = calib.add_calibration_sessions(codes, exclude=True)
    db.session.commit()
    assert change.created == 9 and change.excluded == 3
    assert calibration_rows() == Counter({(c, "pending"): 3 for c in codes})
    for s in db.session.scalars(select(TherapySession).where(TherapySession.code.in_(codes))):
        assert (s.status, s.exclusion_reason) == ("excluded", calib.CALIBRATION_REASON)
    excluded = db.session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "session.exclude")
    )
    assert excluded == 3
    assert set(calib.draw_sessions(3, seed=4)).isdisjoint(codes)  # never drawn twice


def test_picked_sessions_replace_unstarted_main_work_and_stay_out_of_the_design(app):
    build(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    code = db.session.scalar(
        select(TherapySession.code).where(TherapySession.status == "eligible").limit(1)
    )
    change = calib.add_calibration_sessions([code])
    db.session.commit()
    assert change.removed >= 1 and change.excluded == 0
    p = planning.plan(0.4, 1)
    assert code not in set(p.design.assignments["session_id"])
    assert p.outside["calibration"] == 1


def test_sessions_with_started_main_work_are_refused(app):
    build(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    a = db.session.scalar(select(Assignment).where(Assignment.purpose == "main").limit(1))
    a.status = "submitted"
    db.session.commit()
    with pytest.raises(calib.CalibrationError, match="already started"):
        calib.add_calibration_sessions([a.session.code])
    with pytest.raises(calib.CalibrationError, match="unknown"):
        calib.add_calibration_sessions(["NOPE"])
    candidates = calib.draw_candidates()
    assert a.session.code not in set(candidates["session_id"])
    assert set(calib.draw_sessions(len(candidates), seed=0)) == set(candidates["session_id"])


def test_a_rater_who_joins_gets_the_calibration_sessions(app):
    build(app, raters=2)
    calib.add_calibration_sessions(calib.draw_sessions(2, seed=1))
    db.session.add(User(username="r9", role="rater", active=True, password_hash=HASH))
    db.session.commit()
    assert calib.ensure_calibration_assignments() == 2
    assert calib.ensure_calibration_assignments() == 0


@pytest.fixture
def open_gate(app, monkeypatch) -> None:
    """r1-r3 have finished a reliable calibration round of 2 sessions; the gate (on) is open and
    the main work allocated."""
    _fake_reliability(monkeypatch, 0.9)
    build(app)
    calib.add_calibration_sessions(calib.draw_sessions(2, seed=1))
    calib.set_gate(True, 0.7)
    finish_calibration()
    planning.allocate(0.4, 1)
    db.session.commit()


@pytest.mark.usefixtures("open_gate")
def test_a_rater_who_joins_while_the_gate_is_on_calibrates_before_main_work():
    assert calib.gate_status().passes
    kept_before = main_work("r1", "r2", "r3")
    assert set(kept_before.values()) == {"pending"}
    db.session.add(User(username="r4", role="rater", active=True, password_hash=HASH))
    db.session.commit()

    preview = changes.rater_joins("r4", dry_run=True)
    db.session.rollback()
    assert preview.hold_new
    assert "r4 rates 2 calibration sessions first" in preview.to_text()
    changes.rater_joins("r4")
    db.session.commit()

    assert main_work("r4") and set(main_work("r4").values()) == {"held"}  # moved in, too
    assert sorted(calibration_work("r4").values()) == ["pending", "pending"]
    assert not calib.gate_status().passes  # the round is incomplete until r4 has rated
    others = main_work("r1", "r2", "r3")
    assert all(others[key] == "pending" for key in others.keys() & kept_before.keys())
    held = sum(status == "held" for status in main_work("r1", "r2", "r3", "r4").values())
    finish_calibration()
    assert calib.gate_status().passes
    assert batches.release_held() == held
    db.session.commit()
    assert set(main_work("r4").values()) == {"pending"}


@pytest.mark.usefixtures("open_gate")
def test_a_rater_who_has_calibrated_joins_without_holding_work():
    changes.rater_leaves("r3")
    db.session.commit()
    preview = changes.rater_joins("r3", dry_run=True)  # back, with the round already rated
    assert not preview.hold_new and "calibration sessions first" not in preview.to_text()


def main_work(*names: str) -> dict[tuple[str, str], str]:
    """Status of each main/double assignment of these raters, by (session code, rater)."""
    return _work_of(names, Assignment.purpose != "calibration")


def calibration_work(*names: str) -> dict[tuple[str, str], str]:
    return _work_of(names, Assignment.purpose == "calibration")


def _work_of(names, purpose) -> dict[tuple[str, str], str]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(Assignment)
        .join(User, Assignment.rater_id == User.id)
        .where(User.username.in_(names), purpose)
    )
    return {(a.session.code, a.rater.username): a.status for a in rows}


def _fake_reliability(monkeypatch, value, seen: list | None = None) -> None:
    """The calibration coefficient replaced by a fixed value (the gate's logic on its own)."""

    def calibration_icc(frame: pd.DataFrame):
        if seen is not None:
            seen.append(frame)
        return value, "fake coefficient"

    monkeypatch.setattr(calib, "calibration_icc", calibration_icc)


def test_the_gate_opens_when_the_round_is_complete_and_reliable(app, monkeypatch):
    build(app)
    calib.add_calibration_sessions(calib.draw_sessions(2, seed=1))
    held = calib.set_gate(True, 0.9)
    planning.allocate(0.4, 1)
    db.session.commit()
    status = calib.gate_status()
    assert held == 0 and status.held > 0
    assert status.reliability is None and "not yet available" in " ".join(status.lines())
    assert not status.passes
    with pytest.raises(calib.CalibrationError, match="closed"):
        batches.release_held()
    finish_calibration()
    status = calib.gate_status()
    assert status.complete and not status.passes  # no scores were recorded: no reliability
    _fake_reliability(monkeypatch, 0.95)
    status = calib.gate_status()
    assert status.complete and status.passes
    n = batches.release_held()
    db.session.commit()
    assert n == status.held
    assert db.session.scalar(select(func.count()).where(Assignment.status == "held")) == 0
    released = db.session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "assignment.release")
    )
    assert released == n


def test_with_reliability_the_gate_waits_for_the_threshold(app, monkeypatch):
    seen: list[pd.DataFrame] = []
    _fake_reliability(monkeypatch, 0.6, seen)
    build(app)
    calib.add_calibration_sessions(calib.draw_sessions(2, seed=1))
    calib.set_gate(True, 0.7)
    planning.allocate(0.4, 1)
    db.session.commit()
    finish_calibration()
    status = calib.gate_status()
    assert status.complete and status.reliability == 0.6 and not status.passes
    assert any("0.600" in line for line in status.lines())
    assert all(set(f["purpose"]) <= {"calibration"} for f in seen)
    with pytest.raises(calib.CalibrationError):
        batches.release_held()
    _fake_reliability(monkeypatch, 0.8)
    assert calib.gate_status().passes
    assert batches.release_held() > 0


def test_reliability_none_keeps_the_gate_closed(app, monkeypatch):
    _fake_reliability(monkeypatch, None)
    build(app)
    calib.add_calibration_sessions(calib.draw_sessions(1, seed=1))
    calib.set_gate(True, 0.5)
    finish_calibration()
    status = calib.gate_status()
    assert status.complete and not status.passes
    assert "not yet available (fake coefficient)" in " ".join(status.lines())


def test_enabling_a_closed_gate_holds_pending_main_work(app):
    build(app)
    planning.allocate(0.4, 1)
    calib.add_calibration_sessions(calib.draw_sessions(1, seed=3))
    db.session.commit()
    pending = db.session.scalar(
        select(func.count()).where(
            Assignment.status == "pending", Assignment.purpose != "calibration"
        )
    )
    held = calib.set_gate(True, 0.5)
    db.session.commit()
    assert held == pending > 0
    assert calib.gate_status().held == pending
    with pytest.raises(calib.CalibrationError, match="between"):
        calib.set_gate(True, 1.5)


def test_a_disabled_gate_is_open(app):
    build(app)
    status = calib.gate_status()
    assert not status.enabled and status.passes and not status.complete
    assert not calib.hold_new_main()
