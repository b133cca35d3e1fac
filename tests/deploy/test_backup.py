"""``rater backup FILE`` and ``rater restore FILE`` on the engine under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from rater import create_app
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


def test_backup_and_restore_give_the_same_rows(app, runner, factory, database_url, tmp_path,
                                               fresh_database_url):  # fmt: skip
    _study_with_ratings(factory)
    backup_file = tmp_path / "rater.backup"
    result = runner.invoke(args=["backup", str(backup_file)])
    assert result.exit_code == 0, result.output
    assert "Backed up" in result.output and backup_file.stat().st_size > 0

    target = create_app(RaterConfig(fresh_database_url))
    with target.app_context():
        restored = target.test_cli_runner().invoke(args=["restore", "--yes", str(backup_file)])
        db.engine.dispose()
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


def test_restore_refuses_a_file_that_is_not_a_rater_backup(tmp_path):
    target_file = tmp_path / "target.sqlite"
    app = create_app(RaterConfig(f"sqlite:///{target_file}"))
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
