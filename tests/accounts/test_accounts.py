"""Accounts in the browser: coordinators add, deactivate, reactivate, reset and log out users;
everyone changes their own password; set-password links work once. All audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from rater.audit import AuditEvent
from rater.auth.links import set_password_token, user_of_token
from rater.auth.models import User
from rater.auth.service import find_user
from rater.extensions import db
from tests.conftest import PASSWORD

NEW_PASSWORD = "violet-tram-ninety-hills"
SHOWN_PASSWORD = re.compile(r'id="initial-password" readonly value="([^"]+)"')
SHOWN_LINK = re.compile(r'id="set-password-link" readonly value="([^"]+)"')


@pytest.fixture
def coordinator(factory, client, auth):  # noqa: ARG001 (a fixture requested for its setup)
    user = factory.user("coord", "coordinator")
    assert auth.login("coord").status_code == 302
    return user


def _actions(prefix: str = "user.") -> list[str]:
    query = select(AuditEvent.action).where(AuditEvent.action.startswith(prefix))
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def _log_in(app, username: str, password: str):
    other = app.test_client()
    response = other.post("/login", data={"username": username, "password": password})
    return other, response


@pytest.mark.usefixtures("coordinator")
def test_a_coordinator_adds_a_rater_with_a_password_shown_once(app, client):
    response = client.post(
        "/users/add", data={"username": "rater7", "role": "rater", "method": "password"}
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = SHOWN_PASSWORD.search(response.get_data(as_text=True))[1]
    user = find_user("rater7")
    assert (user.role, user.active) == ("rater", True)
    _, login = _log_in(app, "rater7", password)
    assert login.status_code == 302
    assert password not in client.get("/users/").get_data(as_text=True)  # never again
    assert "user.add" in _actions()


@pytest.mark.usefixtures("coordinator")
def test_a_new_coordinator_sets_their_password_through_a_one_time_link(app, client):
    response = client.post(
        "/users/add", data={"username": "coord2", "role": "coordinator", "method": "link"}
    )
    page = response.get_data(as_text=True)
    assert SHOWN_PASSWORD.search(page) is None
    link = SHOWN_LINK.search(page)[1].replace("&amp;", "&")
    path = link.removeprefix("http://localhost")
    visitor = app.test_client()
    assert visitor.get(path).status_code == 200
    weak = {"new_password": "password1", "confirm": "password1"}
    refused = visitor.post(path, data=weak)
    assert refused.status_code == 400 and "too common" in refused.get_data(as_text=True)
    chosen = {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert visitor.post(path, data=chosen).status_code == 302
    assert visitor.get(path).status_code == 404  # used once
    assert visitor.post(path, data=chosen).status_code == 404
    _, login = _log_in(app, "coord2", NEW_PASSWORD)
    assert login.status_code == 302
    assert _actions()[-1] == "user.password_set"


@pytest.mark.usefixtures("app", "coordinator")
def test_a_link_stops_working_after_a_later_reset_or_when_it_is_forged(factory):
    rater = factory.user("r1")
    token = set_password_token(rater)
    assert user_of_token(token).id == rater.id
    assert user_of_token(token[:-2] + "xx") is None
    from rater.auth.service import reset_password

    reset_password(rater, "link")
    db.session.commit()
    assert user_of_token(token) is None


@pytest.mark.usefixtures("coordinator")
def test_a_refused_name_is_explained_and_nothing_is_added(client):
    response = client.post("/users/add", data={"username": "coord", "role": "rater"})
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    response = client.post("/users/add", data={"username": "a/b", "role": "rater"})
    assert response.status_code == 400 and "is not allowed" in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 1


@pytest.mark.usefixtures("coordinator")
def test_deactivate_reactivate_and_log_out_everywhere(app, client, factory):
    rater = factory.user("r1")
    rater_client, _ = _log_in(app, "r1", PASSWORD)
    assert rater_client.get("/queue").status_code == 200

    assert client.post(f"/users/{rater.id}/logout").status_code == 302
    assert rater_client.get("/queue").status_code == 302  # sent to log in

    rater_client, _ = _log_in(app, "r1", PASSWORD)
    assert client.post(f"/users/{rater.id}/deactivate").status_code == 302
    assert rater_client.get("/queue").status_code == 302
    assert _log_in(app, "r1", PASSWORD)[1].status_code == 401

    assert client.post(f"/users/{rater.id}/reactivate").status_code == 302
    assert _log_in(app, "r1", PASSWORD)[1].status_code == 302
    assert _actions() == [
        "user.add",
        "user.add",
        "user.sessions_end",
        "user.deactivate",
        "user.activate",
    ]


def test_nobody_deactivates_themselves_or_the_last_coordinator(client, factory, coordinator):
    response = client.post(f"/users/{coordinator.id}/deactivate", follow_redirects=True)
    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    db.session.refresh(coordinator)
    assert coordinator.active
    other = factory.user("coord2", "coordinator")
    assert client.post(f"/users/{other.id}/deactivate").status_code == 302
    db.session.refresh(other)
    assert not other.active


@pytest.mark.usefixtures("coordinator")
def test_a_reset_password_ends_the_old_one_and_the_sessions(app, client, factory):
    factory.user("r1")
    rater = find_user("r1")
    rater_client, _ = _log_in(app, "r1", PASSWORD)
    response = client.post(f"/users/{rater.id}/reset-password", data={"method": "password"})
    new = SHOWN_PASSWORD.search(response.get_data(as_text=True))[1]
    assert rater_client.get("/queue").status_code == 302
    assert _log_in(app, "r1", PASSWORD)[1].status_code == 401
    assert _log_in(app, "r1", new)[1].status_code == 302
    assert _actions()[-1] == "user.password_reset"


def test_every_user_changes_their_own_password(app, client, factory, auth):
    factory.user("r1")
    elsewhere, _ = _log_in(app, "r1", PASSWORD)
    auth.login("r1")
    assert client.get("/account/password").status_code == 200
    wrong = {"current_password": "nope-nope-nope", "new_password": NEW_PASSWORD,
             "confirm": NEW_PASSWORD}  # fmt: skip
    response = client.post("/account/password", data=wrong)
    assert response.status_code == 400 and "not right" in response.get_data(as_text=True)
    differ = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": "x" * 9}
    assert "differ" in client.post("/account/password", data=differ).get_data(as_text=True)
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert client.post("/account/password", data=right).status_code == 302
    assert client.get("/queue").status_code == 200  # this browser stays logged in
    assert elsewhere.get("/queue").status_code == 302  # the others are logged out
    assert _log_in(app, "r1", NEW_PASSWORD)[1].status_code == 302
    assert _actions()[-1] == "user.password_change"


def test_raters_cannot_administer_accounts(client, factory, auth):
    other = factory.user("r2")
    factory.user("r1")
    auth.login("r1")
    assert client.get("/users/").status_code == 403
    assert (
        client.post("/users/add", data={"username": "x1", "role": "coordinator"}).status_code == 403
    )
    assert client.post(f"/users/{other.id}/deactivate").status_code == 403
    assert find_user("x1") is None and find_user("r2").active
