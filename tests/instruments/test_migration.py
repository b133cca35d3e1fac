"""Migration 0005 (any scale): every existing rating keeps its scores, the schema it builds is
the models' schema, a row holds exactly one of score, text value and "not applicable", and the
way back is refused while an answer the old schema cannot hold exists. On SQLite (batch mode)
and PostgreSQL (``RATER_TEST_DATABASE_URL``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, Table, create_engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from rater import create_app
from rater.config import TestConfig as MigrationConfig
from rater.extensions import db
from tests.support.databases import scratch_postgres_database

# SQLite cannot reflect the expression index on lower(username) (SQLAlchemy warns, autogenerate
# says it skips it); tests/deploy/test_schema.py compares that index on its own.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based"),
]

MIGRATIONS = str(Path(__file__).resolve().parents[2] / "migrations")
NOW = datetime(2026, 1, 1, 12, 0)


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[str]:  # noqa: ARG001 (a fixture requested for its setup)
    """A database of its own, on the engine the run uses (``database_url``)."""
    server = os.environ.get("RATER_TEST_DATABASE_URL")
    if server:
        with scratch_postgres_database(server, "rater_migration") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'migration.sqlite'}"


@pytest.fixture
def fresh_app(fresh_url: str):
    app = create_app(MigrationConfig(fresh_url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _tables(connection) -> dict[str, Table]:
    meta = MetaData()
    meta.reflect(bind=connection)
    return meta.tables


def _old_rows(connection) -> None:
    """A rating with two scores and a consensus score, as the 0-4 schema held them."""
    t = _tables(connection)
    rows = [
        ("users", {"id": 1, "username": "r1", "password_hash": "x", "role": "rater",
                   "active": True, "created_at": NOW}),
        ("therapists", {"id": 1, "code": "T1"}),
        ("patients", {"id": 1, "code": "P01"}),
        ("sessions", {"id": 1, "code": "P01-S01", "patient_id": 1, "therapist_id": 1,
                      "session_number": 1, "phase": "I", "status": "eligible"}),
        ("instrument_versions", {"id": 1, "code": "GHES", "version": 1, "content_hash": "h",
                                 "source_file": "ghes.toml", "definition": {}, "loaded_at": NOW}),
        ("assignments", {"id": 1, "session_id": 1, "rater_id": 1, "purpose": "main",
                         "status": "submitted", "created_at": NOW}),
        ("ratings", {"id": 1, "assignment_id": 1, "status": "submitted", "audio_position": 0,
                     "active_seconds": 0, "cannot_rate": False, "version": 3,
                     "created_at": NOW, "updated_at": NOW}),
        ("item_scores", {"id": 1, "rating_id": 1, "instrument_version_id": 1,
                         "item_code": "GHES_1", "score": 0, "updated_at": NOW}),
        ("item_scores", {"id": 2, "rating_id": 1, "instrument_version_id": 1,
                         "item_code": "GHES_2", "score": 4, "updated_at": NOW}),
        ("consensus_scores", {"id": 1, "session_id": 1, "instrument_version_id": 1,
                              "item_code": "GHES_1", "score": 1, "decided_by_id": 1,
                              "decided_at": NOW}),
    ]  # fmt: skip
    for name, values in rows:
        connection.execute(insert(t[name]).values(**values))


def _answers(connection, table: str) -> list[tuple]:
    t = _tables(connection)[table]
    columns = [t.c.item_code, t.c.score]
    if "not_applicable" in t.c:
        columns += [t.c.value_text, t.c.not_applicable]
    return [tuple(row) for row in connection.execute(select(*columns).order_by(t.c.id))]


@pytest.mark.usefixtures("fresh_app")
def test_upgrade_keeps_every_rating_and_matches_the_models():
    upgrade(directory=MIGRATIONS, revision="0003")
    with db.engine.begin() as connection:
        _old_rows(connection)
    upgrade(directory=MIGRATIONS, revision="0005")
    with db.engine.begin() as connection:
        assert _answers(connection, "item_scores") == [
            ("GHES_1", 0, None, False),
            ("GHES_2", 4, None, False),
        ]
        assert _answers(connection, "consensus_scores") == [("GHES_1", 1, None, False)]
    upgrade(directory=MIGRATIONS)  # the later revisions, up to the models
    with db.engine.begin() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, db.metadata) == []


@pytest.mark.parametrize(
    "values",
    [
        {"score": 7},  # any range now: the instrument checks it
        {"score": None, "value_text": "behavioural"},
        {"score": None, "not_applicable": True},
    ],
)
@pytest.mark.usefixtures("fresh_app")
def test_one_answer_per_row(values):
    upgrade(directory=MIGRATIONS, revision="0005")
    with db.engine.begin() as connection:
        _old_rows(connection)
        t = _tables(connection)["item_scores"]
        connection.execute(update(t).where(t.c.id == 1).values(**values))


@pytest.mark.parametrize(
    "values",
    [
        {"score": None},  # nothing
        {"score": 3, "value_text": "x"},
        {"score": 3, "not_applicable": True},
        {"score": None, "value_text": "x", "not_applicable": True},
    ],
)
@pytest.mark.usefixtures("fresh_app")
def test_rows_without_exactly_one_answer_are_refused(values):
    upgrade(directory=MIGRATIONS, revision="0005")
    with db.engine.begin() as connection:
        _old_rows(connection)
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        t = _tables(connection)["consensus_scores"]
        connection.execute(update(t).where(t.c.id == 1).values(**values))


@pytest.mark.usefixtures("fresh_app")
def test_downgrade_back_to_0_4_and_refused_for_other_answers(caplog):
    upgrade(directory=MIGRATIONS, revision="0005")
    with db.engine.begin() as connection:
        _old_rows(connection)
    downgrade(directory=MIGRATIONS, revision="0003")
    with db.engine.begin() as connection:
        assert _answers(connection, "item_scores") == [("GHES_1", 0), ("GHES_2", 4)]
    upgrade(directory=MIGRATIONS, revision="0005")
    with db.engine.begin() as connection:
        t = _tables(connection)["item_scores"]
        connection.execute(update(t).where(t.c.id == 2).values(score=None, not_applicable=True))
    with pytest.raises(SystemExit):  # flask-migrate logs the error and exits
        downgrade(directory=MIGRATIONS, revision="0003")
    said = caplog.text
    assert "item_scores holds 1 answers that are not scores 0-4" in said
    assert "Nothing was changed" in said
    engine = create_engine(str(db.engine.url))
    with engine.connect() as connection:
        assert len(_answers(connection, "item_scores")[1]) == 4  # still 0005
    engine.dispose()


def test_a_migration_command_prints_its_error_on_the_terminal(tmp_path: Path):
    """A command line has set up no logging: alembic.ini's is used, and an error reaches stderr
    in its format (under pytest, whose handlers stay, the tests read the records instead)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    command = [sys.executable, "-c", "from rater.cli import main; main()"]
    result = subprocess.run(
        [*command, "db", "downgrade", "nosuchrevision"],
        env=env, capture_output=True, text=True, timeout=120, cwd=Path(MIGRATIONS).parent,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        "ERROR [flask_migrate] Error: Can't locate revision identified by 'nosuchrevision'"
        in result.stderr
    ), result.stderr
