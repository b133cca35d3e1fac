"""``rater allocate`` and ``rater allocation ...``: output, dry runs, atomic writes."""

from __future__ import annotations

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from rater import audit
from rater.allocation import calibration, planning
from rater.audit import AuditEvent
from rater.auth.models import User
from rater.demo import DemoSizes, catalogue_csv
from rater.extensions import db
from rater.rating.models import Assignment
from rater.study.catalogue import import_sessions
from rater.study.models import StudySetting

HASH = generate_password_hash("correct-horse-battery", method="pbkdf2:sha256:1")


def build(app, raters: int = 4) -> tuple[int, int, int]:
    """A small study and raters r1..rK; returns ``counts()`` after building it."""
    import_sessions(
        catalogue_csv(DemoSizes(therapists=3, patients=5)),
        "sessions.csv",
        app.config["RATER_AUDIO_DIR"],
    )
    for i in range(1, raters + 1):
        db.session.add(User(username=f"r{i}", role="rater", active=True, password_hash=HASH))
    db.session.commit()
    return counts()


def counts() -> tuple[int, int, int]:
    db.session.expire_all()
    return (
        db.session.scalar(select(func.count(Assignment.id))),
        db.session.scalar(select(func.count(AuditEvent.id))),
        db.session.scalar(select(func.count()).select_from(StudySetting)),
    )


def test_dry_run_prints_the_report_and_writes_nothing(app, runner):
    built = build(app)
    result = runner.invoke(
        args=["allocate", "--double-fraction", "0.4", "--seed", "7", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Assignments per rater" in out and "Double-coded sessions per rater pair" in out
    assert "All balance guarantees met." in out and "Dry run: nothing was written." in out
    assert "seed 7" in out and "Would write:" in out
    assert counts() == built


def test_a_real_run_writes_the_design(app, runner):
    build(app)
    result = runner.invoke(args=["allocate", "--double-fraction", "0.4", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "Wrote:" in result.output and "All balance guarantees met." in result.output
    n, events, _ = counts()
    planned = planning.plan(0.4, 7)
    assert n == len(planned.design.assignments) and events > n
    assert planned.counts == {"created": 0, "moved": 0, "removed": 0, "kept": n}


def test_a_failure_mid_write_leaves_nothing_behind(app, runner, monkeypatch):
    built = build(app)
    calls = {"n": 0}
    real = audit.record

    def failing(action, *args, **kwargs):
        if action == "assignment.create":
            calls["n"] += 1
            if calls["n"] == 20:
                raise RuntimeError("disk full")
        return real(action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", failing)
    result = runner.invoke(args=["allocate", "--seed", "7"])
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    assert calls["n"] == 20
    assert counts() == built


def test_a_refused_run_writes_nothing_and_says_why(app, runner):
    built = build(app, raters=1)
    result = runner.invoke(args=["allocate"])
    assert result.exit_code == 1 and "at least two active raters" in result.output
    assert counts() == built


def test_calibration_draw_with_dry_run_and_for_real(app, runner):
    built = build(app)
    dry = runner.invoke(args=["allocate", "--calibration", "3", "--seed", "2", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Calibration sessions drawn:" in dry.output and "3 calibration" in dry.output
    assert counts() == built
    real = runner.invoke(
        args=["allocate", "--calibration", "3", "--seed", "2", "--exclude-calibration"]
    )
    assert real.exit_code == 0, real.output
    assert "Calibration reliability: not yet available" in real.output
    db.session.expire_all()
    calibration = db.session.scalar(
        select(func.count(Assignment.id)).where(Assignment.purpose == "calibration")
    )
    assert calibration == 3 * 4
    assert dry.output.splitlines()[0] == real.output.splitlines()[0]  # the same draw


def test_gate_and_release_commands(app, runner, monkeypatch):
    build(app)
    runner.invoke(args=["allocate", "--calibration", "2"])
    gate = runner.invoke(args=["allocation", "gate", "--enable", "--threshold", "0.8"])
    assert gate.exit_code == 0 and "held back" in gate.output and "closed" in gate.output
    assert "Calibration reliability: not yet available" in gate.output
    refused = runner.invoke(args=["allocation", "release"])
    assert refused.exit_code == 1 and "closed" in refused.output
    db.session.expire_all()
    for a in db.session.scalars(select(Assignment).where(Assignment.purpose == "calibration")):
        a.status = "submitted"
    db.session.commit()
    monkeypatch.setattr(calibration, "calibration_icc", lambda _frame: (0.95, "high"))
    released = runner.invoke(args=["allocation", "release"])
    assert released.exit_code == 0 and "released" in released.output
    db.session.expire_all()
    assert not db.session.scalar(select(func.count()).where(Assignment.status == "held"))


def test_rater_commands_show_before_and_after(app, runner):
    build(app)
    runner.invoke(args=["allocate", "--seed", "1"])
    preview = runner.invoke(args=["allocation", "remove-rater", "r4", "--dry-run"])
    assert preview.exit_code == 0 and "Before:" in preview.output and "After:" in preview.output
    assert "Dry run" in preview.output
    db.session.expire_all()
    r4 = db.session.scalar(select(User.id).where(User.username == "r4"))
    assert db.session.scalar(select(func.count()).where(Assignment.rater_id == r4)) > 0
    assert runner.invoke(args=["allocation", "remove-rater", "r4"]).exit_code == 0
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(Assignment.rater_id == r4)) == 0
    assert runner.invoke(args=["allocation", "add-rater", "r4"]).exit_code == 0
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(Assignment.rater_id == r4)) > 0
    a = db.session.scalar(select(Assignment).where(Assignment.rater_id == r4).limit(1))
    taken = {
        b.rater.username
        for b in db.session.scalars(select(Assignment).where(Assignment.session_id == a.session_id))
    }
    target = sorted({"r1", "r2", "r3"} - taken)[0]
    moved = runner.invoke(args=["allocation", "move", str(a.id), target])
    assert moved.exit_code == 0 and "Moved." in moved.output
    again = runner.invoke(args=["allocation", "move", str(a.id), target])
    assert again.exit_code == 1 and "already has" in again.output
