"""Autosave: idempotent retries, per-field version checks, locks, validation and audit events."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from rater.audit import AuditEvent
from rater.auth.models import User
from rater.extensions import db
from rater.rating.autosave import (
    MAX_CHANGES,
    MAX_DESCRIPTION_LENGTH,
    MAX_HOMEWORK_ENTRIES,
    MAX_NOTE_LENGTH,
    MAX_NOTES,
    AutosaveRefused,
    apply_autosave,
)
from rater.rating.models import (
    AutosaveBatch,
    HomeworkEntry,
    ItemScore,
    Note,
    Rating,
)
from rater.states import AssignmentStatus
from rater.timeutil import utcnow
from tests.rating.helpers import VISITORS, build_study, login_as, started


@pytest.fixture
def rated(auth, factory):
    """The assigned rater logged in with a rating started an hour ago; returns (url, rating)."""
    study = build_study(factory)
    rating = started(study.assignment)
    rating.created_at = utcnow() - timedelta(hours=1)  # room for active time (<= wall time)
    db.session.commit()
    login_as(auth, "rater")
    return f"/assignments/{study.id}/autosave", rating


def save(client, url, base_version, *changes):
    return client.post(url, json={"base_version": base_version, "changes": list(changes)})


def saved(client, url, base_version, *changes) -> dict:
    response = save(client, url, base_version, *changes)
    assert response.status_code == 200, response.json
    return response.json


def fresh(rating: Rating) -> Rating:
    db.session.expire_all()
    return db.session.get(Rating, rating.id)


def test_scores_notes_homework_difficulties_position_active(client, rated):
    url, rating = rated
    response = save(
        client,
        url,
        1,
        {"op": "score", "item": "GHES_1", "value": 3, "base": None},
        {"op": "note.put", "client_id": "n-1", "seconds": 12.34, "text": "reviews diary"},
        {
            "op": "homework.put",
            "client_id": "h-1",
            "homework_type": "behavioural",
            "completion": "partly",
            "description": "walks",
        },
        {"op": "difficulties", "values": ["lack of time", "negative events"]},
        {"op": "position", "seconds": 65.5},
        {"op": "active", "seconds": 30},
    )
    assert response.status_code == 200, response.json
    assert response.json["version"] == 2 and response.json["applied"] == 6
    assert response.json["others_changed"] is False
    r = fresh(rating)
    assert {s.item_code: s.score for s in r.scores} == {"GHES_1": 3}
    assert [(n.client_id, n.audio_seconds, n.text) for n in r.notes] == [
        ("n-1", 12.34, "reviews diary")
    ]
    entry = db.session.scalar(select(HomeworkEntry).where(HomeworkEntry.rating_id == r.id))
    assert (entry.kind, entry.homework_type, entry.completion) == (
        "reported_completed",
        "behavioural",
        "partly",
    )
    assert sorted(d.difficulty_type for d in r.difficulties) == ["lack of time", "negative events"]
    assert r.audio_position == 65.5 and r.active_seconds == 30


def test_a_retried_save_never_duplicates(client, rated):
    url, _rating = rated
    batch = [
        {"op": "note.put", "client_id": "n-1", "seconds": 5, "text": "a", "base": None},
        {"op": "score", "item": "GHES_2", "value": 1, "base": None},
        {
            "op": "homework.put",
            "client_id": "h-1",
            "homework_type": "cognitive",
            "completion": None,
            "description": "",
            "base": None,
        },
    ]
    first = save(client, url, 1, *batch)
    retry = save(client, url, 1, *batch)  # the answer to the first was lost; same batch again
    assert first.status_code == 200 and retry.status_code == 200
    assert retry.json["applied"] == 0
    assert retry.json["version"] == first.json["version"] == 2
    assert db.session.query(Note).count() == 1
    assert db.session.query(HomeworkEntry).count() == 1
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "score.change"))
    assert len(list(events)) == 1


def test_another_tab_cannot_overwrite_newer_changes(client, rated):
    url, rating = rated
    saved(client, url, 1, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    # A second tab still at version 1, believing GHES_1 is unscored:
    stale = save(client, url, 1, {"op": "score", "item": "GHES_1", "value": 4, "base": None})
    assert stale.status_code == 409
    assert "changed in another tab" in stale.json["error"]
    assert stale.json["conflicts"] == ["score:GHES_1"]
    assert stale.json["version"] == 2
    assert {s.item_code: s.score for s in fresh(rating).scores} == {"GHES_1": 2}
    # Without a per-field base, a stale version is a conflict too.
    bare = save(client, url, 1, {"op": "score", "item": "GHES_1", "value": 4})
    assert bare.status_code == 409


def test_stale_tab_may_still_save_fields_nobody_else_changed(client, rated):
    url, rating = rated
    saved(client, url, 1, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    other = save(
        client,
        url,
        1,
        {"op": "score", "item": "GHES_3", "value": 1, "base": None},
        {"op": "position", "seconds": 100},
    )
    assert other.status_code == 200
    assert other.json["others_changed"] is True and other.json["version"] == 3
    assert {s.item_code: s.score for s in fresh(rating).scores} == {"GHES_1": 2, "GHES_3": 1}


def test_a_conflict_applies_nothing_of_its_batch(client, rated):
    url, rating = rated
    saved(client, url, 1, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    response = save(
        client,
        url,
        1,
        {"op": "score", "item": "GHES_4", "value": 0, "base": None},
        {"op": "score", "item": "GHES_1", "value": 3, "base": None},
    )
    assert response.status_code == 409
    assert {s.item_code for s in fresh(rating).scores} == {"GHES_1"}
    assert fresh(rating).version == 2


def test_note_edit_and_delete_with_bases(client, rated):
    url, rating = rated
    put = {"op": "note.put", "client_id": "n", "seconds": 3, "text": "first", "base": None}
    saved(client, url, 1, put)
    edit = {**put, "text": "second", "base": {"seconds": 3, "text": "first"}}
    saved(client, url, 2, edit)
    # A tab that still thinks the note says "first" cannot delete the edited note.
    stale = {"op": "note.delete", "client_id": "n", "base": {"seconds": 3, "text": "first"}}
    assert save(client, url, 2, stale).status_code == 409
    delete = {"op": "note.delete", "client_id": "n", "base": {"seconds": 3, "text": "second"}}
    saved(client, url, 3, delete)
    assert fresh(rating).notes == []
    assert save(client, url, 4, delete).json["applied"] == 0  # retried delete: nothing to do


def test_score_changes_are_audited_old_to_new(client, rated):
    url, _rating = rated
    save(client, url, 1, {"op": "score", "item": "StHAR_A1", "value": 1, "base": None})
    save(client, url, 2, {"op": "score", "item": "StHAR_A1", "value": 4, "base": 1})
    row_id = db.session.scalar(select(ItemScore.id))
    save(client, url, 3, {"op": "score", "item": "StHAR_A1", "value": None, "base": 4})
    events = list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "score.change").order_by(AuditEvent.id)
        )
    )
    assert [(e.before, e.after) for e in events] == [
        ({"StHAR_A1": None}, {"StHAR_A1": 1}),
        ({"StHAR_A1": 1}, {"StHAR_A1": 4}),
        ({"StHAR_A1": 4}, {"StHAR_A1": None}),
    ]
    assert all(e.entity_type == "item_score" and e.user_id is not None for e in events)
    assert [e.entity_id for e in events] == [str(row_id)] * 3  # the score row, added to removed
    assert db.session.scalar(select(ItemScore.id)) is None


@pytest.mark.parametrize(
    "change",
    [
        {"op": "score", "item": "GHES_1", "value": 5},
        {"op": "score", "item": "GHES_1", "value": "3"},
        {"op": "score", "item": "NOPE", "value": 1},
        {"op": "note.put", "client_id": "", "seconds": 1, "text": "x"},
        {"op": "note.put", "client_id": "x", "seconds": -1, "text": "x"},
        {"op": "homework.put", "client_id": "h", "homework_type": "magic", "description": ""},
        {"op": "homework.put", "client_id": "h", "homework_type": "cognitive", "completion": "?"},
        {"op": "difficulties", "values": ["boredom"]},
        {"op": "position", "seconds": float("inf")},
        {"op": "active", "seconds": 99999},
        {"op": "explode"},
    ],
)
def test_invalid_changes_are_refused_and_named(client, rated, change):
    url, rating = rated
    response = client.post(
        url,
        data=__import__("json")
        .dumps({"base_version": 1, "changes": [change]})
        .replace("Infinity", "1e999"),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json["problems"][0].startswith("change 0:")
    assert fresh(rating).version == 1


@pytest.mark.parametrize("body", [None, [], {"changes": []}, {"base_version": 1, "changes": {}}])
def test_malformed_envelopes(client, rated, body):
    url, _ = rated
    response = client.post(url, json=body)
    assert response.status_code == 400
    assert "error" in response.json


def test_submitted_rating_refuses_autosave_with_423(client, rated):
    url, rating = rated
    r = fresh(rating)
    r.status = "submitted"
    r.assignment.status = "submitted"
    db.session.commit()
    response = save(client, url, 1, {"op": "score", "item": "GHES_1", "value": 1})
    assert response.status_code == 423
    assert "locked" in response.json["error"]


@pytest.mark.parametrize("visitor", VISITORS)
def test_autosave_per_visitor(client, auth, factory, visitor):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, visitor)
    response = save(
        client, f"/assignments/{study.id}/autosave", 1, {"op": "position", "seconds": 1}
    )
    expected = {"anonymous": 401, "rater": 200, "other": 404, "coordinator": 404}[visitor]
    assert response.status_code == expected
    assert response.is_json


@pytest.mark.parametrize("status", list(AssignmentStatus))
def test_the_rating_page_and_autosave_apply_one_access_rule(client, rated, status):
    """``Assignment.rateable_by`` decides the model check, the page and autosave's UPDATE alike:
    only the assigned rater, only while the assignment is open (not held, not flagged)."""
    url, rating = rated
    assignment = fresh(rating).assignment
    assignment.status = status
    db.session.commit()
    other = db.session.scalar(select(User).where(User.username == "r2"))
    may = assignment.can_be_rated_by(assignment.rater)
    assert may == (status in {"pending", "in_progress", "submitted"})
    assert not assignment.can_be_rated_by(other)
    page = client.get(f"/assignments/{assignment.id}/rate")
    assert page.status_code == (200 if may else 404)
    response = save(client, url, 1, {"op": "position", "seconds": 3})
    assert response.status_code == (200 if may else 404), response.json
    assert fresh(rating).audio_position == (3 if may else 0)


def test_a_deactivated_raters_save_is_refused_at_once(client, rated):
    """Autosave checks the user in its own UPDATE (no user loader): deactivation still counts."""
    url, rating = rated
    saved(client, url, 1, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    rater = fresh(rating).assignment.rater
    rater.active = False
    db.session.commit()
    response = save(client, url, 2, {"op": "score", "item": "GHES_1", "value": 4, "base": 2})
    assert response.status_code == 401
    assert "login has expired" in response.json["error"]
    assert scores_of(rating) == {"GHES_1": 2} and fresh(rating).version == 2
    rater.active = True
    db.session.commit()
    saved(client, url, 2, {"op": "score", "item": "GHES_1", "value": 4, "base": 2})
    assert scores_of(rating) == {"GHES_1": 4}


def test_autosave_needs_the_csrf_header(csrf_app, factory):
    from tests.conftest import PASSWORD

    client = csrf_app.test_client()
    study = build_study(factory)
    started(study.assignment)
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    client.post("/login", data={"username": "r1", "password": PASSWORD, "csrf_token": token})
    token = client.get("/queue").get_data(as_text=True).split('name="csrf-token" content="')[1]
    token = token.split('"')[0]
    body = {"base_version": 1, "changes": [{"op": "position", "seconds": 2}]}
    url = f"/assignments/{study.id}/autosave"
    assert client.post(url, json=body).status_code == 400
    response = client.post(url, json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.json["version"] == 2


# --- batch numbers per tab: retries and late copies are never applied twice ---------------


def batch(client_id, seq, base_version, *changes) -> dict:
    return {"client": client_id, "seq": seq, "base_version": base_version, "changes": list(changes)}


def scores_of(rating: Rating) -> dict[str, int]:
    return {s.item_code: s.score for s in fresh(rating).scores}


def test_a_late_copy_of_an_old_batch_cannot_undo_newer_work(client, rated):
    url, rating = rated
    saved(client, url, 1, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    a = batch("tab-1", 1, 2, {"op": "score", "item": "GHES_1", "value": 3, "base": 2})
    b = batch("tab-1", 2, 3, {"op": "score", "item": "GHES_1", "value": 2, "base": 3})
    # A times out on the client; its resend is acknowledged, then B is acknowledged.
    assert client.post(url, json=a).json["applied"] == 1
    assert client.post(url, json=b).json["applied"] == 1
    assert scores_of(rating) == {"GHES_1": 2}
    # Now A's first copy arrives: GHES_1 holds 2 = A's base, yet A must not be applied again.
    late = client.post(url, json=a)
    assert late.status_code == 200
    assert late.json == {"ok": True, "duplicate": True, "applied": 0, "version": 4}
    assert scores_of(rating) == {"GHES_1": 2}
    assert fresh(rating).version == 4


def test_without_batch_numbers_the_late_copy_would_be_applied(client, rated):
    """Why the batch numbers exist: per-field compare-and-set alone re-applies A."""
    url, rating = rated
    saved(client, url, 1, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    a = {"base_version": 2, "changes": [{"op": "score", "item": "GHES_1", "value": 3, "base": 2}]}
    saved(client, url, 2, *a["changes"])
    saved(client, url, 3, {"op": "score", "item": "GHES_1", "value": 2, "base": 3})
    assert client.post(url, json=a).json["applied"] == 1  # accepted for old clients, as before
    assert scores_of(rating) == {"GHES_1": 3}


def test_a_retried_batch_is_applied_once_even_when_not_idempotent(client, rated):
    url, rating = rated
    body = batch(
        "tab-1",
        1,
        1,
        {"op": "active", "seconds": 30},
        {"op": "score", "item": "GHES_2", "value": 1, "base": None},
    )
    first = client.post(url, json=body)
    retry = client.post(url, json=body)
    assert first.json["applied"] == 2 and first.json["duplicate"] is False
    assert retry.status_code == 200 and retry.json["duplicate"] is True
    assert retry.json["version"] == first.json["version"] == 2
    r = fresh(rating)
    assert r.active_seconds == 30  # an increment: without the batch number it would be 60
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "score.change"))
    assert len(list(events)) == 1


def test_batch_numbers_are_kept_per_tab_and_per_rating(client, rated):
    url, rating = rated
    one = batch("tab-1", 5, 1, {"op": "score", "item": "GHES_1", "value": 1, "base": None})
    two = batch("tab-2", 1, 2, {"op": "score", "item": "GHES_2", "value": 2, "base": None})
    assert client.post(url, json=one).json["applied"] == 1
    assert client.post(url, json=two).json["applied"] == 1  # another tab starts at 1
    older = batch("tab-1", 4, 3, {"op": "score", "item": "GHES_3", "value": 3, "base": None})
    assert client.post(url, json=older).json["duplicate"] is True
    stored = db.session.scalars(
        select(AutosaveBatch).where(AutosaveBatch.rating_id == rating.id)
    ).all()
    assert sorted((b.client, b.seq) for b in stored) == [("tab-1", 5), ("tab-2", 1)]
    assert scores_of(rating) == {"GHES_1": 1, "GHES_2": 2}


def test_a_refused_batch_does_not_use_up_its_number(client, rated):
    url, rating = rated
    saved(client, url, 1, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    stale = batch("tab-1", 1, 1, {"op": "score", "item": "GHES_1", "value": 4, "base": None})
    assert client.post(url, json=stale).status_code == 409
    ok = batch("tab-1", 1, 2, {"op": "score", "item": "GHES_1", "value": 4, "base": 2})
    assert client.post(url, json=ok).json["applied"] == 1
    assert scores_of(rating) == {"GHES_1": 4}


@pytest.mark.parametrize(
    "envelope",
    [
        {"client": "tab"},
        {"seq": 1},
        {"client": "", "seq": 1},
        {"client": "x" * 65, "seq": 1},
        {"client": 7, "seq": 1},
        {"client": "tab", "seq": 0},
        {"client": "tab", "seq": True},
        {"client": "tab", "seq": "1"},
        {"client": "tab", "seq": 2**31},
    ],
)
def test_malformed_batch_numbers_are_refused(client, rated, envelope):
    url, rating = rated
    body = {"base_version": 1, "changes": [{"op": "position", "seconds": 3}], **envelope}
    response = client.post(url, json=body)
    assert response.status_code == 400 and "error" in response.json
    assert fresh(rating).version == 1


def test_the_same_field_twice_in_one_batch_is_not_an_error(client, rated):
    url, rating = rated
    put = {"op": "note.put", "client_id": "n", "seconds": 3, "text": "a", "base": None}
    saved(client, url, 1, put, {"op": "score", "item": "GHES_1", "value": 2, "base": None})
    delete = {"op": "note.delete", "client_id": "n", "base": {"seconds": 3, "text": "a"}}
    clear = {"op": "score", "item": "GHES_1", "value": None, "base": 2}
    twice = [delete, delete, clear, clear]
    twice += [{"op": "difficulties", "values": ["lack of time"]}] * 2
    assert saved(client, url, 2, *twice)["applied"] == 6
    r = fresh(rating)
    assert r.notes == [] and r.scores == []
    assert [d.difficulty_type for d in r.difficulties] == ["lack of time"]


def test_batch_numbers_work_without_pinned_instruments(client, rated):
    url, rating = rated
    r = fresh(rating)
    r.instrument_versions = []
    db.session.commit()
    first = batch("tab-1", 1, 1, {"op": "position", "seconds": 4})
    assert client.post(url, json=first).json["applied"] == 1
    second = batch("tab-1", 2, 2, {"op": "position", "seconds": 5})
    assert client.post(url, json=second).json["applied"] == 1
    assert client.post(url, json=first).json["duplicate"] is True
    assert fresh(rating).audio_position == 5


@pytest.mark.parametrize(
    "change",
    [
        {"op": "score", "item": "GHES_1\x00", "value": 1},
        {"op": "note.put", "client_id": "a\x00", "seconds": 1, "text": "x"},
        {"op": "note.put", "client_id": "ab", "seconds": 1, "text": "x\x00"},
        {"op": "homework.put", "client_id": "h\x00", "homework_type": "x", "completion": "yes"},
    ],
)
@pytest.mark.parametrize("visitor", ["rater", "other"])
def test_a_nul_character_is_refused_clearly_on_every_engine(client, auth, factory, change, visitor):
    """PostgreSQL's text cannot hold NUL: such a body is refused (400, naming the place) before
    anything else is looked at, for the rater as for anyone — never a 500 from the driver. The
    answer is the same whether or not the assignment is the visitor's, so it reveals nothing."""
    study = build_study(factory)
    rating = started(study.assignment)
    login_as(auth, visitor)
    url = f"/assignments/{study.id}/autosave"
    for body in ({"base_version": 1, "changes": [change]},
                 {"client": "tab\x00", "seq": 1, "base_version": 1, "changes": []}):  # fmt: skip
        response = client.post(url, json=body)
        assert response.status_code == 400, response.json
        assert "NUL character" in response.json["error"]
    assert fresh(rating).version == 1
    assert db.session.scalars(select(Note)).all() == []


