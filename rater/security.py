"""Security headers, session lifetime and inactivity, proxy trust.

Login rate limits live with the login itself (``rater.auth.service``); they are kept in the
database so that they hold across every gunicorn worker.
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, flash, redirect, request, session, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from rater.auth.decorators import session_user_id
from rater.auth.sessions import LAST_SEEN_KEY, end_session, expiry_message
from rater.errors import _wants_json, render_error

# No inline scripts and no external origins. Inline style attributes are tolerated.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

# The last-seen stamp is rewritten at most this often, so the cookie does not change on
# every single request (autosave sends many).
LAST_SEEN_RESOLUTION_SECONDS = 30


def register(app: Flask) -> None:
    """Install the security measures on the app."""
    if app.config.get("RATER_PROXY_COUNT", 0) > 0:
        hops = app.config["RATER_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.before_request(_end_expired_session)
    app.before_request(_require_json_object)
    app.after_request(_add_security_headers)


def _end_expired_session():
    """Log out a session older than the maximum age (from login) or idle for too long."""
    # The session's user id, not current_user: reading it needs no database round trip.
    if request.endpoint == "static" or session_user_id() is None:
        return None
    now = int(time.time())
    message = expiry_message(now)
    if message is not None:
        end_session()
        if request.endpoint == "auth.login":  # where an ended session leads anyway
            return None
        if request.method == "GET" and not _wants_json():
            flash(message, "info")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return render_error(401, message)
    if not session.permanent:
        session.permanent = True  # bounded by PERMANENT_SESSION_LIFETIME
    seen = session.get(LAST_SEEN_KEY)
    if not isinstance(seen, int) or now - seen >= LAST_SEEN_RESOLUTION_SECONDS:
        session[LAST_SEEN_KEY] = now
    return None


def _require_json_object():
    """A JSON request body must be one JSON object (forms and autosave read it as fields).

    Flask-WTF turns a JSON body into form data and fails with a TypeError on a list, a string
    or a number; refusing those here gives a clear 400 for every endpoint at once.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or not request.is_json:
        return None
    if not isinstance(request.get_json(silent=True), dict):
        return render_error(400, "The request body must be a JSON object.")
    return None


def _add_security_headers(response: Response) -> Response:
    """Add each security header the response does not set itself (one pass over its headers)."""
    present = {name.lower() for name, _ in response.headers.items()}
    wanted = list(SECURITY_HEADERS.items())
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        wanted.append(("Strict-Transport-Security", "max-age=31536000"))
    # Pages and data carry clinical information: never keep them in a browser or proxy cache.
    if request.endpoint != "static":
        wanted.append(("Cache-Control", "no-store"))
    response.headers.extend([(k, v) for k, v in wanted if k.lower() not in present])
    return response
