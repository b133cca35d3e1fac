"""Persisting designs and changing them mid-study (planning, changes, progress, sessions)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event, func, select
from werkzeug.security import generate_password_hash

from rater.allocation import calibration as calib
from rater.allocation import changes, errors, planning
from rater.allocation import progress as allocation_progress
from rater.allocation import sessions as session_list
from rater.allocation import settings as allocation_settings
from rater.audit import AuditEvent
from rater.auth.models import User
from rater.demo import DemoSizes, catalogue_csv
from rater.extensions import db
from rater.rating.models import Assignment, Rating
from rater.study.catalogue import import_sessions
from rater.study.models import TherapySession

PW = "correct-horse-battery"
CHEAP_HASH = generate_password_hash(PW, method="pbkdf2:sha256:1")  # scrypt is slow for tests


def add_rater(name: str, role: str = "rater") -> User:
    user = User(username=name, role=role, active=True, password_hash=CHEAP_HASH)
    db.session.add(user)
    db.session.flush()
    return user


def build_study(app, patients: int = 4, raters: int = 3) -> list[str]:
    """Demo-like catalogue (about 9 sessions per patient, 2 therapists) and raters r1..rK."""
    data = catalogue_csv(DemoSizes(therapists=2, patients=patients))
    import_sessions(data, "sessions.csv", app.config["RATER_AUDIO_DIR"])
    names = [f"r{i}" for i in range(1, raters + 1)]
    for name in names:
        add_rater(name)
    db.session.commit()
    return names


def rows() -> dict[int, tuple[str, str, str, str]]:
    """assignment id -> (session code, rater, purpose, status)."""
    db.session.expire_all()
    return {
        a.id: (a.session.code, a.rater.username, a.purpose, a.status)
        for a in db.session.scalars(select(Assignment))
    }


def audit_count(action: str) -> int:
    return db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == action))


def start(statuses: list[str], purpose: str = "main") -> list[int]:
    """Mark one unstarted assignment per rater (cycling) with the given statuses."""
    free = list(
        db.session.scalars(
            select(Assignment)
            .where(Assignment.purpose == purpose, Assignment.status == "pending")
            .order_by(Assignment.id)
        )
    )
    by_rater: dict[int, list[Assignment]] = {}
    for a in free:
        by_rater.setdefault(a.rater_id, []).append(a)
    queues = list(by_rater.values())
    picked = []
    for i, status in enumerate(statuses):
        a = queues[i % len(queues)].pop(0)
        a.status = status
        picked.append(a.id)
    db.session.commit()
    return picked


def eligible_codes() -> set[str]:
    return set(
        db.session.scalars(select(TherapySession.code).where(TherapySession.status == "eligible"))
    )


def test_allocate_writes_the_design_and_audits_every_row(app):
    build_study(app)
    p = planning.allocate(0.4, 7)
    db.session.commit()
    assert p.applied and p.after.deviations == []
    written = rows()
    assert len(written) == len(p.design.assignments)
    assert p.counts["created"] == len(written)
    assert audit_count("assignment.create") == len(written)
    mains = Counter(s for s, _, purpose, _ in written.values() if purpose == "main")
    assert set(mains) == eligible_codes() and set(mains.values()) == {1}
    assert allocation_settings.get_setting(allocation_settings.SETTING_SEED) == 7
    assert allocation_settings.get_setting(allocation_settings.SETTING_FRACTION) == 0.4


def test_dry_run_writes_nothing(app):
    build_study(app)
    p = planning.allocate(0.4, 7, dry_run=True)
    db.session.commit()
    assert not p.applied and p.counts["created"] == len(p.design.assignments) > 0
    assert rows() == {} and audit_count("assignment.create") == 0
    assert allocation_settings.get_setting(allocation_settings.SETTING_SEED) is None


def test_rerun_never_touches_started_work(app):
    build_study(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    started = start(["in_progress", "submitted", "cannot_rate", "submitted"])
    started += start(["submitted"], purpose="double")
    before = rows()
    p = planning.allocate(0.4, 99)
    db.session.commit()
    after = rows()
    for aid in started:
        assert after[aid] == before[aid]
    assert p.counts["moved"] + p.counts["created"] + p.counts["removed"] > 0
    assert not [d for d in p.after.deviations if d.guarantee == "coverage"]
    moved_ids = {
        e.entity_id
        for e in db.session.scalars(select(AuditEvent))
        if e.action in ("assignment.move", "assignment.remove")
    }
    assert not moved_ids & {str(a) for a in started}


def test_a_started_rating_counts_as_started(app):
    """A pending assignment that already has a draft rating is kept like started work."""
    build_study(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    a = db.session.scalar(select(Assignment).order_by(Assignment.id))
    db.session.add(Rating(assignment_id=a.id, status="draft"))
    db.session.commit()
    snapshot = rows()[a.id]
    planning.allocate(0.4, 12345)
    db.session.commit()
    assert rows()[a.id] == snapshot


def test_apply_refuses_when_work_was_started_in_the_meantime(app):
    build_study(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    p = planning.plan(0.4, 2)
    victim = next(c for c in p.changes if c.kind == "move")
    db.session.get(Assignment, victim.assignment_id).status = "in_progress"
    db.session.flush()
    with pytest.raises(errors.AllocationError, match="started in the meantime"):
        planning.apply_plan(p)


def test_sessions_added_later_are_allocated_into_the_existing_design(app):
    build_study(app, patients=4)
    planning.allocate(0.4, 3)
    db.session.commit()
    start(["submitted", "in_progress", "submitted"])
    before = rows()
    extra = catalogue_csv(DemoSizes(therapists=2, patients=6))  # patients 5 and 6 are new
    import_sessions(extra, "more.csv", app.config["RATER_AUDIO_DIR"])
    db.session.commit()
    new_codes = eligible_codes() - {s for s, *_ in before.values()}
    assert new_codes
    p = planning.allocate(keep_unstarted=True)
    db.session.commit()
    assert p.counts["moved"] == p.counts["removed"] == 0
    after = rows()
    assert {k: v for k, v in after.items() if k in before} == before
    added = [v for k, v in after.items() if k not in before]
    assert {v[0] for v in added} >= new_codes
    # an old session may only gain a second (double) rater, to keep double-coding at f
    assert all(v[2] == "double" for v in added if v[0] not in new_codes)
    uncovered = [d for d in p.before.deviations if d.guarantee == "coverage"]
    assert len(uncovered) == len(new_codes)
    assert not [d for d in p.after.deviations if d.guarantee == "coverage"]
    load = p.after.per_rater["total"]
    assert load.max() - load.min() <= 1


def test_a_rater_who_joins_gets_a_fair_share_of_unstarted_work(app):
    names = build_study(app, patients=5)
    planning.allocate(0.4, 5)
    db.session.commit()
    started = start(["submitted", "in_progress"])
    snapshot = {k: v for k, v in rows().items() if k in started}
    add_rater("r4")
    db.session.commit()
    preview = changes.rater_joins("r4", dry_run=True)
    assert rows() and "r4" not in {r for _, r, _, _ in rows().values()}
    p = changes.rater_joins("r4")
    db.session.commit()
    assert (
        "r4" not in preview.before.per_rater.index
        or preview.before.per_rater.loc["r4", "total"] == 0
    )
    totals = p.after.per_rater["total"]
    assert sorted(totals.index) == [*names, "r4"]
    assert totals.max() - totals.min() <= 1
    assert {k: v for k, v in rows().items() if k in started} == snapshot
    assert Counter(r for _, r, _, _ in rows().values())["r4"] == totals["r4"]


def test_a_rater_who_leaves_has_unstarted_work_redistributed(app):
    build_study(app, patients=5, raters=4)
    planning.allocate(0.4, 5)
    db.session.commit()
    before = rows()
    r1_started = [k for k, v in before.items() if v[1] == "r1" and v[2] == "main"][:2]
    for aid in r1_started:
        db.session.get(Assignment, aid).status = "submitted"
    db.session.commit()
    before = rows()
    others_before = {k: v for k, v in before.items() if v[1] != "r1"}
    p = changes.rater_leaves("r1")
    db.session.commit()
    after = rows()
    assert {k for k, v in after.items() if v[1] == "r1"} == set(r1_started)
    # the others keep every assignment they had; they only receive r1's unstarted work
    assert all(after[k] == v for k, v in others_before.items())
    assert "r1" in p.before.per_rater.index and "r1" not in p.after.per_rater.index
    assert allocation_settings.excluded_raters() == ["r1"]
    assert p.counts["moved"] > 0
    assert not [d for d in p.after.deviations if d.guarantee in ("coverage", "double_count")]
    mains = Counter(s for s, _, purpose, _ in after.values() if purpose == "main")
    assert set(mains) == eligible_codes() and set(mains.values()) == {1}


def test_a_deactivated_rater_leaves(app):
    build_study(app, raters=3)
    planning.allocate(0.4, 2)
    db.session.commit()
    changes.rater_leaves("r3", deactivate=True)
    db.session.commit()
    assert not db.session.scalar(select(User).where(User.username == "r3")).active
    assert "r3" not in {r for _, r, _, _ in rows().values()}
    assert audit_count("user.deactivate") == 1


def test_leaving_then_a_replan_keeps_their_started_sessions_outside(app):
    build_study(app, raters=3)
    planning.allocate(0.4, 2)
    db.session.commit()
    aid = next(k for k, v in rows().items() if v[1] == "r3" and v[2] == "main")
    db.session.get(Assignment, aid).status = "in_progress"
    db.session.commit()
    changes.rater_leaves("r3")
    db.session.commit()
    p = planning.allocate(0.4, 77)
    db.session.commit()
    assert p.outside["settled"] == 1 and rows()[aid][1:] == ("r3", "main", "in_progress")


def test_move_one_assignment_by_hand(app):
    build_study(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    a = next(
        a
        for a in db.session.scalars(select(Assignment).where(Assignment.purpose == "main"))
        if "r2"
        not in {
            b.rater.username
            for b in db.session.scalars(
                select(Assignment).where(Assignment.session_id == a.session_id)
            )
        }
        and a.rater.username == "r1"
    )
    result = changes.move_assignment(a.id, "r2")
    db.session.commit()
    assert rows()[a.id][1] == "r2"
    assert (
        result.after.per_rater.loc["r1", "total"] == result.before.per_rater.loc["r1", "total"] - 1
    )
    assert (
        result.after.per_rater.loc["r2", "total"] == result.before.per_rater.loc["r2", "total"] + 1
    )
    event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "assignment.move"))
    assert event_.before["rater"] == "r1" and event_.after["rater"] == "r2"
    assert event_.after["by_hand"] is True


def test_move_is_refused_for_started_work_or_a_rater_who_has_the_session(app):
    build_study(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    double = db.session.scalar(select(Assignment).where(Assignment.purpose == "double"))
    partner = db.session.scalar(
        select(Assignment).where(
            Assignment.session_id == double.session_id, Assignment.purpose == "main"
        )
    )
    with pytest.raises(errors.AllocationError, match="already has session"):
        changes.move_assignment(double.id, partner.rater.username)
    partner.status = "in_progress"
    db.session.commit()
    other = ({"r1", "r2", "r3"} - {double.rater.username, partner.rater.username}).pop()
    with pytest.raises(errors.AllocationError, match="started"):
        changes.move_assignment(partner.id, other)
    with pytest.raises(errors.AllocationError, match="no rater"):
        changes.move_assignment(double.id, "nobody")
    assert audit_count("assignment.move") == 0


def test_new_main_work_is_held_while_the_gate_is_closed(app):
    build_study(app)
    calib.add_calibration_sessions(calib.draw_sessions(2, seed=1))
    calib.set_gate(True, 0.7)
    p = planning.allocate(0.4, 1)
    db.session.commit()
    assert p.hold_new
    statuses = Counter(
        (purpose == "calibration", status) for _, _, purpose, status in rows().values()
    )
    assert statuses == {(True, "pending"): 6, (False, "held"): len(p.design.assignments)}
    assert p.outside["calibration"] == 2


def test_progress_counts_by_rater_and_cell(app):
    build_study(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    start(["submitted", "submitted", "in_progress", "cannot_rate"])
    prog = allocation_progress.progress(stale_days=0)
    total = sum(r.assigned for r in prog.raters)
    assert total == len(rows())
    assert sum(r.submitted for r in prog.raters) == 2
    assert sum(r.in_progress for r in prog.raters) == 1
    assert sum(r.cannot_rate for r in prog.raters) == 1
    assert sum(c.assigned for c in prog.cells) == total
    assert sum(c.sessions for c in prog.cells) == len(eligible_codes())
    assert sum(c.done for c in prog.cells) == 3


def test_stale_drafts_are_listed(app):
    from datetime import timedelta

    from rater.timeutil import utcnow

    build_study(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    a, b = db.session.scalars(select(Assignment).limit(2)).all()
    old = Rating(assignment_id=a.id, status="draft")
    new = Rating(assignment_id=b.id, status="draft")
    db.session.add_all([old, new])
    db.session.flush()
    old.updated_at = utcnow() - timedelta(days=20)
    db.session.commit()
    db.session.execute(
        Rating.__table__.update()
        .where(Rating.id == old.id)
        .values(updated_at=utcnow() - timedelta(days=20))
    )
    db.session.commit()
    stale = allocation_progress.progress(stale_days=14).stale
    assert [(s.session, s.days) for s in stale] == [(a.session.code, 20)]


def test_session_page_filters_and_uses_a_constant_number_of_queries(app):
    build_study(app, patients=6)
    planning.allocate(0.4, 1)
    db.session.commit()
    everything = session_list.session_page(session_list.SessionFilters(), per_page=1000)
    assert (
        everything.total
        == len(everything.rows)
        == db.session.scalar(select(func.count(TherapySession.id)))
    )
    t1 = session_list.session_page(
        session_list.SessionFilters(therapist="T1", phase="II"), per_page=1000
    )
    assert t1.rows and all(r.therapist == "T1" and r.phase == "II" for r in t1.rows)
    mine = session_list.session_page(
        session_list.SessionFilters(rater="r2", state="pending"), per_page=1000
    )
    assert mine.rows and all(
        any(x.rater == "r2" and x.status == "pending" for x in r.assignments) for r in mine.rows
    )
    unassigned = session_list.session_page(
        session_list.SessionFilters(state="unassigned"), per_page=1000
    )
    assert {r.code for r in unassigned.rows} == {r.code for r in everything.rows} - eligible_codes()
    paged = session_list.session_page(session_list.SessionFilters(), page=2, per_page=10)
    assert paged.page == 2 and len(paged.rows) == 10 and paged.pages == -(-everything.total // 10)

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        session_list.session_page(session_list.SessionFilters(), per_page=5)
        small = len(statements)
        statements.clear()
        session_list.session_page(session_list.SessionFilters(), per_page=500)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == small
