"""Engine settings per database (SQLite: WAL, busy timeout); prebuilt statements run in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Row, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.sql import Executable


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
def _sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# A statement and its parameters: one set (a dict), or a list of sets to run it once per set.
Statement = tuple[Executable, Mapping[str, Any] | Sequence[Mapping[str, Any]]]


def execute_all(
    connection: Connection, statements: Sequence[Statement]
) -> list[Sequence[Row[Any]]]:
    """Run prebuilt ``statements`` in order through ``Connection.execute``; the rows of each.

    They run in the connection's transaction (the first one begins it, as any execution
    does). A statement with a list of parameter sets runs as one executemany and gives no
    rows; with an empty list it does not run (and gives no rows). Errors are SQLAlchemy's own,
    with its disconnect handling: a lost connection is invalidated by SQLAlchemy itself.
    """
    results: list[Sequence[Row[Any]]] = []
    for statement, params in statements:
        if isinstance(params, Mapping):
            result = connection.execute(statement, params)
            results.append(result.all() if result.returns_rows else [])
            continue
        if params:
            connection.execute(statement, list(params))
        results.append([])
    return results
