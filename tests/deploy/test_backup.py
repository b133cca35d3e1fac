"""``rater backup FILE`` and ``rater restore FILE`` on the engine under test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from rater.config import TestConfig as RaterConfig
from rater.extensions import db
from rater.rating.models import ItemScore, Note, Rating
from rater.study.instrument_store import current_versions, sync_instruments
from tests.support.databases import scratch_postgres_database


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same engine, dropped afterwards."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite'}"
        return
    with scratch_postgres_database(database_url, prefix="rater_restore") as fresh:
        yield fresh


def _study_with_ratings(factory) -> None:
    sync_instruments()
    rater = factory.user("r1")
    factory.user("coord", "coordinator")
    ghes = current_versions()["GHES"]
    for number in (1, 2, 3):
        session = factory.session(f"P01-S0{number}", number=number, phq9=10 + number)
        assignment = factory.assignment(session, rater, status="submitted")
        rating = Rating(assignment_id=assignment.id, status="submitted")
        rating.scores = [
            ItemScore(instrument_version_id=ghes.id, item_code=f"GHES_{i}", score=(i + number) % 5)
            for i in range(1, 8)
        ]
        rating.notes = [Note(client_id=f"n{number}", audio_seconds=3.5, text=f"Noté {number} ✓")]
        db.session.add(rating)
    db.session.commit()


def _all_rows(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(make_url(url).set(drivername=_driver(url)))
    try:
        with engine.connect() as conn:
            return {
                table.name: sorted(
                    tuple(map(repr, row)) for row in conn.execute(select(table)).all()
                )
                for table in db.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def _driver(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql+psycopg"


@pytest.mark.usefixtures("app")
def test_backup_and_restore_give_the_same_rows(runner, factory, database_url, tmp_path,
                                               fresh_database_url, build_app):  # fmt: skip
    _study_with_ratings(factory)
    backup_file = tmp_path / "rater.backup"
    result = runner.invoke(args=["backup", str(backup_file)])
    assert result.exit_code == 0, result.output
    assert "Backed up" in result.output and backup_file.stat().st_size > 0

    target = build_app(RaterConfig(fresh_database_url))
    with target.app_context():
        restored = target.test_cli_runner().invoke(args=["restore", "--yes", str(backup_file)])
    assert restored.exit_code == 0, restored.output
    original = _all_rows(database_url)
    assert sum(len(rows) for rows in original.values()) > 30
    assert len(original["item_scores"]) == 21
    assert _all_rows(fresh_database_url) == original


def test_backup_refuses_to_overwrite(runner, tmp_path):
    existing = tmp_path / "exists.backup"
    existing.write_bytes(b"keep me")
    result = runner.invoke(args=["backup", str(existing)])
    assert result.exit_code == 1 and "exists" in result.output
    assert existing.read_bytes() == b"keep me"


def test_restore_refuses_a_file_that_is_not_a_rater_backup(build_app, tmp_path):
    target_file = tmp_path / "target.sqlite"
    app = build_app(RaterConfig(f"sqlite:///{target_file}"))
    with app.app_context():
        from rater.cli import upgrade_schema

        upgrade_schema()
        db.engine.dispose()
        junk = tmp_path / "junk.backup"
        junk.write_bytes(b"this is not a database" * 100)
        result = app.test_cli_runner().invoke(args=["restore", "--yes", str(junk)])
    assert result.exit_code == 1
    assert "Nothing was restored" in result.output and "not a readable SQLite database" in (
        result.output
    )


# --- no password on a command line; backups private from their creation -----------------------

SECRET = "s3cret p@ss:w/rd"
POSTGRES_URL = (
    "postgresql://rater:s3cret%20p%40ss%3Aw%2Frd@db.example.org:5433/rater?sslmode=require"
)


def test_pg_dump_and_pg_restore_get_the_password_in_the_environment_only(
    build_app, tmp_path, monkeypatch
):
    """Every user of the machine can read a process's command line (ps), not its environment."""
    import rater.serve

    calls = []

    def fake_run(command, **kwargs):
        calls.append((command, kwargs.get("env") or {}))
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.setattr(rater.serve.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(rater.serve.subprocess, "run", fake_run)
    app = build_app(RaterConfig(POSTGRES_URL))
    with app.app_context():
        runner = app.test_cli_runner()
        backup_file = tmp_path / "pg.backup"
        assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0
        assert runner.invoke(args=["restore", "--yes", str(backup_file)]).exit_code == 0
    assert [command[0] for command, _ in calls] == ["pg_dump", "pg_restore"]
    for command, env in calls:
        assert not any("s3cret" in part or "p%40ss" in part for part in command), command
        assert env["PGPASSWORD"] == SECRET
        assert any("postgresql://rater@db.example.org:5433/rater?sslmode=require" in part
                   for part in command), command  # fmt: skip


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
@pytest.mark.usefixtures("app")
def test_a_backup_file_is_private_from_its_creation(runner, factory, tmp_path, monkeypatch,
                                                     umask):  # fmt: skip
    """Mode 0600 before the first byte is written (SQLite's copy, pg_dump's output) and after."""
    import rater.serve

    _study_with_ratings(factory)
    backup_file = tmp_path / "private.backup"
    seen = []
    real_backup, real_run = rater.serve.sqlite_backup, rater.serve.subprocess.run

    def mode_when_written(*args, **kwargs):
        seen.append(backup_file.stat().st_mode & 0o777)
        return (real_backup if len(args) == 2 else real_run)(*args, **kwargs)

    monkeypatch.setattr(rater.serve, "sqlite_backup", mode_when_written)
    monkeypatch.setattr(rater.serve.subprocess, "run", mode_when_written)
    old_umask = os.umask(umask)
    try:
        result = runner.invoke(args=["backup", str(backup_file)])
        assert result.exit_code == 0, result.output
        again = runner.invoke(args=["backup", "--force", str(backup_file)])
        assert again.exit_code == 0, again.output
    finally:
        os.umask(old_umask)
    assert seen == [0o600, 0o600]
    assert backup_file.stat().st_mode & 0o777 == 0o600 and backup_file.stat().st_size > 0


def test_a_failed_pg_dump_leaves_no_backup_file(build_app, tmp_path, monkeypatch):
    import rater.serve

    def failing_run(command, **_kwargs):
        return subprocess.CompletedProcess(command, 1, stdout="", stderr="pg_dump: error: boom")

    monkeypatch.setattr(rater.serve.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(rater.serve.subprocess, "run", failing_run)
    app = build_app(RaterConfig(POSTGRES_URL))
    backup_file = tmp_path / "failed.backup"
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["backup", str(backup_file)])
    assert result.exit_code == 1 and "pg_dump: error: boom" in result.output
    assert not backup_file.exists()
