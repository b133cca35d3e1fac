"""Disagreements and consensus: listed from the frame, saved apart, ratings never overwritten."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from rater.audit import AuditEvent
from rater.extensions import db
from rater.rating.frame import ratings_frame
from rater.rating.models import ConsensusScore, ItemScore, Note, Rating
from rater.reliability import consensus
from rater.study.instrument_store import sync_instruments
from rater.timeutil import utcnow

PASSWORD = "correct-horse-battery"  # tests/conftest.py


def rate(factory, session, rater, purpose: str, scores: dict[str, int], note: str = "") -> Rating:
    versions = {v.code: v for v in sync_instruments()}
    assignment = factory.assignment(session, rater, purpose, status="submitted")
    rating = Rating(assignment_id=assignment.id, status="submitted", submitted_at=utcnow())
    rating.instrument_versions = list(versions.values())
    for item, score in scores.items():
        code = "GHES" if item.startswith("GHES") else "StHAR"
        rating.scores.append(
            ItemScore(instrument_version_id=versions[code].id, item_code=item, score=score)
        )
    if note:
        rating.notes.append(Note(text=note, audio_seconds=12.0))
    db.session.add(rating)
    db.session.commit()
    return rating


@pytest.fixture
def study(factory):
    ann, bob = factory.user("ann"), factory.user("bob")
    coordinator = factory.user("carla", role="coordinator")
    s1 = factory.session("P01-S01", number=1)
    s2 = factory.session("P01-S02", number=2)
    base = {f"GHES_{i}": 2 for i in range(1, 8)}
    rate(factory, s1, ann, "main", base, note="ann thinks engagement was high")
    rate(factory, s1, bob, "double", {**base, "GHES_3": 4, "GHES_5": 1}, note="bob heard doubt")
    rate(factory, s2, ann, "main", base)
    rate(factory, s2, bob, "double", {**base, "GHES_1": 3})  # 1 point: no disagreement
    return {"ann": ann, "bob": bob, "coordinator": coordinator, "s1": s1, "s2": s2}


@pytest.mark.usefixtures("study")
def test_disagreements_lists_sessions_with_two_points_or_more():
    found = consensus.disagreements(ratings_frame())
    assert [d.session_id for d in found] == ["P01-S01"]
    assert found[0].items == (("GHES_3", 2),)
    assert found[0].raters == ("ann", "bob")
    assert found[0].n_consensus == 0


def test_calibration_sessions_are_not_disagreements(factory, study):
    cal = factory.session("P02-S01", patient="P02", number=1)
    rate(factory, cal, study["ann"], "calibration", {"GHES_1": 0})
    rate(factory, cal, study["bob"], "calibration", {"GHES_1": 4})
    assert [d.session_id for d in consensus.disagreements(ratings_frame())] == ["P01-S01"]


def snapshot() -> list[tuple]:
    return sorted(
        db.session.execute(
            select(ItemScore.rating_id, ItemScore.item_code, ItemScore.score, ItemScore.updated_at)
        ).all()
    )


def test_save_consensus_never_touches_ratings_and_is_audited(study):
    before = snapshot()
    view = consensus.consensus_view("P01-S01")
    assert [r.assignment.rater.username for r in view.ratings] == ["ann", "bob"]
    assert view.differs("GHES_3") == 2 and view.suggested("GHES_1") == 2
    assert view.suggested("GHES_3") is None
    changed = consensus.save_consensus(view, {"GHES_3": 3, "GHES_1": 2}, study["coordinator"])
    db.session.commit()
    assert changed == 2
    assert snapshot() == before
    saved = {c.item_code: c.score for c in db.session.scalars(select(ConsensusScore))}
    assert saved == {"GHES_3": 3, "GHES_1": 2}
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "consensus.set"))
    assert sorted(e.entity_id for e in events) == ["P01-S01:GHES_1", "P01-S01:GHES_3"]

    view = consensus.consensus_view("P01-S01")
    assert consensus.save_consensus(view, {"GHES_3": 4, "GHES_1": None}, study["coordinator"]) == 2
    db.session.commit()
    assert snapshot() == before
    assert {c.item_code: c.score for c in db.session.scalars(select(ConsensusScore))} == {
        "GHES_3": 4
    }
    update = db.session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == "consensus.set")
        .order_by(AuditEvent.id.desc())
    )
    assert update.before == {"score": 3} and update.after["score"] == 4
    assert consensus.disagreements(ratings_frame())[0].n_consensus == 1


def test_save_consensus_refuses_unknown_items_and_scores(study):
    view = consensus.consensus_view("P01-S01")
    with pytest.raises(ValueError):
        consensus.save_consensus(view, {"NOPE": 1}, study["coordinator"])
    with pytest.raises(ValueError):
        consensus.save_consensus(view, {"GHES_1": 5}, study["coordinator"])


def test_consensus_view_needs_two_ratings(factory, study):
    single = factory.session("P03-S01", patient="P03", number=1)
    rate(factory, single, study["ann"], "main", {"GHES_1": 1})
    assert consensus.consensus_view("P03-S01") is None
    assert consensus.consensus_view("NO-SUCH") is None


@pytest.mark.usefixtures("study")
def test_consensus_page_shows_both_ratings_with_notes_and_saves(client, auth):
    auth.login("carla")
    page = client.get("/reliability/consensus/P01-S01")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "ann thinks engagement was high" in html and "bob heard doubt" in html
    assert "differs by 2" in html
    before = snapshot()
    data = {f"item_GHES_{i}": "2" for i in range(1, 8)} | {"item_GHES_3": "3"}
    response = client.post("/reliability/consensus/P01-S01", data=data)
    assert response.status_code == 302
    assert snapshot() == before
    saved = {c.item_code: c.score for c in db.session.scalars(select(ConsensusScore))}
    assert saved["GHES_3"] == 3 and saved["GHES_1"] == 2
    assert client.get("/reliability/consensus/NO-SUCH").status_code == 404


@pytest.mark.usefixtures("study")
def test_consensus_post_needs_the_csrf_token(csrf_app):
    client = csrf_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    login = {"username": "carla", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=login).status_code == 302
    response = client.post("/reliability/consensus/P01-S01", data={"item_GHES_3": "3"})
    assert response.status_code == 400
    assert db.session.scalars(select(ConsensusScore)).all() == []
