"""Events autosave through the batch protocol: add, move, recode, delete; retries never
duplicate; another tab's newer change is never overwritten; bad events are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rater.audit import AuditEvent
from rater.extensions import db
from rater.rating.models import CodedEvent
from rater.timeutil import utcnow
from tests.rating.helpers import build_study, login_as, started


@pytest.fixture
def rated(auth, factory):
    study = build_study(factory)
    rating = started(study.assignment)
    rating.created_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    login_as(auth, "rater")
    return f"/assignments/{study.id}/autosave", rating


def post(client, url, *changes, client_id="tab-1", seq=1, base_version=1):
    body = {"client": client_id, "seq": seq, "base_version": base_version, "changes": list(changes)}
    return client.post(url, json=body)


def stored(rating) -> dict[str, tuple]:
    db.session.expire_all()
    rows = db.session.scalars(select(CodedEvent).where(CodedEvent.rating_id == rating.id))
    return {e.client_id: (e.code, e.time_s, e.end_s, e.note) for e in rows}


def add(cid, code="ASSIGN", time_s=10.0, end_s=None, note=""):
    return {"op": "event.add", "client_id": cid, "code": code, "time_s": time_s, "end_s": end_s,
            "note": note}  # fmt: skip


def event(code="ASSIGN", time_s=10.0, end_s=None, note=""):
    return {"code": code, "time_s": time_s, "end_s": end_s, "note": note}


def test_add_move_recode_delete(client, rated):
    url, rating = rated
    r = post(client, url, add("e1"), add("e2", "HWTALK", 5.0, 30.5), add("e3", "REVIEW", 40))
    assert r.status_code == 200 and r.json["applied"] == 3, r.json
    assert stored(rating) == {
        "e1": ("ASSIGN", 10.0, None, ""),
        "e2": ("HWTALK", 5.0, 30.5, ""),
        "e3": ("REVIEW", 40.0, None, ""),
    }
    r = post(
        client, url,
        {"op": "event.move", "client_id": "e1", "time_s": 11.0, "end_s": None, "base": event()},
        {"op": "event.recode", "client_id": "e3", "code": "EFFICACY",
         "base": event("REVIEW", 40)},
        {"op": "event.delete", "client_id": "e2", "base": event("HWTALK", 5.0, 30.5)},
        seq=2, base_version=2,
    )  # fmt: skip
    assert r.status_code == 200 and r.json["applied"] == 3, r.json
    assert stored(rating) == {"e1": ("ASSIGN", 11.0, None, ""), "e3": ("EFFICACY", 40.0, None, "")}
    audited = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "event.change"))
    trail = [(a.entity_id, a.before, a.after) for a in audited]
    assert len(trail) == 6
    assert (f"{rating.id}/e2", event("HWTALK", 5.0, 30.5), None) in trail
    assert (f"{rating.id}/e1", event(), event(time_s=11.0)) in trail


def test_a_retried_batch_is_applied_once(client, rated):
    url, rating = rated
    first = post(client, url, add("e1"), add("e2", time_s=12))
    again = post(client, url, add("e1"), add("e2", time_s=12))
    assert first.json["applied"] == 2 and again.json["duplicate"] is True
    # the same adds in a new batch (e.g. from localStorage after a crash): nothing doubles
    third = post(client, url, add("e1"), add("e2", time_s=12), seq=2)
    assert third.status_code == 200 and third.json["applied"] == 0
    assert len(stored(rating)) == 2


def test_another_tabs_newer_change_is_not_overwritten(client, rated):
    url, rating = rated
    post(client, url, add("e1"))
    moved = {"op": "event.move", "client_id": "e1", "time_s": 20, "end_s": None, "base": event()}
    assert post(client, url, moved, client_id="tab-2").status_code == 200
    recode = {"op": "event.recode", "client_id": "e1", "code": "TAILOR", "base": event()}
    r = post(client, url, recode, seq=2)  # tab 1 still thinks the event is at 10 s
    assert r.status_code == 409
    stale_delete = {"op": "event.delete", "client_id": "e1", "base": event()}
    assert post(client, url, stale_delete, seq=3).status_code == 409
    conflicting_add = add("e1", "TAILOR")
    assert post(client, url, conflicting_add, seq=4, client_id="tab-3").status_code == 409
    assert stored(rating) == {"e1": ("ASSIGN", 20.0, None, "")}


@pytest.mark.parametrize(
    "change, field",
    [
        (add("x", code="NOPE"), "code"),
        (add("x", time_s=-1), "time_s"),
        (add("x", time_s=68.3 + 5), "time_s"),  # the recording is 68.3 s long
        (add("x", code="ASSIGN", end_s=20), "end_s"),  # a point code has no end
        (add("x", code="HWTALK", time_s=20, end_s=10), "end_s"),
        (add("x", note=7), "note"),
        ({"op": "event.move", "client_id": "x", "time_s": 3}, "base"),
    ],
)
def test_invalid_events_are_refused_naming_the_field(client, rated, change, field):
    url, rating = rated
    r = post(client, url, add("ok"), change)
    assert r.status_code == 400
    assert any(p.startswith("change 1:") and field in p for p in r.json["problems"]), r.json
    assert stored(rating) == {}
