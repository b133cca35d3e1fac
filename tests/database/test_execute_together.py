"""``execute_all``: prebuilt statements run in order through SQLAlchemy's ``Connection.execute``.

Autosave runs its statements this way. These tests check that each statement goes through
SQLAlchemy's own execution (so column defaults, JSON, ``onupdate``, transactions and error
handling are SQLAlchemy's), the shape of the answer, and that a lost connection is handled by
SQLAlchemy itself: the connection is invalidated and so is every connection pooled before it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import JSON, String, bindparam, event, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from rater import audit
from rater.audit import AuditEvent
from rater.db_setup import execute_all
from rater.extensions import db
from rater.rating.models import Rating
from rater.rating.service import start_rating

EVENTS = AuditEvent.__table__
STORED = (EVENTS.c.user_id, EVENTS.c.entity_id, EVENTS.c.before, EVENTS.c.after)


def _count(connection, action: str) -> int:
    return connection.scalar(select(func.count()).where(EVENTS.c.action == action))


def _events(connection, action: str) -> list[tuple]:
    query = select(*STORED).where(EVENTS.c.action == action).order_by(EVENTS.c.entity_id)
    return [tuple(row) for row in connection.execute(query)]


@pytest.fixture
def executions():
    """The statements SQLAlchemy's execution sends to the driver, as (SQL, executemany)."""
    sent: list[tuple[str, bool]] = []

    def record(_conn, _cursor, statement, _parameters, _context, executemany):
        sent.append((statement, executemany))

    event.listen(db.engine, "before_cursor_execute", record)
    yield sent
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.mark.usefixtures("app")
def test_statements_run_in_order_in_the_callers_transaction(factory, executions):
    user_id = factory.user("coordinator", role="coordinator").id
    events = [(n, {"n": n}, {"n": n + 1}) for n in range(3)]
    this_one = (EVENTS.c.action == "test.batch") & (EVENTS.c.entity_id == "1")
    with db.engine.connect() as connection:
        with connection.begin() as transaction:
            executions.clear()
            results = execute_all(
                connection,
                [
                    *audit.insert_many("test.batch", "thing", events, user_id=user_id),
                    # Runs after the INSERT (in order), in the same transaction: sees its rows.
                    (update(EVENTS).where(this_one).values(action="test.changed"), {}),
                    (select(func.count()).where(EVENTS.c.action == "test.batch"), {}),
                    (select(EVENTS.c.entity_id).where(EVENTS.c.action == "test.changed"), {}),
                ],
            )
            assert [list(map(tuple, rows)) for rows in results] == [[], [], [(2,)], [("1",)]]
            assert results[3][0].entity_id == "1"  # rows are read by name too
            # Each statement went through SQLAlchemy's execution; the three events as one
            # executemany.
            assert [many for _, many in executions] == [True, False, False, False]
            assert executions[0][0].startswith("INSERT INTO audit_events")
            transaction.rollback()
        assert _count(connection, "test.batch") + _count(connection, "test.changed") == 0


@pytest.mark.usefixtures("app")
def test_what_is_stored_is_what_sqlalchemy_stores(factory):
    """Column defaults (``at`` left out), JSON (None is JSON null), literal values."""
    user_id = factory.user("coordinator", role="coordinator").id
    rows = [
        {"user_id": user_id, "action": action, "entity_type": "thing", "entity_id": str(n),
         "before": before, "after": {"n": n, "text": "ä'\""}}
        for action in ("test.sqlalchemy", "test.together")
        for n, before in enumerate([None, {"n": 0}, [1, 2]])
    ]  # fmt: skip
    with db.engine.begin() as connection:
        connection.execute(insert(EVENTS), rows[:3])
        execute_all(connection, [(insert(EVENTS).inline(), rows[3:])])
    with db.engine.connect() as connection:
        assert _events(connection, "test.together") == _events(connection, "test.sqlalchemy")
        stamped = select(func.count()).where(EVENTS.c.action.like("test.%"), EVENTS.c.at.is_(None))
        assert connection.scalar(stamped) == 0
        null_json = select(func.count()).where(EVENTS.c.before.is_(None))
        assert connection.scalar(null_json) == 0  # JSON null, as SQLAlchemy stores None


