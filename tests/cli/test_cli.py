"""The ``rater`` command group, through Flask's CLI runner."""

from __future__ import annotations

from sqlalchemy import func, select

from rater.audit import AuditEvent
from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment, ItemScore, Rating
from rater.study.models import TherapySession

SESSIONS = (
    "session_id,patient,therapist,session_number\n"
    "P01-S01,P01,T1,1\n"
    "P01-S02,P01,T1,2\n"
    "P02-S01,P02,T2,1\n"
)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_init_db_registers_instruments(runner):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "instrument GHES version 1" in result.output
    assert "instrument StHAR version 1" in result.output


def test_users_add_list_deactivate(runner):
    result = runner.invoke(
        args=["users", "add", "anna", "--role", "rater", "--password-stdin"],
        input="a-long-password\n",
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=["users", "add", "carl", "--role", "coordinator"],
        input="another-password\nanother-password\n",
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(args=["users", "list"]).output
    assert "anna" in listing and "rater" in listing and "carl" in listing
    assert runner.invoke(args=["users", "deactivate", "anna"]).exit_code == 0
    assert "deactivated" in runner.invoke(args=["users", "list"]).output
    anna = db.session.scalar(select(User).filter_by(username="anna"))
    assert anna.active is False and anna.check_password("a-long-password")
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["user.add", "user.add", "user.deactivate"]


def test_users_add_refuses_duplicates_short_passwords_and_bad_roles(runner, factory):
    factory.user("anna")
    dup = runner.invoke(
        args=["users", "add", "anna", "--role", "rater", "--password-stdin"],
        input="a-long-password\n",
    )
    assert dup.exit_code == 1 and "already exists" in dup.output
    short = runner.invoke(
        args=["users", "add", "bob", "--role", "rater", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 8" in short.output
    role = runner.invoke(
        args=["users", "add", "bob", "--role", "admin", "--password-stdin"],
        input="a-long-password\n",
    )
    assert role.exit_code == 2
    assert runner.invoke(args=["users", "deactivate", "nobody"]).exit_code == 1


def test_sessions_import_and_reimport(runner, tmp_path):
    path = tmp_path / "sessions.csv"
    path.write_text(SESSIONS, encoding="utf-8")
    first = runner.invoke(args=["sessions", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "3 new, 0 updated, 0 unchanged" in first.output
    second = runner.invoke(args=["sessions", "import", str(path)])
    assert "0 new, 0 updated, 3 unchanged" in second.output
    assert _count(TherapySession) == 3


def test_sessions_import_with_three_bad_rows_lists_all_and_imports_nothing(runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        SESSIONS
        + "P03-S01,P03,T1,first\n"  # line 5: not a number
        + "P03-S02,,T1,2\n"  # line 6: no patient
        + "P01-S01,P01,T1,3\n",  # line 7: duplicate session_id
        encoding="utf-8",
    )
    result = runner.invoke(args=["sessions", "import", str(path)])
    assert result.exit_code == 1
    assert "3 problem(s); nothing was imported" in result.output
    assert "bad.csv, line 5, column 'session_number': must be a whole number" in result.output
    assert "bad.csv, line 6, column 'patient': is empty" in result.output
    assert "bad.csv, line 7, column 'session_id': duplicate of line 2" in result.output
    assert _count(TherapySession) == 0


def _ratings_setup(runner, factory, tmp_path):
    (tmp_path / "s.csv").write_text(SESSIONS, encoding="utf-8")
    assert runner.invoke(args=["sessions", "import", str(tmp_path / "s.csv")]).exit_code == 0
    factory.user("r1")
    factory.user("r2")


def test_ratings_import_creates_submitted_ratings(runner, factory, tmp_path):
    _ratings_setup(runner, factory, tmp_path)
    path = tmp_path / "ratings.csv"
    path.write_text(
        "session_id,rater,instrument,item,score,submitted_at\n"
        "P01-S01,r1,GHES,GHES_1,3,2024-03-01T10:15:00\n"
        "P01-S01,r1,GHES,GHES_2,2,2024-03-01T10:15:00\n"
        "P01-S01,r2,GHES,GHES_1,4,\n"
        "P01-S02,r2,StHAR,StHAR_A1,0,2024-03-02T08:00:00+01:00\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["ratings", "import", str(path), "--allow-incomplete"])
    assert result.exit_code == 0, result.output
    assert "3 ratings with 4 scores" in result.output
    assert "3 of them lack required items" in result.output
    purposes = dict(
        db.session.execute(
            select(User.username, Assignment.purpose)
            .join(Assignment, Assignment.rater_id == User.id)
            .join(TherapySession, Assignment.session_id == TherapySession.id)
            .where(TherapySession.code == "P01-S01")
        ).all()
    )
    assert purposes == {"r1": "main", "r2": "double"}
    assert {r.status for r in db.session.scalars(select(Rating))} == {"submitted"}
    stamps = sorted(str(r.submitted_at) for r in db.session.scalars(select(Rating)))
    assert "2024-03-02 07:00:00" in stamps  # offsets are stored as UTC
    assert _count(ItemScore) == 4


def test_ratings_import_lists_every_problem_and_writes_nothing(runner, factory, tmp_path):
    _ratings_setup(runner, factory, tmp_path)
    path = tmp_path / "ratings.csv"
    path.write_text(
        "session_id,rater,instrument,item,score\n"
        "P09-S01,r1,GHES,GHES_1,3\n"  # unknown session
        "P01-S01,zoe,GHES,GHES_1,3\n"  # unknown rater
        "P01-S01,r1,BDI,GHES_1,3\n"  # unknown instrument
        "P01-S01,r1,GHES,StHAR_A1,3\n"  # item of another instrument
        "P01-S01,r1,GHES,GHES_2,5\n"  # out of range
        "P01-S01,r1,GHES,GHES_3,2\n"
        "P01-S01,r1,GHES,GHES_3,1\n",  # duplicate
        encoding="utf-8",
    )
    result = runner.invoke(args=["ratings", "import", str(path)])
    assert result.exit_code == 1
    for line, column, message in [
        (2, "session_id", "unknown session"),
        (3, "rater", "unknown rater"),
        (4, "instrument", "unknown instrument"),
        (5, "item", "not an item of GHES"),
        (6, "score", "out of range"),
        (8, "item", "duplicate"),
    ]:
        assert f"ratings.csv, line {line}, column '{column}': {message}" in result.output
    assert _count(Rating) == 0 and _count(Assignment) == 0


def test_ratings_import_refuses_a_second_score_for_an_existing_item(runner, factory, tmp_path):
    _ratings_setup(runner, factory, tmp_path)
    path = tmp_path / "r.csv"
    path.write_text("session_id,rater,instrument,item,score\nP01-S01,r1,GHES,GHES_1,3\n", "utf-8")
    assert runner.invoke(args=["ratings", "import", str(path), "--allow-incomplete"]).exit_code == 0
    again = runner.invoke(args=["ratings", "import", str(path), "--allow-incomplete"])
    assert again.exit_code == 1 and "already has a score for this item" in again.output
    assert _count(ItemScore) == 1