def test_a_save_that_waits_for_the_lock_reads_what_the_holder_committed(app, factory):
    """Two tabs save the same item at once, both from the same old value. The second waits for
    the first's lock; its compare-and-set must then see the first's committed score (409),
    not the value from before it waited (which would silently undo the first save)."""
    study = build_study(factory)
    started(study.assignment)
    aid, uid = study.id, study.assignment.rater_id
    db.session.remove()

    def batch(value: int) -> dict:
        change = {"op": "score", "item": "GHES_1", "value": value, "base": None}
        return {"base_version": 1, "changes": [change]}

    outcome: dict[str, object] = {}

    def second_tab() -> None:
        with app.app_context():
            try:
                with db.engine.begin() as connection:
                    outcome["result"] = apply_autosave(
                        connection, aid, uid, batch(1), session_generation=0
                    )
            except AutosaveRefused as refused:
                outcome["status"] = refused.status

    with db.engine.begin() as connection:
        # holds the rating's lock until commit
        apply_autosave(connection, aid, uid, batch(3), session_generation=0)
        waiting = threading.Thread(target=second_tab)
        waiting.start()
        time.sleep(0.5)  # the second tab is now waiting for the lock
        assert waiting.is_alive()
    waiting.join(30)
    assert outcome == {"status": 409}
    stored = db.session.scalar(select(ItemScore.score).where(ItemScore.item_code == "GHES_1"))
    assert stored == 3


