"""Every state-changing request without a CSRF token is refused with 400, for every role."""

from __future__ import annotations

import pytest
from flask import url_for

from rater.extensions import db


@pytest.fixture
def csrf_world(csrf_app, table, factory):
    return table.build_world(factory)


@pytest.mark.parametrize("role", ["anonymous", "rater_a", "coordinator"])
def test_state_changing_requests_need_a_csrf_token(csrf_app, table, csrf_world, role):
    client = csrf_app.test_client()
    user = None if role == "anonymous" else csrf_world.user(role)
    targets = [
        (endpoint, method)
        for endpoint, _, methods in table.routes(csrf_app)
        for method in sorted(methods & set(table.STATE_CHANGING))
        if endpoint in table.ACCESS  # unclassified ones fail test_every_endpoint_is_classified
    ]
    assert ("auth.logout", "POST") in targets
    wrong = []
    for endpoint, method in targets:
        with csrf_app.test_request_context():
            url = url_for(endpoint, **table.ACCESS[endpoint].values(csrf_world))
        table.log_in_as(client, user)
        for body in ({"data": {"anything": "1"}}, {"json": {"anything": 1}}):
            response = client.open(url, method=method, **body)
            if response.status_code != 400:
                wrong.append(f"{method} {endpoint} ({body}) -> {response.status_code}")
        db.session.rollback()
    assert not wrong, "\n".join(wrong)


def test_a_valid_token_is_accepted(csrf_app, factory):
    """The walker's 400s come from the missing token, not from a broken form."""
    factory.user("r1")
    client = csrf_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": "r1", "password": "correct-horse-battery", "csrf_token": token}
    )
    assert response.status_code == 302
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302


def test_no_view_is_exempt_from_csrf(csrf_app):
    from rater.extensions import csrf

    assert not csrf._exempt_views and not csrf._exempt_blueprints
