"""Fixtures of the fault tests: PostgreSQL switches.

``pg_switch`` makes ONLY this run's own test database unavailable or read-only, from an
administrative connection to the server's maintenance database; nothing else on the shared
server is touched. Whatever a test switches is switched back at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import has_app_context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rater.extensions import db

# The load tests' fixtures (sim, study) and headless Chromium come from the plugins in
# tests/support/, loaded by tests/conftest.py.


class PostgresSwitch:
    """ALTER DATABASE on this run's own database; undone by ``restore``."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.name = url.database
        server = os.environ["RATER_TEST_DATABASE_URL"]
        admin_url = make_url(server).set(drivername="postgresql+psycopg")
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        assert self.name != admin_url.database, "never switch the shared database"

    def _run(self, *statements: str) -> None:
        _release_own_connections()  # the test's own pooled connections would be ended too
        with self.admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))

    def _end_connections(self) -> str:
        return (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
        )

    def unavailable(self) -> None:
        """Stands for a restart: no new connections, every open one ended."""
        self._run(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false', self._end_connections())

    def available(self) -> None:
        self._run(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def read_only(self) -> None:
        self._run(
            f'ALTER DATABASE "{self.name}" SET default_transaction_read_only = on',
            self._end_connections(),
        )

    def writable(self) -> None:
        self._run(f'ALTER DATABASE "{self.name}" RESET default_transaction_read_only')

    def restore(self) -> None:
        self.available()
        self.writable()
        self.admin.dispose()


def engine_of(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture
def pg_switch(database_url: str) -> Iterator[PostgresSwitch]:
    if engine_of(database_url) != "postgresql":
        pytest.skip("PostgreSQL-only fault")
    switch = PostgresSwitch(database_url)
    try:
        yield switch
    finally:
        switch.restore()


def _release_own_connections() -> None:
    if has_app_context():
        db.session.remove()
        db.engine.dispose()
