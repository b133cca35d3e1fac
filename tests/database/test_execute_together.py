"""``execute_together``: statements sent as one batch on PostgreSQL, one by one on SQLite.

On PostgreSQL the statements bypass SQLAlchemy's execution (compiled once, run on driver
cursors in pipeline mode), so these tests check that what is stored and read is what
SQLAlchemy's own execution stores and reads.
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import JSON, String, bindparam, event, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from rater import audit
from rater.audit import AuditEvent
from rater.db_setup import execute_together
from rater.extensions import db
from rater.rating.models import Rating
from rater.rating.service import start_rating

# The tests open connections of their own and commit or roll back their transactions.
pytestmark = pytest.mark.commits

EVENTS = AuditEvent.__table__
STORED = (EVENTS.c.user_id, EVENTS.c.entity_id, EVENTS.c.before, EVENTS.c.after)


def _count(connection, action: str) -> int:
    return connection.scalar(select(func.count()).where(EVENTS.c.action == action))


def _events(connection, action: str) -> list[tuple]:
    query = select(*STORED).where(EVENTS.c.action == action).order_by(EVENTS.c.entity_id)
    return [tuple(row) for row in connection.execute(query)]


@pytest.fixture
def statements_sent(monkeypatch):
    """Counts what goes through SQLAlchemy's execution and how many pipelines are opened."""
    counts = {"sqlalchemy": 0, "pipelines": 0}

    def count(*args, **kwargs):
        counts["sqlalchemy"] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    pipeline = psycopg.Connection.pipeline

    def counted_pipeline(self):
        counts["pipelines"] += 1
        return pipeline(self)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted_pipeline)
    yield counts
    event.remove(db.engine, "before_cursor_execute", count)


def test_statements_run_in_order_in_the_callers_transaction(app, factory, statements_sent):
    user_id = factory.user("coordinator", role="coordinator").id
    events = [(n, {"n": n}, {"n": n + 1}) for n in range(3)]
    this_one = (EVENTS.c.action == "test.batch") & (EVENTS.c.entity_id == "1")
    with db.engine.connect() as connection:
        with connection.begin() as transaction:
            statements_sent.update(sqlalchemy=0, pipelines=0)
            results = execute_together(
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
            if connection.dialect.name == "postgresql":  # one batch, no SQLAlchemy execution
                assert statements_sent == {"sqlalchemy": 0, "pipelines": 1}
            transaction.rollback()
        assert _count(connection, "test.batch") + _count(connection, "test.changed") == 0


def test_what_is_stored_is_what_sqlalchemy_stores(app, factory):
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
        execute_together(connection, [(insert(EVENTS).inline(), rows[3:])])
    with db.engine.connect() as connection:
        assert _events(connection, "test.together") == _events(connection, "test.sqlalchemy")
        stamped = select(func.count()).where(EVENTS.c.action.like("test.%"), EVENTS.c.at.is_(None))
        assert connection.scalar(stamped) == 0
        null_json = select(func.count()).where(EVENTS.c.before.is_(None))
        assert connection.scalar(null_json) == 0  # JSON null, as SQLAlchemy stores None


def test_a_failure_is_sqlalchemys_exception_and_nothing_is_kept(app, factory):
    user_id = factory.user("coordinator", role="coordinator").id
    good = [("1", None, {"n": 1})]
    with db.engine.connect() as connection:
        with pytest.raises(IntegrityError), connection.begin():
            execute_together(
                connection,
                [
                    *audit.insert_many("test.fails", "thing", good, user_id=user_id),
                    # No such user: the foreign key fails (on PostgreSQL, when the batch ends).
                    *audit.insert_many("test.fails", "thing", good, user_id=user_id + 99),
                ],
            )
        assert _count(connection, "test.fails") == 0
        connection.rollback()  # ends the count's transaction
        with connection.begin():  # the connection is usable again
            execute_together(
                connection, audit.insert_many("test.after", "thing", good, user_id=user_id)
            )
        assert _count(connection, "test.after") == 1


def test_an_expanding_in_is_refused_where_it_cannot_run(app):
    """On PostgreSQL a list parameter must be ``= ANY(array)``; SQLite runs ``IN`` as it is."""
    query = select(func.count()).where(EVENTS.c.action.in_(["a", "b"]))
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            with pytest.raises(ValueError, match="ANY"):
                execute_together(connection, [(query, {})])
        else:
            assert execute_together(connection, [(query, {})]) == [[(0,)]]


def test_an_update_sets_what_sqlalchemy_sets_on_update(app, factory):
    rating = start_rating(factory.assignment(factory.session(), factory.user("rater1")))
    db.session.commit()
    ratings = Rating.__table__
    by_id = update(ratings).where(ratings.c.id == bindparam("row_id"))
    stamped = select(ratings.c.updated_at, ratings.c.audio_position)
    with db.engine.begin() as connection:
        before = connection.execute(stamped).one()
        execute_together(connection, [(by_id, [{"row_id": rating.id, "audio_position": 12.5}])])
        after = connection.execute(stamped).one()
    assert after.audio_position == 12.5
    assert after.updated_at > before.updated_at  # the column's onupdate ran


def test_writes_without_a_begun_transaction_are_kept_by_commit(app, factory):
    """As with SQLAlchemy's own execution, the first statement begins the transaction."""
    user_id = factory.user("coordinator", role="coordinator").id
    with db.engine.connect() as connection:
        good = [("1", None, {"n": 1})]
        execute_together(
            connection, audit.insert_many("test.begun", "thing", good, user_id=user_id)
        )
        connection.commit()
    with db.engine.connect() as connection:  # another connection sees it: it was committed
        assert _count(connection, "test.begun") == 1


def test_parameter_names_that_sqlalchemy_escapes_and_empty_lists(app):
    """A name SQLAlchemy renders differently in the SQL still gets its value and processor;
    a statement given no parameter sets does not run."""
    as_text = select(bindparam("a b", type_=JSON).cast(String))
    never = insert(EVENTS).inline()
    with db.engine.connect() as connection:
        rows = execute_together(connection, [(never, []), (as_text, {"a b": {"n": 1}})])
        assert rows == [[('{"n": 1}',)]]  # the INSERT with no values did not run (it would fail)


def test_text_is_refused_where_it_cannot_run(app):
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            with pytest.raises(ValueError, match="text"):
                execute_together(connection, [(text("SELECT 1"), {})])
        else:
            assert execute_together(connection, [(text("SELECT 1"), {})]) == [[(1,)]]
