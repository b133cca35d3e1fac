"""Password hashing, login rate limits, session inactivity and deactivation."""

from __future__ import annotations

from datetime import timedelta

from flask import g
from sqlalchemy import func, select

from rater.auth.models import LoginAttempt
from rater.auth.service import set_active
from rater.config import Config
from rater.extensions import db
from tests.conftest import PASSWORD

WRONG = "not-the-password"


def _attempts() -> int:
    return db.session.scalar(select(func.count()).select_from(LoginAttempt))


def _age_attempts(minutes: int) -> None:
    for attempt in db.session.scalars(select(LoginAttempt)):
        attempt.at -= timedelta(minutes=minutes)  # in Python: SQLite has no datetime arithmetic
    db.session.commit()


def _login(client, username, password="correct-horse-battery", address="10.0.0.1"):
    g.pop("_login_user", None)  # requests share the test's app context (see route_table)
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_passwords_are_hashed_with_scrypt(app, factory):
    """Production hashes with scrypt; the suite's cheap hash (TestConfig) is its own setting,
    and a password hashed one way still verifies after the setting changes."""
    cheap = factory.user("cheap")
    app.config["RATER_PASSWORD_HASH"] = Config().RATER_PASSWORD_HASH
    user = factory.user("r1")
    assert user.password_hash.startswith("scrypt:")
    assert "correct-horse-battery" not in user.password_hash
    assert user.check_password("correct-horse-battery") and not user.check_password(WRONG)
    assert not cheap.password_hash.startswith("scrypt:")
    assert cheap.check_password("correct-horse-battery") and not cheap.check_password(WRONG)


def test_five_failures_lock_the_account_for_fifteen_minutes(client, factory):
    factory.user("r1")
    factory.user("r2")
    for _ in range(5):
        assert _login(client, "r1", WRONG).status_code == 401
    response = _login(client, "r1")  # even the right password is not checked now
    assert response.status_code == 429
    text = response.get_data(as_text=True)
    assert "Too many failed attempts for this account; try again in 15 minutes." in text
    assert response.headers["Retry-After"] == "900"
    assert _attempts() == 5  # refused attempts are not counted: waiting always works
    # other accounts are unaffected
    assert _login(client.application.test_client(), "r2").status_code == 302
    _age_attempts(10)
    assert "try again in 5 minutes" in _login(client, "r1").get_data(as_text=True)
    _age_attempts(6)
    assert _login(client, "r1").status_code == 302


def test_a_successful_login_restarts_the_account_count(client, auth, factory):
    factory.user("r1")
    for _ in range(4):
        _login(client, "r1", WRONG)
    assert _login(client, "r1").status_code == 302
    auth.logout()
    for _ in range(4):
        assert _login(client, "r1", WRONG).status_code == 401
    assert _login(client, "r1").status_code == 302


def test_twenty_failures_from_one_address_block_that_address(client, factory):
    factory.user("r1")
    for i in range(20):
        assert _login(client, f"guess{i}", WRONG, address="10.9.9.9").status_code == 401
    blocked = _login(client, "r1", address="10.9.9.9")
    assert blocked.status_code == 429
    assert "Too many failed attempts for your network address" in blocked.get_data(as_text=True)
    assert _login(client, "r1", address="10.9.9.10").status_code == 302


def test_limits_hold_across_server_processes(build_app, app_config, client, factory):
    """Two app instances (like two gunicorn workers) share the count through the database."""
    factory.user("r1")
    other = build_app(app_config).test_client()
    for i in range(5):
        _login(client if i % 2 else other, "r1", WRONG)
    assert _login(other, "r1").status_code == 429
    assert _login(client, "r1").status_code == 429


def test_forwarded_address_is_used_only_behind_a_trusted_proxy(build_app, app_config, factory):
    factory.user("r1")
    app_config.RATER_PROXY_COUNT = 1
    client = build_app(app_config).test_client()
    for i in range(20):
        client.post(
            "/login",
            data={"username": f"guess{i}", "password": WRONG},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
    assert {a.address for a in db.session.scalars(select(LoginAttempt))} == {"203.0.113.7"}
    ok = client.post(
        "/login",
        data={"username": "r1", "password": "correct-horse-battery"},
        headers={"X-Forwarded-For": "203.0.113.8"},
    )
    assert ok.status_code == 302


def test_session_ends_after_inactivity(client, auth, factory, app):
    factory.user("r1")
    auth.login("r1")
    assert client.get("/queue").status_code == 200
    idle = app.config["RATER_SESSION_IDLE_MINUTES"]
    assert idle == 60
    with client.session_transaction() as session:
        session["_seen"] -= (idle - 1) * 60  # 59 minutes: still fine, and the clock restarts
    assert client.get("/queue").status_code == 200
    with client.session_transaction() as session:
        session["_seen"] -= idle * 60 + 1
    g.pop("_login_user", None)
    response = client.get("/queue")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session ended after 60 minutes without activity" in page
    g.pop("_login_user", None)
    assert client.get("/queue").status_code == 302  # logged out for good


def test_idle_json_request_gets_401(client, auth, factory):
    factory.user("r1")
    auth.login("r1")
    with client.session_transaction() as session:
        session["_seen"] -= 61 * 60
    response = client.get("/queue", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert "without activity" in response.get_json()["error"]


def test_a_deactivated_users_session_ends_at_once(client, auth, factory):
    factory.user("r1")
    auth.login("r1")
    assert client.get("/queue").status_code == 200
    set_active("r1", False)
    db.session.commit()
    g.pop("_login_user", None)
    assert client.get("/queue").status_code == 302
    assert client.post("/logout").status_code == 302
    assert _login(client, "r1").status_code == 401  # and cannot log in again


def test_every_refused_login_costs_exactly_one_password_hash(client, factory, monkeypatch):
    """Unknown, deactivated and wrong-password logins cost the same: one hash check each,
    with the same algorithm and parameters, so that response times reveal no user names."""
    from rater.auth import models

    user = factory.user("r1")
    factory.user("gone")
    set_active("gone", False)
    db.session.commit()
    models.dummy_password_hash.cache_clear()  # computed afresh, as in a new server process
    checked: list[str] = []
    real_check = models.check_password_hash

    def counting_check(pwhash: str, password: str) -> bool:
        checked.append(pwhash.split("$")[0])  # the method and its parameters
        return real_check(pwhash, password)

    monkeypatch.setattr(models, "check_password_hash", counting_check)
    for username, password in (("nobody", WRONG), ("gone", PASSWORD), ("r1", WRONG)):
        checked.clear()
        assert _login(client, username, password).status_code == 401
        assert checked == [user.password_hash.split("$")[0]], username


def test_the_account_limit_ignores_the_case_of_the_username(client, factory):
    factory.user("r1")
    for name in ("R1", "r1", "R1", "r1", "R1"):
        assert _login(client, name, WRONG).status_code == 401
    assert _login(client, "r1").status_code == 429


def test_usernames_log_in_regardless_of_case(client, factory):
    factory.user("Anna")
    assert _login(client, "anna").status_code == 302