@pytest.mark.usefixtures("app")
def test_a_failure_is_sqlalchemys_exception_and_nothing_is_kept(factory):
    user_id = factory.user("coordinator", role="coordinator").id
    good = [("1", None, {"n": 1})]
    with db.engine.connect() as connection:
        with pytest.raises(IntegrityError), connection.begin():
            execute_all(
                connection,
                [
                    *audit.insert_many("test.fails", "thing", good, user_id=user_id),
                    # No such user: the foreign key fails.
                    *audit.insert_many("test.fails", "thing", good, user_id=user_id + 99),
                ],
            )
        assert _count(connection, "test.fails") == 0
        connection.rollback()  # ends the count's transaction
        with connection.begin():  # the connection is usable again
            execute_all(connection, audit.insert_many("test.after", "thing", good, user_id=user_id))
        assert _count(connection, "test.after") == 1


@pytest.mark.usefixtures("app")
def test_any_statement_sqlalchemy_runs_is_accepted():
    """An expanding IN and ``text()`` run on both engines (nothing bypasses SQLAlchemy)."""
    expanding = select(func.count()).where(EVENTS.c.action.in_(["a", "b"]))
    with db.engine.connect() as connection:
        assert execute_all(connection, [(expanding, {}), (text("SELECT 1"), {})]) == [
            [(0,)],
            [(1,)],
        ]


@pytest.mark.usefixtures("app")
def test_an_update_sets_what_sqlalchemy_sets_on_update(factory):
    rating = start_rating(factory.assignment(factory.session(), factory.user("rater1")))
    db.session.commit()
    ratings = Rating.__table__
    by_id = update(ratings).where(ratings.c.id == bindparam("row_id"))
    stamped = select(ratings.c.updated_at, ratings.c.audio_position)
    with db.engine.begin() as connection:
        before = connection.execute(stamped).one()
        execute_all(connection, [(by_id, [{"row_id": rating.id, "audio_position": 12.5}])])
        after = connection.execute(stamped).one()
    assert after.audio_position == 12.5
    assert after.updated_at > before.updated_at  # the column's onupdate ran


@pytest.mark.usefixtures("app")
def test_writes_without_a_begun_transaction_are_kept_by_commit(factory):
    """As with SQLAlchemy's own execution, the first statement begins the transaction."""
    user_id = factory.user("coordinator", role="coordinator").id
    with db.engine.connect() as connection:
        good = [("1", None, {"n": 1})]
        execute_all(connection, audit.insert_many("test.begun", "thing", good, user_id=user_id))
        connection.commit()
    with db.engine.connect() as connection:  # another connection sees it: it was committed
        assert _count(connection, "test.begun") == 1


@pytest.mark.usefixtures("app")
def test_escaped_parameter_names_and_empty_lists(executions):
    """A name SQLAlchemy renders differently in the SQL still gets its value and processor;
    a statement given no parameter sets does not run and gives no rows."""
    as_text = select(bindparam("a b", type_=JSON).cast(String))
    never = insert(EVENTS).inline()
    with db.engine.connect() as connection:
        executions.clear()
        rows = execute_all(connection, [(never, []), (as_text, {"a b": {"n": 1}})])
    assert rows == [[], [('{"n": 1}',)]]
    assert len(executions) == 1  # the INSERT with no values did not run (it would fail)


@pytest.mark.usefixtures("app")
def test_a_lost_connection_is_invalidated_with_every_connection_pooled_before_it():
    """SQLAlchemy's own disconnect handling: the failing connection is dropped, and a
    connection the pool held from before is not handed out again."""
    with db.engine.connect() as older, db.engine.connect() as connection:
        pooled_before = older.connection.driver_connection
        older.close()  # back to the pool
        connection.connection.driver_connection.close()  # as if the server had gone away
        with pytest.raises(DBAPIError) as raised:
            execute_all(connection, [(select(1), {})])
        assert raised.value.connection_invalidated
        assert connection.invalidated
    with db.engine.connect() as fresh:
        assert execute_all(fresh, [(select(1), {})]) == [[(1,)]]
        assert fresh.connection.driver_connection is not pooled_before