def test_a_one_score_save_is_two_statements_on_postgresql(client, rated):
    """The statements a one-score save of a new tab's batch runs: on PostgreSQL the lock, the
    batch record and the scores read are one, and the score's INSERT and its audit event one."""
    url, _rating = rated
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    change = {"op": "score", "item": "GHES_1", "value": 2, "base": None}
    try:
        body = {"client": "tab", "seq": 1, "base_version": 1, "changes": [change]}
        assert client.post(url, json=body).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    if db.engine.dialect.name == "postgresql":
        assert statements == ["WITH", "WITH"]  # the score and its audit event: one
    else:  # the UPDATE, the batch record and the scores read apart
        assert statements == ["UPDATE", "INSERT", "SELECT", "INSERT", "INSERT"]
    assert db.session.scalar(select(ItemScore.score)) == 2


# --- types: every field of every op, wrong types give 400 naming the field, never a 500 ------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"op": "homework.put", "client_id": "h", "homework_type": ["behavioural"]},
         "'homework_type'"),
        ({"op": "homework.put", "client_id": "h", "homework_type": {"a": 1}}, "'homework_type'"),
        ({"op": "homework.put", "client_id": "h", "homework_type": "behavioural",
          "completion": ["yes"]}, "'completion'"),
        ({"op": "homework.put", "client_id": "h", "homework_type": "behavioural",
          "description": {"text": "x"}}, "'description'"),
        ({"op": "homework.put", "client_id": "h", "homework_type": "behavioural",
          "base": ["x"]}, "'base' of a homework entry"),
        ({"op": "homework.put", "client_id": "h", "homework_type": "behavioural",
          "base": {"homework_type": 1, "description": ""}}, "'base' of a homework entry"),
        ({"op": "homework.delete", "client_id": "h", "base": 3}, "'base' of a homework entry"),
        ({"op": "difficulties", "values": [["lack of time"]]}, "'values'"),
        ({"op": "difficulties", "values": [{"lack of time": 1}]}, "'values'"),
        ({"op": "difficulties", "values": "lack of time"}, "'values'"),
        ({"op": "difficulties", "values": [], "base": [["lack of time"]]}, "'base' of difficult"),
        ({"op": "difficulties", "values": [], "base": [1, "lack of time"]}, "'base' of difficult"),
        ({"op": "difficulties", "values": [], "base": "lack of time"}, "'base' of difficult"),
        ({"op": "score", "item": "GHES_1", "value": 2, "base": "2"}, "'base' of GHES_1"),
        ({"op": "score", "item": "GHES_1", "value": 2, "base": [2]}, "'base' of GHES_1"),
        ({"op": "score", "item": "GHES_1", "value": [2]}, "score of GHES_1"),
        ({"op": "note.put", "client_id": "n", "seconds": 1, "text": "x", "base": [1]},
         "'base' of a note"),
        ({"op": "note.put", "client_id": "n", "seconds": 1, "text": "x",
          "base": {"seconds": 1, "text": ["x"]}}, "'base' of a note"),
        ({"op": "note.delete", "client_id": "n", "base": "x"}, "'base' of a note"),
        ({"op": "note.put", "client_id": "n", "seconds": [1], "text": "x"}, "'seconds'"),
        ({"op": "note.put", "client_id": "n", "seconds": 1, "text": ["x"]}, "'text'"),
        ({"op": "note.put", "client_id": ["n"], "seconds": 1, "text": "x"}, "'client_id'"),
        ({"op": "position", "seconds": 10**400}, "'seconds'"),
        ({"op": "active", "seconds": {"s": 1}}, "'seconds'"),
        ({"op": ["score"]}, "unknown op"),
    ],
)  # fmt: skip
def test_wrongly_typed_fields_are_refused_and_named(client, rated, change, named):
    url, rating = rated
    response = save(client, url, 1, change)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    [problem] = response.json["problems"]
    assert problem.startswith("change 0:") and named in problem, problem
    assert fresh(rating).version == 1


