"""The schema the migrations build is the schema the models describe, on the engine under test.

The suite's database is built by the committed Alembic revisions; here a second, empty
database of the same engine gets ``metadata.create_all`` from the models, and the two are
reflected and compared: tables, columns, keys, indexes and every CHECK constraint's text (the
constraints built from the state enums of ``rater.states`` included). A model change without a
migration, or a migration that drifts from the models, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from rater.extensions import db
from tests.support.databases import scratch_postgres_database


@pytest.fixture
def models_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the engine under test with the models' schema (create_all)."""
    if make_url(database_url).get_backend_name() == "sqlite":
        url = f"sqlite:///{tmp_path / 'models.sqlite'}"
        _create_all(url)
        yield url
        return
    with scratch_postgres_database(database_url, prefix="rater_models") as url:
        _create_all(url)
        yield url


def _create_all(url: str) -> None:
    engine = create_engine(url)
    try:
        db.metadata.create_all(engine)
    finally:
        engine.dispose()


def _reflect(url: str) -> dict[str, Any]:
    """Everything about each table that the models state, in a comparable form."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: {
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                ),
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (tuple(k["constrained_columns"]), k["referred_table"], k["name"] or "")
                    for k in inspector.get_foreign_keys(table)
                ),
                "unique": sorted(
                    (u["name"] or "", tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (i["name"] or "", tuple(map(str, i["column_names"])), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
                "checks": sorted(
                    (c["name"] or "", " ".join(c["sqltext"].split()))
                    for c in inspector.get_check_constraints(table)
                ),
            }
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }
    finally:
        engine.dispose()


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_migrated_schema_is_the_models_schema(_schema, models_database_url):
    migrated, models = _reflect(_schema), _reflect(models_database_url)
    assert "assignments" in models
    assert sorted(migrated) == sorted(models)
    for table in sorted(models):
        assert migrated[table] == models[table], table


def test_every_state_enum_is_a_check_constraint_of_the_migrated_schema(_schema):
    """Each enum's values, in the enum's order, are what the migrated database checks."""
    from rater.instruments import LogKind
    from rater.states import (
        AssignmentStatus,
        CannotRateCategory,
        Completion,
        Purpose,
        RatingStatus,
        Role,
        SessionStatus,
    )

    expected = {
        ("users", "ck_users_role"): Role,
        ("sessions", "ck_sessions_status"): SessionStatus,
        ("assignments", "ck_assignments_purpose"): Purpose,
        ("assignments", "ck_assignments_status"): AssignmentStatus,
        ("ratings", "ck_ratings_status"): RatingStatus,
        ("ratings", "ck_ratings_cannot_rate_category"): CannotRateCategory,
        ("homework_entries", "ck_homework_entries_kind"): LogKind,
        ("homework_entries", "ck_homework_entries_completion"): Completion,
    }
    engine = create_engine(_schema)
    try:
        inspector = inspect(engine)
        for (table, name), enum in expected.items():
            checks = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table)}
            text = checks[name]
            positions = [text.find(f"'{value}'") for value in enum]
            assert -1 not in positions, (name, text)
            assert positions == sorted(positions), (name, text)
    finally:
        engine.dispose()
