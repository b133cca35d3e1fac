"""One-time set-password links: a signed token naming the user and their password hash.

The token holds the user's id and a fingerprint of their current password hash, signed with
the app's secret key and valid for ``RATER_SET_PASSWORD_HOURS``. Setting a password through the
link changes the hash, so the link works once; a later reset, or a change of the password in any
other way, invalidates every earlier link too. No table of tokens is kept.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from rater.auth.models import User
from rater.extensions import db

SALT = "rater.set-password"
DEFAULT_HOURS = 72


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:20]


def link_hours() -> float:
    return float(current_app.config.get("RATER_SET_PASSWORD_HOURS", DEFAULT_HOURS))


def set_password_token(user: User) -> str:
    """A token for ``user``'s set-password link (flush the new password hash first)."""
    return _serializer().dumps({"user": user.id, "hash": _fingerprint(user)})


def user_of_token(token: str) -> User | None:
    """The active user a valid, unused and unexpired token names, or None."""
    try:
        payload = _serializer().loads(token, max_age=int(link_hours() * 3600))
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), int):
        return None
    user = db.session.get(User, payload["user"])
    if user is None or not user.active or payload.get("hash") != _fingerprint(user):
        return None
    return user