# --- limits per rating: text lengths, numbers of notes and homework entries, active time -------


def note(cid: str, text: str = "x") -> dict:
    return {"op": "note.put", "client_id": cid, "seconds": 1, "text": text}


def homework(cid: str, description: str = "") -> dict:
    return {"op": "homework.put", "client_id": cid, "homework_type": "behavioural",
            "description": description}  # fmt: skip


def test_text_lengths_are_limited(client, rated):
    url, rating = rated
    assert saved(client, url, 1, note("n1", "é" * MAX_NOTE_LENGTH))["applied"] == 1
    too_long = save(client, url, 2, note("n2", "x" * (MAX_NOTE_LENGTH + 1)))
    assert too_long.status_code == 400
    assert f"at most {MAX_NOTE_LENGTH} are allowed" in too_long.json["problems"][0]
    assert saved(client, url, 2, homework("h1", "y" * MAX_DESCRIPTION_LENGTH))["applied"] == 1
    too_long = save(client, url, 3, homework("h2", "y" * (MAX_DESCRIPTION_LENGTH + 1)))
    assert too_long.status_code == 400
    assert "'description' is 2001 characters long" in too_long.json["problems"][0]
    assert fresh(rating).version == 3


@pytest.mark.parametrize("pins_instruments", [True, False])
def test_the_number_of_notes_is_limited(client, rated, pins_instruments):
    """The count is read with the rating's scores, or apart when it pins no instrument."""
    url, rating = rated
    if not pins_instruments:
        rating.instrument_versions = []
        db.session.commit()
    version = 1
    for start in range(0, MAX_NOTES, MAX_CHANGES):
        batch_ = [note(f"n{i}") for i in range(start, min(start + MAX_CHANGES, MAX_NOTES))]
        version = saved(client, url, version, *batch_)["version"]
    one_more = save(client, url, version, note("n-extra"))
    assert one_more.status_code == 400
    assert one_more.json["problems"] == [
        f"notes: a rating holds at most {MAX_NOTES} notes; this save would make {MAX_NOTES + 1}"
    ]
    # Editing, deleting, and replacing one note by another in one batch stay possible.
    version = saved(client, url, version, note("n0", "edited"))["version"]
    delete = {"op": "note.delete", "client_id": "n1"}
    version = saved(client, url, version, delete, note("n-extra"))["version"]
    assert len(fresh(rating).notes) == MAX_NOTES


