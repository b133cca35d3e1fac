"""Every state-changing request without a CSRF token is refused with 400, for every role."""

from __future__ import annotations

import re

import pytest
from flask import url_for

from rater.extensions import db
from tests.conftest import PASSWORD

CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture
def csrf_world(csrf_app, table, factory):  # noqa: ARG001 (a fixture requested for its setup)
    return table.build_world(factory)


def _state_changing(app, table, world) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every state-changing route; logout last."""
    with app.test_request_context():
        targets = [
            (endpoint, method, url_for(endpoint, **table.ACCESS[endpoint].values(world)))
            for endpoint, _, methods in table.routes(app)
            for method in sorted(methods & set(table.STATE_CHANGING))
            if endpoint in table.ACCESS  # unclassified ones fail test_every_endpoint_is_classified
        ]
    return sorted(targets, key=lambda target: target[0] == "auth.logout")


@pytest.mark.parametrize("role", ["anonymous", "rater_a", "coordinator"])
def test_state_changing_requests_need_a_csrf_token(csrf_app, table, csrf_world, role):
    client = csrf_app.test_client()
    user = None if role == "anonymous" else csrf_world.user(role)
    targets = _state_changing(csrf_app, table, csrf_world)
    assert "auth.logout" in [endpoint for endpoint, _, _ in targets]
    wrong = []
    for endpoint, method, url in targets:
        table.log_in_as(client, user)
        for body in ({"data": {"anything": "1"}}, {"json": {"anything": 1}}):
            response = client.open(url, method=method, **body)
            if response.status_code != 400:
                wrong.append(f"{method} {endpoint} ({body}) -> {response.status_code}")
        db.session.rollback()
    assert not wrong, "\n".join(wrong)


def _token(page: str) -> str:
    """The CSRF token of a page: the login form's field, or the meta tag of the others."""
    found = CSRF_FIELD.search(page) or CSRF_META.search(page)
    return found[1]


def test_a_valid_token_is_accepted(csrf_app, factory):
    """The walker's 400s come from the missing token, not from a broken form."""
    factory.user("r1")
    client = csrf_app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"username": "r1", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    token = _token(client.get("/queue").get_data(as_text=True))  # a new session, a new token
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302


@pytest.mark.parametrize("role", ["rater_a", "coordinator"])
def test_a_token_from_before_the_login_is_refused_everywhere(csrf_app, table, csrf_world, role):
    """Login rotates the token: one planted or read before the login (e.g. by an attacker who
    fixed the anonymous session) is refused by every state-changing endpoint afterwards."""
    client = csrf_app.test_client()
    before = _token(client.get("/login").get_data(as_text=True))
    username = csrf_world.user(role).username
    login = {"username": username, "password": PASSWORD, "csrf_token": before}
    assert client.post("/login", data=login).status_code == 302
    wrong = []
    for endpoint, method, url in _state_changing(csrf_app, table, csrf_world):
        for body in ({"data": {"csrf_token": before}}, {"json": {}}):
            headers = {"X-CSRFToken": before}
            response = client.open(url, method=method, headers=headers, **body)
            if response.status_code != 400:
                wrong.append(f"{method} {endpoint} ({body}) -> {response.status_code}")
        db.session.rollback()
    assert not wrong, "\n".join(wrong)
    assert client.get("/login").status_code == 302  # still logged in: nothing was let through


@pytest.mark.usefixtures("csrf_app")
def test_no_view_is_exempt_from_csrf():
    from rater.extensions import csrf

    assert not csrf._exempt_views and not csrf._exempt_blueprints
