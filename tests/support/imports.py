"""Helpers for the tests of large imports (sessions and ratings)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from rater.extensions import db

# SQLite's default SQLITE_MAX_VARIABLE_NUMBER since 3.32 (Debian builds raise it to 250,000):
# the limit most installations meet, and the one a large import must stay under.
SQLITE_DEFAULT_VARIABLES = 32_766


@pytest.fixture
def default_parameter_limits(app) -> Iterator[None]:
    """The test's connection limited as SQLite is built by default (PostgreSQL's 65,535 is fixed).

    The test runs on one connection (its rolled-back transaction), so the limit is set there.
    """
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    limit = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
    before = driver.setlimit(limit, SQLITE_DEFAULT_VARIABLES)
    try:
        yield
    finally:
        driver.setlimit(limit, before)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))
