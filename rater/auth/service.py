"""User management: flushes, never commits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from rater import audit
from rater.auth.models import ROLES, LoginAttempt, User
from rater.extensions import db
from rater.timeutil import utcnow


class UserError(ValueError):
    pass


def add_user(username: str, role: str, password: str) -> User:
    username = username.strip()
    if not username:
        raise UserError("the username is empty")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not '{role}'")
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    if find_user(username) is not None:
        raise UserError(f"a user named '{username}' already exists")
    user = User(username=username, role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record("user.add", "user", user.id, after={"username": username, "role": role})
    return user


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def set_active(username: str, active: bool) -> User:
    user = find_user(username)
    if user is None:
        raise UserError(f"no user named '{username}'")
    if user.active != active:
        audit.record(
            "user.activate" if active else "user.deactivate",
            "user",
            user.id,
            before={"active": user.active},
            after={"active": active},
        )
        user.active = active
    return user


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.role, User.username)))


def authenticate(username: str, password: str) -> User | None:
    """The active user with that password, or None (same answer for every failure)."""
    user = find_user(username)
    if user is None or not user.active or not user.check_password(password):
        return None
    return user


@dataclass(frozen=True)
class LoginLimits:
    """How many failed logins are allowed within a sliding window."""

    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_address: int = 20


@dataclass(frozen=True)
class LoginBlock:
    """Why a login is refused before the password is even checked, and for how long."""

    scope: str  # "account" | "address"
    retry_after: timedelta

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds() / 60))

    @property
    def message(self) -> str:
        whom = "this account" if self.scope == "account" else "your network address"
        unit = "minute" if self.minutes == 1 else "minutes"
        return f"Too many failed attempts for {whom}; try again in {self.minutes} {unit}."


def login_block(
    username: str, address: str, limits: LoginLimits, now: datetime | None = None
) -> LoginBlock | None:
    """A block when the account or the address has used up its failures in the window.

    An account's count restarts after a successful login; an address's does not (one's own
    account must not reset the count for guessing at others). Blocked attempts are not
    recorded, so waiting out the window always works.
    """
    now = now or utcnow()
    since = now - limits.window
    last_success = (
        select(func.max(LoginAttempt.at))
        .where(LoginAttempt.username == username, LoginAttempt.succeeded.is_(True))
        .scalar_subquery()
    )
    account = _nth_latest_failure(
        LoginAttempt.username == username,
        LoginAttempt.at > func.coalesce(last_success, since),
        since=since,
        n=limits.per_account,
    )
    if account is not None:
        return LoginBlock("account", account + limits.window - now)
    by_address = _nth_latest_failure(
        LoginAttempt.address == address, since=since, n=limits.per_address
    )
    if by_address is not None:
        return LoginBlock("address", by_address + limits.window - now)
    return None


def _nth_latest_failure(*conditions, since: datetime, n: int) -> datetime | None:
    """The time of the n-th most recent failure in the window, or None if there are fewer."""
    return db.session.scalar(
        select(LoginAttempt.at)
        .where(LoginAttempt.succeeded.is_(False), LoginAttempt.at > since, *conditions)
        .order_by(LoginAttempt.at.desc())
        .offset(n - 1)
        .limit(1)
    )


def record_login_attempt(username: str, address: str, succeeded: bool) -> None:
    db.session.add(
        LoginAttempt(username=username[:80], address=address[:64], succeeded=succeeded, at=utcnow())
    )
    db.session.flush()
