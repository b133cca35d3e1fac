"""The user model: a rater or a coordinator."""

from __future__ import annotations

import secrets
from datetime import datetime
from functools import cache

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import Index, PrimaryKeyConstraint, String, func
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from rater.config import DEFAULT_PASSWORD_HASH
from rater.extensions import Model, check_in
from rater.states import Role
from rater.timeutil import utcnow


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (check_in("role", Role),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Each login session carries the generation it started in (rater.auth.sessions); raising
    # it ends every session of the user at once (logout, password change, deactivation).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=password_hash_method())

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR

    @property
    def is_rater(self) -> bool:
        return self.role == Role.RATER

    def __repr__(self) -> str:
        return f"<User {self.username} ({self.role})>"


# "Anna" and "anna" are one user: logins and login limits ignore the case of a name.
Index("uq_users_username_lower", func.lower(User.username), unique=True)


def password_hash_method() -> str:
    """The hash new passwords get: the app's ``RATER_PASSWORD_HASH`` (scrypt, see Config).

    Checking reads the method from the stored hash, so a change applies to new passwords only.
    """
    if has_app_context():
        return str(current_app.config.get("RATER_PASSWORD_HASH", DEFAULT_PASSWORD_HASH))
    return DEFAULT_PASSWORD_HASH


@cache
def dummy_password_hash(method: str = DEFAULT_PASSWORD_HASH) -> str:
    """A hash of a random password, made like every user's (``User.set_password``).

    A login for an unknown or deactivated user is checked against it, so that it costs what a
    wrong password costs and response times do not tell which user names exist.
    """
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def check_dummy_password(password: str) -> bool:
    """Spend one password check, like ``User.check_password``; never True in practice."""
    return check_password_hash(dummy_password_hash(password_hash_method()), password)


class LoginAttempt(Model):
    """One login attempt, kept so that rate limits hold across server processes.

    ``username`` is the name as typed, in lower case (the limits ignore the case). An attempt
    is recorded as failed before its password is checked and marked as succeeded after.
    """

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LoginLock(Model):
    """One row per account name and per client address that tried to log in.

    Not data: a login locks its two rows (``rater.auth.service.count_login_attempt``) before it
    counts the recent failures, so that simultaneous attempts are counted one after the other.
    """

    __tablename__ = "login_locks"
    __table_args__ = (PrimaryKeyConstraint("scope", "name"),)

    scope: Mapped[str] = mapped_column(String(10))  # "account" | "address"
    name: Mapped[str] = mapped_column(String(80))
    touched_at: Mapped[datetime] = mapped_column(default=utcnow)
