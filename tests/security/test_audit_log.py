"""Changes to users leave audit events; coordinators browse and filter them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from rater.audit import AuditEvent, record
from rater.auth.service import set_active
from rater.extensions import db
from rater.timeutil import utcnow


def _events(action_prefix: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action.startswith(action_prefix))
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def test_adding_and_deactivating_users_leaves_events(factory):
    factory.user("r1")
    set_active("r1", False)
    db.session.commit()
    add_event, deactivate_event = _events("user.")
    assert (add_event.action, add_event.after) == ("user.add", {"username": "r1", "role": "rater"})
    assert deactivate_event.action == "user.deactivate"
    assert (deactivate_event.before, deactivate_event.after) == (
        {"active": True},
        {"active": False},
    )
    assert deactivate_event.entity_type == "user" and deactivate_event.at is not None


@pytest.mark.usefixtures("factory")
def test_users_command_leaves_events(runner):
    result = runner.invoke(args=["users", "add", "r9", "--role", "rater", "--password-stdin"],
                           input="long-enough-pw\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["users", "deactivate", "r9"]).exit_code == 0
    assert [e.action for e in _events("user.")] == ["user.add", "user.deactivate"]


def test_audit_page_lists_and_filters_events(client, auth, factory):
    coordinator = factory.user("coord", "coordinator")
    factory.user("r1")
    record("assignment.move", "assignment", 7, before={"rater": "r1"}, after={"rater": "r2"},
           user_id=coordinator.id)  # fmt: skip
    old = record("user.activate", "user", 99, user_id=coordinator.id)
    old.at = utcnow() - timedelta(days=40)
    db.session.commit()
    auth.login("coord")
    page = client.get("/audit/").get_data(as_text=True)
    assert (
        "<td>user.add</td>" in page
        and "<td>assignment.move</td>" in page
        and "(command line)" in page
    )
    assert "{&#34;rater&#34;: &#34;r1&#34;}" in page  # before → after, escaped
    only_moves = client.get("/audit/?user=coord&action=assignment.move").get_data(as_text=True)
    assert "<td>assignment.move</td>" in only_moves and "<td>user.add</td>" not in only_moves
    by_prefix = client.get("/audit/?action=user.").get_data(as_text=True)
    assert "<td>user.add</td>" in by_prefix and "<td>assignment.move</td>" not in by_prefix
    by_entity = client.get("/audit/?entity=assignment&entity_id=7").get_data(as_text=True)
    assert "<td>assignment.move</td>" in by_entity and "<td>user.add</td>" not in by_entity
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    recent = client.get(f"/audit/?since={since}").get_data(as_text=True)
    assert "<td>user.activate</td>" not in recent and "<td>user.add</td>" in recent
    until = (utcnow() - timedelta(days=30)).date().isoformat()
    older = client.get(f"/audit/?until={until}").get_data(as_text=True)
    assert "<td>user.activate</td>" in older and "<td>user.add</td>" not in older


def test_audit_page_paginates(client, auth, factory):
    factory.user("coord", "coordinator")
    for i in range(60):
        record("rating.score", "rating", i, after={"score": i % 5})
    db.session.commit()
    auth.login("coord")
    first = client.get("/audit/?action=rating.score").get_data(as_text=True)
    assert first.count("rating.score</td>") == 50 and 'rel="next"' in first
    second = client.get("/audit/?action=rating.score&page=2").get_data(as_text=True)
    assert second.count("rating.score</td>") == 10 and 'rel="next"' not in second
    assert 'rel="prev"' in second and "action=rating.score" in second


def test_bad_filters_get_a_message_not_an_error(client, auth, factory):
    factory.user("coord", "coordinator")
    auth.login("coord")
    response = client.get("/audit/?since=yesterday&until=9999-12-31&page=-3")
    assert response.status_code == 400
    assert "is not a date as YYYY-MM-DD" in response.get_data(as_text=True)
    assert client.get("/audit/?until=9999-12-31&page=abc").status_code == 200


@pytest.mark.usefixtures("app")
def test_audit_page_queries_do_not_grow_with_its_rows(client, auth, factory):
    """One query for the events, one for the action list, one per kind of entity shown:
    however many rows the page has (no query per row)."""
    from sqlalchemy import event

    coordinator = factory.user("coord", "coordinator")
    rater = factory.user("r1")
    auth.login("coord")

    def statements_of_page() -> int:
        client.get("/audit/")  # warm up: the user loader runs once per request
        statements = []

        def count(_conn, _cursor, statement, *_args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get("/audit/").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    def add_events(start: int, n: int) -> None:
        for i in range(start, start + n):
            session = factory.session(f"P{i:02d}-S01", patient=f"P{i:02d}")
            assignment = factory.assignment(session, rater)
            record("assignment.move", "assignment", assignment.id, user_id=coordinator.id)
            record("user.activate", "user", rater.id, user_id=coordinator.id)
        db.session.commit()

    add_events(0, 2)
    few = statements_of_page()
    add_events(2, 20)
    assert statements_of_page() == few


def test_events_name_sessions_and_users_and_link_them(client, auth, factory):
    coordinator = factory.user("coord", "coordinator")
    rater = factory.user("r1")
    session = factory.session("P01-S02", number=2)
    assignment = factory.assignment(session, rater)
    record("assignment.move", "assignment", assignment.id, user_id=coordinator.id)
    record("consensus.set", "consensus_score", "P01-S02:GHES_1", user_id=coordinator.id)
    db.session.commit()
    auth.login("coord")
    page = client.get("/audit/").get_data(as_text=True)
    assert f'<a href="/assignments/{assignment.id}/rate">P01-S02 · r1</a>' in page
    assert '<a href="/reliability/consensus/P01-S02">P01-S02 · GHES_1</a>' in page
    assert '<a href="/users/#user-r1">r1</a>' in page  # the user.add event of r1
    assert '<a href="/audit/?user=coord"' in page
    # the action filter is a list of the actions recorded, with their groups
    assert re.search(r'<option value="assignment\."\s*>assignment: every action</option>', page)
    assert re.search(r'<option value="consensus\.set"\s*>consensus\.set</option>', page)
