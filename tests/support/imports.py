"""Helpers for the tests of large imports (sessions and ratings)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select

from rater.bulk import parameter_limit
from rater.extensions import db

# SQLite's SQLITE_MAX_VARIABLE_NUMBER before 3.32, still the compiled limit of some builds (3.32
# raised the default to 32,766, Debian builds to 250,000): the smallest a large import meets.
SQLITE_SMALLEST_VARIABLES = 999


@pytest.fixture
def smallest_parameter_limit(app) -> Iterator[int]:  # noqa: ARG001 (a fixture requested for its setup)
    """The most parameters a statement may hold, set as low as engines ship it; yields it.

    SQLite connections get the old limit of 999, so that a file of 10,000 rows already needs
    many statements and round trips; PostgreSQL's limit (65,535) is fixed by its protocol.
    """
    engine = db.engine
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection:
            yield parameter_limit(connection)
        return

    def lower(dbapi_connection, _record) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, SQLITE_SMALLEST_VARIABLES)

    db.session.remove()
    engine.dispose()
    event.listen(engine, "connect", lower)
    try:
        with engine.connect() as connection:
            assert parameter_limit(connection) == SQLITE_SMALLEST_VARIABLES
        yield SQLITE_SMALLEST_VARIABLES
    finally:
        db.session.remove()
        event.remove(engine, "connect", lower)
        engine.dispose()


def rows_beyond_one_statement(limit: int) -> int:
    """Rows of a file that are far more than one statement of ``limit`` parameters takes.

    At least ten times the limit (ten lookups, several round trips of INSERTs), in whole tens of
    thousands: 70,000 rows on PostgreSQL, 10,000 on SQLite at 999.
    """
    return max(10_000, (limit // 10_000 + 1) * 10_000)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))
