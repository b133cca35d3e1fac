"""Scratch PostgreSQL databases for tests and benchmarks (created, then dropped)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def scratch_postgres_database(
    server_url: str, prefix: str = "rater_test", *, durable: bool = True
) -> Iterator[str]:
    """A new database on the server of ``server_url``; its URL is yielded, then it is dropped.

    Runs that share a server never meet: each gets a database of its own. ``durable=False``
    lets commits return before their WAL reaches the disk (``synchronous_commit = off``): what
    a transaction sees is unchanged, only a crash of the server could lose the last commits,
    which a throwaway database does not mind. Benchmarks keep the default.
    """
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        if not durable:
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
