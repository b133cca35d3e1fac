"""Sessions end on the server: logout, password change, deactivation, "log out everywhere"
and the maximum age from login; the CSRF token of the anonymous session dies at login.

A signed session cookie is valid wherever it is replayed, so each of these replays a cookie
captured while it still worked and expects the login page (401 for JSON requests).
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from flask import g

from rater.auth import service
from rater.extensions import db
from tests.conftest import PASSWORD
from tests.rating.helpers import build_study, started

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def _replay(app, cookie: str):
    """A fresh client (another browser: an attacker) holding a captured session cookie."""
    g.pop("_login_user", None)
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def _sent_to_login(response) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture
def rater_study(factory, client, auth):
    """r1 logged in with a started rating; the cookie captured while it works."""
    study = build_study(factory)
    started(study.assignment)
    assert auth.login("r1").status_code == 302
    assert client.get("/queue").status_code == 200
    return study


def _urls(study) -> dict[str, str]:
    return {
        "page": "/queue",
        "audio": f"/assignments/{study.id}/audio",
        "autosave": f"/assignments/{study.id}/autosave",
    }


def _assert_replay_refused(app, cookie: str, study) -> None:
    replay = _replay(app, cookie)
    urls = _urls(study)
    assert _sent_to_login(replay.get(urls["page"]))
    assert _sent_to_login(replay.get(urls["audio"]))
    body = {"base_version": 1, "changes": [{"op": "position", "seconds": 3}]}
    saved = replay.post(urls["autosave"], json=body)
    assert saved.status_code == 401, saved.get_json()
    assert "log in" in saved.get_json()["error"].lower()
    db.session.expire_all()
    assert study.assignment.rating.audio_position == 0  # nothing was saved


def test_a_cookie_replayed_after_logout_gets_the_login_page(app, client, auth, rater_study):
    cookie = _session_cookie(client)
    replay = _replay(app, cookie)
    assert replay.get("/queue").status_code == 200  # the captured cookie works ...
    assert auth.logout().status_code == 302
    _assert_replay_refused(app, cookie, rater_study)  # ... and not after logout


@pytest.mark.parametrize(
    "end",
    [
        lambda: service.end_sessions("r1"),
        lambda: service.set_password("r1", "a-brand-new-passphrase"),
        lambda: service.set_active("r1", False),
    ],
    ids=["log-out-everywhere", "password-change", "deactivation"],
)
def test_a_cookie_replayed_after_the_sessions_were_ended_gets_the_login_page(
    app, client, rater_study, end
):
    cookie = _session_cookie(client)
    end()
    db.session.commit()
    _assert_replay_refused(app, cookie, rater_study)


def test_reactivation_does_not_revive_old_sessions(app, client, rater_study):
    cookie = _session_cookie(client)
    service.set_active("r1", False)
    db.session.commit()
    service.set_active("r1", True)
    db.session.commit()
    _assert_replay_refused(app, cookie, rater_study)


@pytest.mark.usefixtures("app", "rater_study")
def test_a_new_login_works_after_the_old_sessions_ended(client, auth):
    service.end_sessions("r1")
    db.session.commit()
    g.pop("_login_user", None)
    assert _sent_to_login(client.get("/queue"))
    assert auth.login("r1").status_code == 302
    assert client.get("/queue").status_code == 200


def test_cli_logs_a_user_out_everywhere(app, client, runner, rater_study):
    cookie = _session_cookie(client)
    result = runner.invoke(args=["users", "logout", "r1"])
    assert result.exit_code == 0, result.output
    assert "Ended every session of r1" in result.output
    _assert_replay_refused(app, cookie, rater_study)
    missing = runner.invoke(args=["users", "logout", "nobody"])
    assert missing.exit_code == 1 and "no user named 'nobody'" in missing.output


def test_cli_changes_a_password_and_ends_the_sessions(app, client, auth, runner, rater_study):
    cookie = _session_cookie(client)
    args = ["users", "password", "r1", "--password-stdin"]
    weak = runner.invoke(args=args, input="password1\n")
    assert weak.exit_code == 1 and "too common" in weak.output
    result = runner.invoke(args=args, input="a-brand-new-passphrase\n")
    assert result.exit_code == 0, result.output
    _assert_replay_refused(app, cookie, rater_study)
    g.pop("_login_user", None)
    assert auth.login("r1").status_code == 401
    assert auth.login("r1", "a-brand-new-passphrase").status_code == 302


# --- the maximum age counts from login -----------------------------------------------------


class Clock:
    """``time.time`` under the test's control (the cookie's signature uses it too)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    return clock


def test_a_session_refreshed_often_still_ends_at_the_maximum_age(app, client, auth, factory, clock):
    """A 72 s maximum: a request every 35 s re-signs the cookie, yet it ends 72 s after login."""
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=72)
    factory.user("r1")
    assert auth.login("r1").status_code == 302
    for _ in range(2):  # 35 s and 70 s after login
        clock.now += 35
        g.pop("_login_user", None)
        assert client.get("/queue").status_code == 200
    clock.now += 35  # 105 s after login; the cookie was last re-signed 35 s ago
    g.pop("_login_user", None)
    response = client.get("/queue")
    assert _sent_to_login(response)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session ended 1 minute after login" in page
    g.pop("_login_user", None)
    assert _sent_to_login(client.get("/queue"))  # over for good


def test_autosave_after_the_maximum_age_gets_401(app, client, auth, factory, clock):
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=72)
    study = build_study(factory)
    started(study.assignment)
    assert auth.login("r1").status_code == 302
    clock.now += 40
    assert client.get("/queue").status_code == 200  # re-signs the cookie
    clock.now += 33
    body = {"base_version": 1, "changes": [{"op": "position", "seconds": 3}]}
    response = client.post(f"/assignments/{study.id}/autosave", json=body)
    assert response.status_code == 401
    assert "after login" in response.get_json()["error"]


def test_a_session_within_the_maximum_age_goes_on(app, client, auth, factory, clock):
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=72)
    factory.user("r1")
    assert auth.login("r1").status_code == 302
    clock.now += 71
    assert client.get("/queue").status_code == 200


# --- the CSRF token is rotated at login ------------------------------------------------------


def test_the_csrf_token_of_the_anonymous_session_dies_at_login(csrf_app, factory):
    factory.user("r1")
    client = csrf_app.test_client()
    before = CSRF_FIELD.search(client.get("/login").get_data(as_text=True))[1]
    login = {"username": "r1", "password": PASSWORD, "csrf_token": before}
    assert client.post("/login", data=login).status_code == 302
    refused = client.post("/logout", data={"csrf_token": before})
    assert refused.status_code == 400
    after = CSRF_META.search(client.get("/queue").get_data(as_text=True))[1]
    assert after != before
    assert client.post("/logout", data={"csrf_token": after}).status_code == 302
