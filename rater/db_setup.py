"""Engine settings per database (SQLite: WAL, busy timeout); statements run together."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, event
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled


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


# A statement and its parameters: one set (a dict), or a list of sets to run it once per set.
Statement = tuple[Executable, Mapping[str, Any] | Sequence[Mapping[str, Any]]]


def execute_together(connection: Connection, statements: Sequence[Statement]) -> list[list[Any]]:
    """Run ``statements`` in order, in the connection's transaction; the rows of each.

    On PostgreSQL they go to the server as one batch (psycopg's pipeline mode): the client
    waits once for all of them instead of once per statement, and each runs on a plain driver
    cursor. Each statement is compiled by SQLAlchemy once per process
    (``_DriverStatement``) and its parameters are completed as SQLAlchemy's own execution
    would (literal values, Python-side column defaults that take no arguments, bind processors
    such as JSON's); they must be Core constructs (``text()`` cannot tell whether it gives
    rows). A statement with a list of parameter sets runs once per set and gives no rows; with
    an empty list it does not run. On SQLite (a statement is a function call there), or with a
    libpq older than 14 (no pipeline mode), the statements simply run one after the other
    through SQLAlchemy.

    Rows are named tuples on PostgreSQL and SQLAlchemy rows elsewhere: read them by position or
    by column name. A failure is raised as SQLAlchemy's exception for it (e.g. IntegrityError,
    or OperationalError for a full disk), as if that statement had run on its own; what the
    batch wrote is left to the caller's rollback.
    """
    statements = [(s, params) for s, params in statements if isinstance(params, Mapping) or params]
    if connection.dialect.name != "postgresql" or not psycopg.Pipeline.is_supported():
        return [_rows(connection.execute(statement, params)) for statement, params in statements]
    if not connection.in_transaction():
        connection.begin()  # as SQLAlchemy's own execution would: the caller's commit counts
    dialect, driver = connection.dialect, connection.connection.driver_connection
    try:
        with driver.pipeline():  # leaving it sends everything and receives every result
            writes = driver.cursor()  # statements that give no rows share one cursor
            cursors = [
                _driver_statement(statement, dialect, _names(params)).send(driver, params, writes)
                for statement, params in statements
            ]
        return [[] if cursor is writes else cursor.fetchall() for cursor in cursors]
    except psycopg.Error as error:
        raise _as_sqlalchemy_error(connection, error) from error


def _rows(result: Any) -> list[Any]:
    """The rows of one parameter set's statement (an executemany's RETURNING is not read)."""
    return result.all() if result.returns_rows and not result.context.executemany else []


def _names(params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The parameter names given (of the first set, when there are several)."""
    first = params if isinstance(params, Mapping) else params[0]
    return tuple(sorted(first))


@dataclass(frozen=True)
class _DriverStatement:
    """A statement compiled by SQLAlchemy for the driver, with what completes its parameters."""

    sql: str
    compiled: Compiled
    defaults: tuple[tuple[str, Any], ...]  # (parameter, column default) for absent values
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]
    escaped: dict[str, str]  # parameter name -> its name in the SQL, where SQLAlchemy escapes it
    returns_rows: bool

    def send(
        self,
        driver: psycopg.Connection,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        writes: psycopg.Cursor,
    ) -> psycopg.Cursor:
        """Queue the statement in the pipeline; the cursor that will hold its rows."""
        if not isinstance(params, Mapping):  # several sets: a write
            writes.executemany(self.sql, [self.parameters(values) for values in params])
            return writes
        cursor = driver.cursor(row_factory=namedtuple_row) if self.returns_rows else writes
        cursor.execute(self.sql, self.parameters(params))
        return cursor

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(given)
        for name, default in self.defaults:
            if name not in values:
                values[name] = default.arg(None) if default.is_callable else default.arg
        params = self.compiled.construct_params(values, escape_names=False)
        for name, process in self.processors:  # None too: JSON stores it as 'null', as SQLAlchemy
            params[name] = process(params[name])
        if self.escaped:
            return {self.escaped.get(name, name): value for name, value in params.items()}
        return params


@lru_cache(maxsize=256)
def _driver_statement(
    statement: Executable, dialect: Dialect, keys: tuple[str, ...]
) -> _DriverStatement:
    """Compile once per statement, dialect and set of parameter names (an INSERT's columns
    depend on the names given, as in SQLAlchemy's own execution)."""
    if not hasattr(statement, "exported_columns"):
        raise ValueError("statements run together are Core constructs, not text()")
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("statements run together take '= ANY(array)', not an expanding IN")
    defaults = [(c.key, c.default) for c in compiled.insert_prefetch]
    defaults += [(c.key, c.onupdate) for c in compiled.update_prefetch]
    processors = []
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    returns_rows = len(statement.exported_columns) > 0  # a SELECT, or DML with RETURNING
    escaped = dict(compiled.escaped_bind_names or {})
    return _DriverStatement(
        compiled.string, compiled, tuple(defaults), tuple(processors), escaped, returns_rows
    )


def _as_sqlalchemy_error(connection: Connection, error: Exception) -> BaseException:
    """The exception SQLAlchemy raises for ``error``, with what its execution does on a
    disconnect: when the connection is lost, or was opened while the database was read-only
    (the ``handle_error`` hook in rater.errors counts that as a disconnect), it is dropped and
    so is every connection the pool opened before it."""
    from rater.errors import READ_ONLY_STATES

    driver = connection.connection.driver_connection
    stale = connection.dialect.is_disconnect(error, driver, None)
    stale = stale or getattr(error, "sqlstate", None) in READ_ONLY_STATES
    if stale:
        pooled = connection.connection
        connection.invalidate(error)
        # SQLAlchemy's own disconnect handling does the same (there is no public call for it).
        connection.engine.pool._invalidate(pooled, error, _checkin=False)
    return DBAPIError.instance(
        None, None, error, psycopg.Error, connection_invalidated=stale, dialect=connection.dialect
    )
