"""Reliability results are cached under the data version, which every change to what they read
raises in its own transaction: never stale, also across server processes (two apps here)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rater import data_version
from rater.extensions import db
from rater.rating import service
from rater.rating.importer import import_ratings
from rater.rating.models import Rating
from rater.reliability import cache, consensus
from rater.study.catalogue import import_sessions
from tests.reliability.test_views import consensus_url


@pytest.fixture
def computations(monkeypatch):
    """Counts the reports computed (the cache calls ``consensus.load_report``)."""
    calls = []
    original = consensus.load_report

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(consensus, "load_report", counting)
    return calls


def _submitted_rating() -> Rating:
    query = select(Rating).where(Rating.status == "submitted").order_by(Rating.id)
    return db.session.scalars(query).first()


@pytest.mark.usefixtures("demo")
def test_a_second_request_is_answered_from_the_cache(client, auth, computations):
    auth.login("coordinator", "demo-coordinator")
    first = client.get("/reliability/").get_data(as_text=True)
    second = client.get("/reliability/").get_data(as_text=True)
    assert len(computations) == 1 and first == second
    client.get("/reliability/instrument/GHES")
    client.get("/reliability/instrument/GHES")
    assert len(computations) == 2


@pytest.mark.usefixtures("demo")
def test_submit_reopen_consensus_and_imports_raise_the_version(app, client, auth, factory):
    versions = [data_version.current()]
    assert versions[0] > 0  # the demo's own writes

    def changed() -> bool:
        versions.append(data_version.current())
        return versions[-1] > versions[-2]

    rating = _submitted_rating()
    service.reopen(rating, "test")
    db.session.commit()
    assert changed()
    service.submit(rating)
    db.session.commit()
    assert changed()

    auth.login("coordinator", "demo-coordinator")
    url = consensus_url(client)
    page = client.get(url).get_data(as_text=True)
    field = page[page.index('name="item_') + 6 :].split('"')[0]
    assert client.post(url, data={field: "4"}).status_code == 302
    assert changed()

    factory.session("P88-S01", patient="P88", number=1)
    rows = "session_id,rater,instrument,item,score,purpose\n" + "".join(
        f"P88-S01,rater1,GHES,GHES_{i},2,main\n" for i in range(1, 8)
    )
    import_ratings(rows.encode(), "r.csv", allow_incomplete=True)
    db.session.commit()
    assert changed()

    catalogue = "session_id,patient,therapist,session_number\nP99-S01,P99,T1,1\n"
    import_sessions(catalogue.encode(), "s.csv", app.config["RATER_AUDIO_DIR"])
    db.session.commit()
    assert changed()


@pytest.mark.usefixtures("demo")
def test_drafts_rollbacks_and_new_assignments_leave_the_version(factory):
    rater = factory.user("newcomer")
    session = factory.session("P77-S01", patient="P77", number=1)  # a new session counts
    before = data_version.current()
    rating = _submitted_rating()
    service.reopen(rating, "test")
    db.session.rollback()
    assignment = factory.assignment(session, rater)
    service.start_rating(assignment)
    db.session.commit()
    assert data_version.current() == before


@pytest.mark.usefixtures("demo")
def test_a_change_through_another_process_reaches_every_cache(build_app, app_config, client, auth):
    """Two apps on one database stand for two gunicorn workers with their own caches."""
    auth.login("coordinator", "demo-coordinator")
    shown = client.get("/reliability/").get_data(as_text=True)
    assert client.get("/reliability/").get_data(as_text=True) == shown
    other = build_app(app_config)
    with other.app_context():
        for rating in db.session.scalars(select(Rating).where(Rating.status == "submitted")):
            service.reopen(rating, "test")
        db.session.commit()
        db.session.remove()
    db.session.expire_all()
    after = client.get("/reliability/").get_data(as_text=True)
    assert after != shown and "not enough" in after.lower()


@pytest.mark.usefixtures("app", "demo")
def test_the_cache_keeps_only_the_newest_version():
    store = cache._store()
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    assert cache.cached("k", compute) == 1 and cache.cached("k", compute) == 1
    data_version.bump()
    db.session.commit()
    assert cache.cached("k", compute) == 2
    assert store.version == data_version.current() and list(store.results) == ["k"]
