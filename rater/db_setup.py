"""Engine settings per database: SQLite runs in WAL mode with a busy timeout; batched writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from flask import Flask
from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError


def configure_engine(app: Flask) -> None:
    uri: str = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgresql://"):
        # psycopg 3 is the driver we ship.
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + uri.removeprefix(
            "postgresql://"
        )
    if uri.startswith("sqlite"):
        _ensure_sqlite_folder(uri)
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("connect_args", {"timeout": 30})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _ensure_sqlite_folder(uri: str) -> None:
    """Create the folder of a SQLite file (e.g. ``instance/`` of a fresh clone)."""
    database = make_url(uri).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def batched_writes(connection: Connection) -> Iterator[None]:
    """Send the statements run inside to PostgreSQL as one batch (psycopg's pipeline mode).

    Each statement still runs in order, in the same transaction, but the client waits for the
    server once, at the end, instead of once per statement. Only statements whose results are
    not read may run inside (no RETURNING, no reads, no single-row INSERT with implicit
    RETURNING: use ``insert(...).inline()``). On SQLite, where a statement is a function call,
    the statements simply run one after the other.

    A failure reported at the end of the batch is raised as SQLAlchemy's exception for it
    (e.g. OperationalError for a full disk), as if a single statement had failed.
    """
    driver = connection.connection.driver_connection
    if connection.dialect.name != "postgresql" or not psycopg.Pipeline.is_supported():
        yield  # SQLite, or a libpq older than 14 (no pipeline mode)
        return
    try:
        with driver.pipeline():
            yield
    except psycopg.Error as error:
        raise _as_sqlalchemy_error(connection, error) from error


def _as_sqlalchemy_error(connection: Connection, error: Exception) -> BaseException:
    """The exception SQLAlchemy raises for ``error``; the connection is dropped when it is lost
    or was opened while the database was read-only (as the ``handle_error`` hook does)."""
    from rater.errors import READ_ONLY_STATES

    driver = connection.connection.driver_connection
    lost = connection.dialect.is_disconnect(error, driver, None)
    if lost or getattr(error, "sqlstate", None) in READ_ONLY_STATES:
        connection.invalidate(error)
    return DBAPIError.instance(
        None, None, error, psycopg.Error, connection_invalidated=lost, dialect=connection.dialect
    )