def test_the_number_of_homework_entries_is_limited(client, rated):
    url, rating = rated
    version = saved(client, url, 1, *[homework(f"h{i}") for i in range(MAX_HOMEWORK_ENTRIES)])[
        "version"
    ]
    one_more = save(client, url, version, homework("h-extra"))
    assert one_more.status_code == 400
    assert "at most 50 homework entries" in one_more.json["problems"][0]
    delete = {"op": "homework.delete", "client_id": "h0"}
    saved(client, url, version, delete, homework("h-extra"))
    count = db.session.scalars(select(HomeworkEntry).where(HomeworkEntry.rating_id == rating.id))
    assert len(count.all()) == MAX_HOMEWORK_ENTRIES


def test_active_time_cannot_exceed_the_wall_time_since_the_rating_started(client, rated):
    url, rating = rated
    r = fresh(rating)
    r.created_at = utcnow() - timedelta(seconds=100)
    db.session.commit()
    active = {"op": "active", "seconds": 60}
    assert saved(client, url, 1, active)["applied"] == 1
    refused = save(client, url, 2, active)  # 120 s of active time after 100 s: refused
    assert refused.status_code == 400
    [problem] = refused.json["problems"]
    assert problem.startswith("change 0: 'active' would make the active time 120 s")
    assert "cannot exceed wall time" in problem
    twice = save(client, url, 2, {"op": "active", "seconds": 30}, {"op": "active", "seconds": 30})
    assert twice.status_code == 400 and twice.json["problems"][0].startswith("change 1:")
    assert saved(client, url, 2, {"op": "active", "seconds": 30})["applied"] == 1
    assert fresh(rating).active_seconds == 90


def test_a_just_started_rating_has_no_active_time_to_claim(client, auth, factory):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, "rater")
    url = f"/assignments/{study.id}/autosave"
    response = save(client, url, 1, {"op": "active", "seconds": 3600})
    assert response.status_code == 400 and "cannot exceed wall time" in response.json["problems"][0]


def test_a_json_body_over_two_megabytes_is_refused_with_413(client, rated):
    url, rating = rated
    text = "x" * (MAX_NOTE_LENGTH - 10)
    body = {"base_version": 1, "changes": [note(f"n{i}", text) for i in range(220)]}
    response = client.post(url, json=body)
    assert response.status_code == 413
    assert response.json["error"] == "The JSON body is larger than 2 MB."
    assert fresh(rating).version == 1
