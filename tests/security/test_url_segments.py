"""Session codes and user names in URLs: characters such as "/", "?", "#" or "%" reach the
right page (codes come from the catalogue, names from before the user-name rule)."""

from __future__ import annotations

import pytest
from flask import url_for

from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import ConsensusScore
from tests.reliability.test_consensus import rate

# ("." and ".." segments stay out: browsers resolve them before they send a URL.)
ODD_CODES = ["P01/S01", "P01 S01?a=1#x", "P01%2FS01", "T1/P01/S01"]


def _double_coded(factory, code: str, raters: tuple[User, User]):
    session = factory.session(code, number=1)
    base = {f"GHES_{i}": 2 for i in range(1, 8)}
    rate(factory, session, raters[0], "main", base)
    rate(factory, session, raters[1], "double", {**base, "GHES_3": 4})
    return session


@pytest.fixture
def coordinator_client(app, client, auth, factory):  # noqa: ARG001 (a fixture requested for its setup)
    factory.user("carla", role="coordinator")
    assert auth.login("carla").status_code == 302
    return client


@pytest.mark.parametrize("code", ODD_CODES)
def test_the_consensus_page_of_a_code_with_odd_characters(app, coordinator_client, factory, code):
    _double_coded(factory, code, (factory.user("ann"), factory.user("bob")))
    with app.test_request_context():
        url = url_for("reliability.consensus_page", session_code=code)
    page = coordinator_client.get(url)
    assert page.status_code == 200, url
    assert code in page.get_data(as_text=True)
    saved = coordinator_client.post(url, data={"item_GHES_3": "3"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith(url)
    saved = db.session.scalars(db.select(ConsensusScore).filter_by(item_code="GHES_3"))
    assert [c.score for c in saved] == [3]


def test_the_disagreements_page_links_to_the_consensus_page(coordinator_client, factory):
    _double_coded(factory, "P01/S01", (factory.user("ann"), factory.user("bob")))
    html = coordinator_client.get("/reliability/disagreements").get_data(as_text=True)
    start = html.index("/reliability/consensus/")
    link = html[start : html.index('"', start)]
    assert coordinator_client.get(link).status_code == 200


@pytest.mark.usefixtures("app")
def test_a_bland_altman_plot_of_a_legacy_user_name_with_a_slash(coordinator_client, factory):
    """Names made before the user-name rule may hold any character. (Five sessions: a pair's
    Bland-Altman plot is drawn from the minimum of 5 shared sessions on.)"""
    ann, bob = factory.user("ann"), factory.user("bob")
    for number in range(1, 6):
        session = factory.session(f"P01-S0{number}", number=number)
        rate(factory, session, ann, "main", {"GHES_1": number % 3})
        rate(factory, session, bob, "double", {"GHES_1": number % 2})
    ann.username = "team/ann"
    db.session.commit()
    html = coordinator_client.get("/reliability/measure/GHES/GHES_1").get_data(as_text=True)
    start = html.index("/reliability/plot/GHES/GHES_1/bland-altman")
    link = html[start : html.index('"', start)].replace("&amp;", "&")
    plot = coordinator_client.get(link)
    assert plot.status_code == 200 and plot.mimetype == "image/svg+xml", link
    assert "bob vs team/ann (n = 5)" in plot.get_data(as_text=True), link
