"""Reliability pages: coordinators only (raters 403, anonymous to login), real content."""

from __future__ import annotations

import pytest

from rater.demo import DemoSizes, build_demo
from rater.extensions import db

PAGES = (
    "/reliability/",
    "/reliability/instrument/GHES",
    "/reliability/measure/GHES/GHES_score",
    "/reliability/measure/StHAR/StHAR_A1?by=block",
    "/reliability/plot/GHES/GHES_score/heatmap.svg",
    "/reliability/plot/GHES/GHES_score/drift.svg",
    "/reliability/plot/GHES/GHES_score/bland-altman.svg?rater_1=rater1&rater_2=rater2",
    "/reliability/disagreements",
)


@pytest.fixture
def demo(app):
    build_demo(DemoSizes(patients=6, rated_share=1.0))
    db.session.commit()


def consensus_url(client) -> str:
    html = client.get("/reliability/disagreements").get_data(as_text=True)
    start = html.index("/reliability/consensus/")
    return html[start : html.index('"', start)]


def test_anonymous_is_sent_to_login(client, demo):
    for url in (*PAGES, "/reliability/consensus/P01-S01"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"]


def test_raters_get_403_on_every_page(client, auth, demo):
    auth.login("coordinator", "demo-coordinator")
    consensus = consensus_url(client)
    auth.logout()
    auth.login("rater1", "demo-rater1")
    for url in (*PAGES, consensus):
        assert client.get(url).status_code == 403, url
    assert client.post(consensus, data={}).status_code == 403


def test_coordinator_sees_dashboard_plots_and_drill_downs(client, auth, demo):
    auth.login("coordinator", "demo-coordinator")
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        if ".svg" in url:
            assert response.mimetype == "image/svg+xml"
            assert response.get_data(as_text=True).startswith("<svg")
            assert response.headers["Cache-Control"] == "no-store"
    html = client.get("/reliability/").get_data(as_text=True)
    for text in ("ICC(A,2) mean across pairs", "ICC(Q,k̂)", "Cronbach α", "Calibration round"):
        assert text in html
    assert "<script" not in html
    assert client.get(consensus_url(client)).status_code == 200


def test_unknown_instrument_or_measure_is_404(client, auth, demo):
    auth.login("coordinator", "demo-coordinator")
    assert client.get("/reliability/instrument/NOPE").status_code == 404
    assert client.get("/reliability/measure/GHES/NOPE").status_code == 404
    assert client.get("/reliability/plot/NOPE/x/heatmap.svg").status_code == 404
    assert client.get("/reliability/measure/GHES/GHES_score?by=week").status_code == 400


def test_dashboard_without_ratings_says_not_enough_data(client, auth, factory, app):
    from rater.study.instrument_store import sync_instruments

    sync_instruments()
    db.session.commit()
    factory.user("carla", role="coordinator")
    auth.login("carla")
    html = client.get("/reliability/").get_data(as_text=True)
    assert "not enough data — no double-coded sessions yet" in html
    assert client.get("/reliability/disagreements").status_code == 200
