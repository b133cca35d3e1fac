"""Many rows at once, within each engine's limit on the parameters of one statement.

PostgreSQL takes at most 65,535 parameters in a statement (its wire protocol counts them in
16 bits); SQLite at most its ``SQLITE_LIMIT_VARIABLE_NUMBER`` (32,766 by default since 3.32,
999 before, and builds differ, so it is read from the connection). The importers therefore
never put a whole file into one statement: they insert with multi-row INSERTs of at most
``MAX_ROWS_PER_INSERT`` rows, sending ``STATEMENTS_PER_TRIP`` of them per round trip (an
executemany of one prepared statement), and look rows up with IN lists of bounded length.

Everything runs on the connection given (the ORM session's), inside its transaction, so an
import of any size stays all-or-nothing. The rows are plain dicts and tuples, never ORM
objects, and are consumed chunk by chunk.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnDefault,
    ColumnElement,
    Connection,
    Row,
    Select,
    String,
    Table,
    Update,
    any_,
    bindparam,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from rater import audit
from rater.audit import AuditEvent
from rater.extensions import table_of

T = TypeVar("T")

POSTGRES_MAX_PARAMETERS = 65_535
MAX_ROWS_PER_INSERT = 500
STATEMENTS_PER_TRIP = 40
MAX_KEYS_PER_LOOKUP = 10_000
# Parameters a lookup statement may hold besides its IN list.
_LOOKUP_RESERVE = 100


def parameter_limit(connection: Connection) -> int:
    """The most parameters one statement may hold on this connection's engine."""
    driver = connection.connection.driver_connection
    if isinstance(driver, sqlite3.Connection):
        return driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return POSTGRES_MAX_PARAMETERS


def chunked(values: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` consecutive values."""
    iterator = iter(values)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def rows_per_insert(connection: Connection, width: int) -> int:
    """Rows of ``width`` columns that one INSERT may carry on this connection."""
    return max(1, min(MAX_ROWS_PER_INSERT, parameter_limit(connection) // width))


def insert_rows(connection: Connection, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """INSERT ``rows`` (dicts with the same keys) into ``table``; the number inserted.

    Columns left out get their Python-side default (evaluated once for all rows, as one
    import's timestamps are one moment) or the database's. Values pass through each column
    type's bind processor, as SQLAlchemy's own execution would pass them.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    dialect = connection.dialect
    given = [table.c[name] for name in first]
    defaults = _python_defaults(table, list(first))
    columns = [*given, *defaults]
    prepare = _row_preparer(given, defaults, dialect)
    per_insert = rows_per_insert(connection, len(columns))
    full_sql = _insert_sql(dialect, table, columns, per_insert)
    count = 0
    for block in chunked(itertools.chain([first], iterator), per_insert * STATEMENTS_PER_TRIP):
        whole, rest = divmod(len(block), per_insert)
        params = [
            _flat(prepare, block[i * per_insert : (i + 1) * per_insert]) for i in range(whole)
        ]
        if params:
            connection.exec_driver_sql(full_sql, params)
        if rest:
            connection.exec_driver_sql(
                _insert_sql(dialect, table, columns, rest), _flat(prepare, block[-rest:])
            )
        count += len(block)
    return count


def update_rows(
    connection: Connection, statement: Update, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` once per row of parameters (an executemany: each execution carries
    one row's parameters, so no limit applies)."""
    if rows:
        connection.execute(statement, rows)


def insert_audit_events(
    connection: Connection, action: str, entity_type: str, events: Iterable[tuple[Any, Any, Any]]
) -> None:
    """The audit events (entity id, before, after) of a change made in bulk, one per entity.

    They name no user: bulk changes (imports) run from the command line.
    """
    for _, rows in audit.insert_many(action, entity_type, events, user_id=None):
        assert isinstance(rows, list)  # insert_many gives the list of its rows
        insert_rows(connection, table_of(AuditEvent), rows)


def select_in(
    connection: Connection, statement: Select, key: Column, values: Iterable[Any]
) -> Iterator[Row]:
    """The rows of ``statement`` whose ``key`` is one of ``values``, a bounded chunk of values
    per statement."""
    for where in _one_of_chunks(connection, key, values):
        yield from connection.execute(statement.where(where))


def update_in(
    connection: Connection, statement: Update, key: Column, values: Iterable[Any]
) -> None:
    """Run the UPDATE ``statement`` on the rows whose ``key`` is one of ``values``."""
    for where in _one_of_chunks(connection, key, values):
        connection.execute(statement.where(where))


def _one_of_chunks(
    connection: Connection, key: Column, values: Iterable[Any]
) -> Iterator[ColumnElement[bool]]:
    """``key`` is one of a chunk of ``values``, chunk by chunk.

    PostgreSQL: ``= ANY(array)``, one parameter however long the chunk (and a statement text
    the server plans once). SQLite: an IN list of at most as many values as the statement's
    parameters allow.
    """
    if connection.dialect.name == "postgresql":
        array = postgresql.ARRAY(String() if isinstance(key.type, String) else key.type)
        for chunk in chunked(values, MAX_KEYS_PER_LOOKUP):  # VARCHAR[] without a length
            yield key == any_(bindparam("keys", chunk, type_=array))
        return
    size = min(MAX_KEYS_PER_LOOKUP, parameter_limit(connection) - _LOOKUP_RESERVE)
    for chunk in chunked(values, max(1, size)):
        yield key.in_(chunk)


def _python_defaults(table: Table, given: Sequence[str]) -> dict[Column, Any]:
    """Values for the columns not given that have a Python-side scalar or callable default."""
    values = {}
    for column in table.columns:
        default = column.default
        if column.key in given or not isinstance(default, ColumnDefault):
            continue
        if default.is_scalar:
            values[column] = default.arg
        elif default.is_callable:
            values[column] = default.arg(None)
    return values


def _row_preparer(
    given: Sequence[Column], defaults: Mapping[Column, Any], dialect: Dialect
) -> Callable[[Mapping[str, Any]], list[Any]]:
    """A function from a row (dict) to its parameter values: the given columns' values, then
    the defaults (bound once: they are the same for every row)."""

    def processor(column: Column) -> Callable[[Any], Any] | None:
        return column.type.dialect_impl(dialect).bind_processor(dialect)

    processors = [
        (i, _same_as_last(p)) for i, column in enumerate(given) if (p := processor(column))
    ]
    names = [column.key for column in given]
    bound = [
        process(value) if (process := processor(column)) else value
        for column, value in defaults.items()
    ]

    def prepare(row: Mapping[str, Any]) -> list[Any]:
        values = [row[name] for name in names]
        for index, process in processors:
            values[index] = process(values[index])
        return values + bound

    return prepare


def _same_as_last(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process``, skipped when given the very object it was given last: the rows of one
    import share their timestamps and empty values (a row's values are never changed after it
    is given)."""
    last: list[Any] = [object(), None]

    def cached(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return cached


def _flat(prepare: Callable[[Mapping[str, Any]], list[Any]], rows: Sequence[Mapping]) -> tuple:
    values: list[Any] = []
    for row in rows:
        values.extend(prepare(row))
    return tuple(values)


def _insert_sql(dialect: Dialect, table: Table, columns: Sequence[Column], rows: int) -> str:
    """``INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ...`` in the driver's parameter style."""
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}[dialect.paramstyle]
    quote = dialect.identifier_preparer
    names = ", ".join(quote.format_column(column) for column in columns)
    one = "(" + ", ".join([marker] * len(columns)) + ")"
    return f"INSERT INTO {quote.format_table(table)} ({names}) VALUES " + ", ".join([one] * rows)
