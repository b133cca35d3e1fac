"""Security headers, session lifetime and inactivity, proxy trust.

Login rate limits live with the login itself (``rater.auth.service``); they are kept in the
database so that they hold across every gunicorn worker.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, current_app, flash, redirect, request, session, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
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

# Pages for anyone (no login needed): an ended session is forgotten and the request goes on.
# The login page is where an ended session leads anyway; a set-password link must work in a
# browser whose old session has ended.
OPEN_WITHOUT_LOGIN = frozenset({"auth.login", "accounts.set_password"})

# The last-seen stamp is rewritten at most this often, so the cookie does not change on
# every single request (autosave sends many).
LAST_SEEN_RESOLUTION_SECONDS = 30


def register(app: Flask) -> None:
    """Install the security measures on the app."""
    if app.config.get("RATER_PROXY_COUNT", 0) > 0:
        hops = app.config["RATER_PROXY_COUNT"]
        # Flask's documented way to add WSGI middleware; Flask types wsgi_app as a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    app.before_request(_end_expired_session)
    app.before_request(refuse_unusable_input)
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
        if request.endpoint in OPEN_WITHOUT_LOGIN:  # they serve anyone: the request goes on
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


# --- input every view can rely on ----------------------------------------------------------

MAX_JSON_BODY_BYTES = 2 * 1024 * 1024  # autosave batches are a few kB; CSV uploads are forms
MAX_JSON_DEPTH = 32  # an autosave batch nests 4 levels deep
MAX_URL_ID = 2**31 - 1  # ids in URLs are INTEGER primary keys: a larger number names nothing
TOO_DEEP = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."
TOO_LARGE = f"The JSON body is larger than {MAX_JSON_BODY_BYTES // 2**20} MB."


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None.

    PostgreSQL's text refuses NUL characters, and a lone surrogate (JSON's ``"\\ud800"``) cannot
    be encoded as UTF-8 by either database driver: both would end in a 500.
    """
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def refuse_unusable_input():
    """Refuse a request whose input no view could store: 400 naming the part, never a 500.

    Checked for every route before its view: path parameters, the query string, form fields
    and JSON bodies (at most 2 MB, nested at most 32 levels). An id in the URL beyond the
    database's INTEGER range names nothing: 404, as for any id that does not exist.
    """
    if request.is_json:  # before anything reads the body (the limit is fixed once it is read)
        request.max_content_length = MAX_JSON_BODY_BYTES
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value > MAX_URL_ID:
            return render_error(404)
        if isinstance(value, str) and (problem := text_problem(value)):
            return render_error(400, f"The address part '{name}' {problem}.")
    for where, fields in (("query parameter", request.args), ("form field", _form_fields())):
        for key, value in fields.items(multi=True):
            if problem := text_problem(key) or text_problem(value):
                return render_error(400, f"The {where} {_shown(key)} {problem}.")
    try:
        problem = _json_problem()
    except RequestEntityTooLarge:
        return render_error(413, TOO_LARGE)
    return render_error(400, problem) if problem else None


def _form_fields() -> Any:
    """The form fields of a request with a form body (a GET's form is never read)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.is_json:
        return MultiDict()
    return request.form


def _shown(key: str) -> str:
    """A field name for a message, without the characters that make it unusable."""
    return repr(key.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")[:40])


def _json_problem() -> str | None:
    """Why the JSON body cannot be used, or None (also when it is no JSON or not JSON at all:
    ``_require_json_object`` answers that)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not request.is_json:
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the JSON decoder's own limit, far deeper than MAX_JSON_DEPTH
        return TOO_DEEP
    return _json_value_problem(body)


def _json_value_problem(body: Any) -> str | None:
    """The first problem of a parsed JSON value: too deep, or a string that cannot be stored.

    Walked with an explicit stack (no recursion), keys and values alike; ``where`` names the
    place (``changes[0].text``).
    """
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return TOO_DEEP
        if isinstance(value, str):
            if problem := text_problem(value):
                return f"The JSON value at {where[:80] or 'the top'} {problem}."
        elif isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key):
                    return f"A JSON key in {where[:80] or 'the top object'} {problem}."
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
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
