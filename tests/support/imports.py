"""Helpers for the tests of large imports (sessions and ratings)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select

from rater.extensions import db

# SQLite's default SQLITE_MAX_VARIABLE_NUMBER since 3.32 (Debian builds raise it to 250,000):
# the limit most installations meet, and the one a large import must stay under.
SQLITE_DEFAULT_VARIABLES = 32_766


@pytest.fixture
def default_parameter_limits(app) -> Iterator[None]:
    """Connections of SQLite as built by default (PostgreSQL's limit, 65,535, is fixed)."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        yield
        return

    def lower(dbapi_connection, _record) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, SQLITE_DEFAULT_VARIABLES)

    db.session.remove()
    engine.dispose()
    event.listen(engine, "connect", lower)
    try:
        yield
    finally:
        db.session.remove()
        event.remove(engine, "connect", lower)
        engine.dispose()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))
