"""A test inside one database transaction that is rolled back at its end.

SQLAlchemy's pattern "joining a session into an external transaction": the test's connection
begins a transaction; the app's sessions are bound to that connection with
``join_transaction_mode="create_savepoint"`` (set by tests/conftest.py), so what the code under
test commits only releases a savepoint, and the rollback at the end leaves the database as it
was. Code that asks ``db.engine`` for a transaction of its own (autosave, ``rater`` commands)
gets a savepoint of the same connection (``JoinedEngine``). Savepoints nest where real
transactions would not: when the session's savepoint is opened before such a transaction and
rolled back after it, the rollback takes that transaction's writes along, and SQLite drops a
savepoint taken inside one that is released. Tests where that happens, and tests with threads
or connections of their own, are marked ``@pytest.mark.commits`` and commit for real; a test
that commits the test's transaction itself is told so at its end.

Flask-SQLAlchemy's session picks the engine of the model's bind key from ``db.engines`` and
ignores a ``bind`` given to the session; ``JoinedSession`` (its documented way to customise the
session is a subclass) uses the bound connection, as discussed in
pallets-eco/flask-sqlalchemy#1167.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask_sqlalchemy.session import Session
from sqlalchemy import Connection, Engine, event

from rater.extensions import db


class JoinedSession(Session):
    """Flask-SQLAlchemy's session that uses the connection it is bound to, when it is bound."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any):
        if bind is None and self.bind is not None:
            return self.bind
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


class JoinedEngine:
    """Stands in for the engine while a test runs in one transaction.

    A transaction or a connection asked of it is a savepoint of the test's connection (released
    at the end of ``begin()``, rolled back at the end of ``connect()``, as a connection closed
    without commit would be); anything else is the real engine's (``url``, ``dialect``, ...).
    """

    def __init__(self, engine: Engine, connection: Connection) -> None:
        self._engine = engine
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self._connection.begin_nested():
            yield self._connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        savepoint = self._connection.begin_nested()
        try:
            yield self._connection
        finally:
            if savepoint.is_active:
                savepoint.rollback()


def _heard(*args: Any) -> None:
    """A listener that does nothing (see ``use_joined_sessions``)."""


def use_joined_sessions() -> None:
    """Make the app's sessions ``JoinedSession``s (once per run, in the shared app's context)."""
    db.session.session_factory.class_ = JoinedSession
    db.session.configure(join_transaction_mode="create_savepoint")
    # A connection hears the engine's events only if the engine had a listener when the
    # connection was made; tests that count statements listen on the engine after the test's
    # connection exists.
    event.listen(db.engine, "before_cursor_execute", _heard)


@contextmanager
def rolled_back_transaction() -> Iterator[None]:
    """Run the block in a transaction of one connection that is rolled back at its end."""
    engine = db.engine
    connection = engine.connect()
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        # Python's sqlite3 begins a transaction only before a write, so a savepoint taken first
        # would be the outermost transaction and releasing it would commit. With the module's
        # own transaction handling off, BEGIN is ours to send.
        driver = connection.connection.driver_connection
        isolation = driver.isolation_level
        driver.isolation_level = None
    transaction = connection.begin()
    if sqlite:
        connection.exec_driver_sql("BEGIN")
    engines = db.engines  # the app's engine of each bind key (None: the default one)
    engines[None] = JoinedEngine(engine, connection)
    db.session.configure(bind=connection)
    try:
        yield
    finally:
        engines[None] = engine
        try:
            db.session.remove()
        finally:
            db.session.configure(bind=None)
            committed = not transaction.is_active
            if not committed:
                transaction.rollback()
            if sqlite:
                driver.isolation_level = isolation
            connection.close()
    if committed:
        raise AssertionError(
            "the test committed its connection's transaction: mark it @pytest.mark.commits"
        )
