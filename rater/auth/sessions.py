"""Login sessions: what the session cookie holds, and when the server stops honouring it.

A Flask session is a signed cookie that the server keeps no copy of: a captured cookie works
wherever it is replayed until the server refuses it. Besides Flask-Login's user id the cookie
holds

* ``_gen``, the user's session generation at login. Logout, a password change, deactivation
  and ``rater users logout NAME`` raise the user's generation (``rater.auth.service``), which
  ends every session that started before: the user loader refuses them, and autosave, which
  does not load the user, compares the generation in its own UPDATE. One generation per user
  means that logging out in one browser logs the user out in every other browser too: the
  price of keeping no table of sessions, and what a shared computer in a clinic wants anyway.
* ``_login_at``, the login time: the session ends ``RATER_SESSION_MAX_HOURS`` after it, however
  often the cookie was re-signed since (Flask's own limit counts from the last signing).
* ``_seen``, the last request: the session ends after ``RATER_SESSION_IDLE_MINUTES`` without one.

``rater.security`` ends a session that is too old or idle before each request.
"""

from __future__ import annotations

import time

from flask import current_app, session
from flask_login import login_user, logout_user

from rater.auth.models import User
from rater.extensions import db

GENERATION_KEY = "_gen"
LOGIN_AT_KEY = "_login_at"
LAST_SEEN_KEY = "_seen"


def start_session(user: User) -> None:
    """Log ``user`` in with a new session.

    Nothing of the anonymous session survives, its CSRF token included: a token (or anything
    else) planted before the login is worthless after it.
    """
    session.clear()
    login_user(user)
    session.permanent = True  # the cookie's lifetime: PERMANENT_SESSION_LIFETIME
    now = int(time.time())
    session[LOGIN_AT_KEY] = now
    session[LAST_SEEN_KEY] = now
    session[GENERATION_KEY] = user.session_generation


def end_session() -> None:
    """Forget this session's login and everything else it held (the cookie is rewritten)."""
    logout_user()
    session.clear()


def session_generation() -> int | None:
    """The session generation this session started in (None: not logged in)."""
    value = session.get(GENERATION_KEY)
    return value if isinstance(value, int) else None


def load_session_user(user_id: str) -> User | None:
    """Flask-Login's user loader: the session's user while the session is still theirs.

    A deactivated user's sessions end at once, and so does a session from an older
    generation (its user logged out, changed the password or was logged out everywhere).
    """
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active or session_generation() != user.session_generation:
        return None
    return user


def expiry_message(now: int) -> str | None:
    """Why this logged-in session has ended at ``now`` (seconds), or None while it goes on."""
    config = current_app.config
    max_age = int(current_app.permanent_session_lifetime.total_seconds())
    login_at = session.get(LOGIN_AT_KEY)
    if not isinstance(login_at, int):  # a cookie from before login times were kept
        return "Your session has ended. Please log in again."
    if now - login_at > max_age:
        return f"Your session ended {_duration(max_age)} after login. Please log in again."
    idle_limit = config.get("RATER_SESSION_IDLE_MINUTES", 60) * 60
    seen = session.get(LAST_SEEN_KEY)
    if isinstance(seen, int) and now - seen > idle_limit:
        minutes = idle_limit // 60
        return f"Your session ended after {minutes} minutes without activity. Please log in."
    return None


def _duration(seconds: int) -> str:
    """'12 hours', '1.5 hours', '1 minute', '45 minutes'."""
    if seconds >= 3600:
        hours = round(seconds / 3600, 2)
        return f"{hours:g} hour" + ("" if hours == 1 else "s")
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute" + ("" if minutes == 1 else "s")
