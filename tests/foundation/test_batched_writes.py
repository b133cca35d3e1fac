"""``batched_writes``: statements sent as one batch on PostgreSQL, one by one on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from rater import audit
from rater.audit import AuditEvent
from rater.db_setup import batched_writes
from rater.extensions import db

EVENTS = AuditEvent.__table__


def _count(connection, action: str) -> int:
    return connection.scalar(select(func.count()).where(EVENTS.c.action == action))


def test_statements_run_in_order_in_the_callers_transaction(app, factory):
    user_id = factory.user("coordinator", role="coordinator").id
    events = [(n, {"n": n}, {"n": n + 1}) for n in range(3)]
    with db.engine.connect() as connection:
        with connection.begin() as transaction:
            with batched_writes(connection):
                driver = connection.connection.driver_connection
                if connection.dialect.name == "postgresql":
                    assert driver.pgconn.pipeline_status != 0  # one batch, one wait
                audit.record_many(connection, "test.batch", "thing", events, user_id=user_id)
                # Runs after the INSERT (in order), in the same transaction: it sees the rows.
                this_one = (EVENTS.c.action == "test.batch") & (EVENTS.c.entity_id == "1")
                connection.execute(update(EVENTS).where(this_one).values(action="test.changed"))
            assert _count(connection, "test.batch") == 2
            assert _count(connection, "test.changed") == 1
            transaction.rollback()
        assert _count(connection, "test.batch") == 0  # nothing was committed behind our back


def test_a_failure_in_the_batch_is_sqlalchemys_exception_and_nothing_is_kept(app, factory):
    user_id = factory.user("coordinator", role="coordinator").id
    good = [("1", None, {"n": 1})]
    with db.engine.connect() as connection:
        with pytest.raises(IntegrityError), connection.begin(), batched_writes(connection):
            audit.record_many(connection, "test.fails", "thing", good, user_id=user_id)
            # No such user: the foreign key fails (on PostgreSQL, only when the batch ends).
            audit.record_many(connection, "test.fails", "thing", good, user_id=user_id + 99)
        assert _count(connection, "test.fails") == 0
        connection.rollback()  # ends the count's transaction
        with connection.begin(), batched_writes(connection):  # the connection is usable again
            audit.record_many(connection, "test.after", "thing", good, user_id=user_id)
        assert _count(connection, "test.after") == 1
