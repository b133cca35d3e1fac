"""Security headers, cookies, caching and error pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rater.config import PROJECT_ROOT, Config

EXPECTED_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def _csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def _assert_security_headers(response) -> None:
    csp = _csp(response)
    for name, sources in EXPECTED_CSP.items():
        assert csp[name] == sources, name
    for name, sources in csp.items():
        for source in sources:
            # no external origin, no inline or eval'd script anywhere
            assert source.startswith("'") or source in ("data:", "blob:"), (name, source)
        if name != "style-src":
            assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")


def test_headers_on_pages_errors_and_static_files(client, auth, factory):
    factory.user("r1")
    responses = [
        client.get("/login"),
        client.get("/no-such-page"),
        client.get("/static/css/app.css"),
    ]
    auth.login("r1")
    responses.append(client.get("/queue"))
    for response in responses:
        _assert_security_headers(response)


def test_pages_are_not_cached_but_static_files_may_be(client, auth, factory):
    factory.user("r1")
    auth.login("r1")
    assert client.get("/queue").headers["Cache-Control"] == "no-store"
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/css/app.css").headers.get("Cache-Control", "")


@pytest.mark.usefixtures("client")
def test_session_cookie_is_httponly_and_samesite_lax(auth, factory):
    factory.user("r1")
    cookie = auth.login("r1").headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in tests; see the HTTPS test


def test_session_cookie_is_secure_behind_https(build_app, app_config, factory, monkeypatch):
    monkeypatch.setenv("RATER_HTTPS", "1")
    app_config.SESSION_COOKIE_SECURE = Config().SESSION_COOKIE_SECURE
    app = build_app(app_config)
    factory.user("r1")
    client = app.test_client()
    response = client.post(
        "/login",
        data={"username": "r1", "password": "correct-horse-battery"},
        base_url="https://localhost",
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "max-age" in response.headers["Strict-Transport-Security"]


def test_https_and_session_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RATER_HTTPS", "1")
    monkeypatch.setenv("RATER_SESSION_IDLE_MINUTES", "20")
    monkeypatch.setenv("RATER_SESSION_MAX_HOURS", "8")
    config = Config()
    assert config.SESSION_COOKIE_SECURE and config.PREFERRED_URL_SCHEME == "https"
    assert config.RATER_SESSION_IDLE_MINUTES == 20
    assert config.PERMANENT_SESSION_LIFETIME.total_seconds() == 8 * 3600
    monkeypatch.delenv("RATER_HTTPS")
    assert not Config().SESSION_COOKIE_SECURE


def test_errors_never_show_exception_text(build_app, app_config):
    app = build_app(app_config)

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret-detail-4711 in /srv/rater/rater/views.py")

    client = app.test_client()
    for headers in ({}, {"Accept": "application/json"}):
        response = client.get("/boom", headers=headers)
        body = response.get_data(as_text=True)
        assert response.status_code == 500
        assert "secret-detail-4711" not in body
        assert "Traceback" not in body and "RuntimeError" not in body and ".py" not in body
        _assert_security_headers(response)
    assert response.get_json()["status"] == 500


def test_templates_have_no_inline_scripts_or_handlers():
    """The CSP forbids inline script; a template with one would silently break in browsers."""
    # A JSON data block (type="application/json") is not executed and is fine.
    inline_script = re.compile(r"<script(?![^>]*\b(src=|type=.application/json))[^>]*>", re.I)
    handler = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
    external = re.compile(r"""(src|href)=["']?(https?:)?//""", re.I)
    offenders = []
    for path in sorted(Path(PROJECT_ROOT, "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for name, pattern in (("inline script", inline_script), ("handler", handler)):
            if pattern.search(text):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}: {name}")
        if external.search(text):
            offenders.append(f"{path.relative_to(PROJECT_ROOT)}: external resource")
    assert not offenders, offenders
