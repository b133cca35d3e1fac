"""User management and login limits: flushes, never commits."""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from rater import audit
from rater.auth.models import LoginAttempt, LoginLock, User, check_dummy_password
from rater.auth.passwords import password_problem
from rater.extensions import db
from rater.states import Role
from rater.timeutil import utcnow

USERNAME_MAX_LENGTH = 80
# Letters, digits, ".", "_" and "-", starting with a letter or digit: safe in URLs, file names
# and exports ("/" would split a URL; a leading "." could make "." or "..").
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# How a coordinator hands out a new account's or a reset password: a set-password link the
# user follows (nobody else ever knows the password), or a random password shown once.
CREDENTIAL_METHODS = ("link", "password")


class UserError(ValueError):
    pass


def add_user(username: str, role: str, password: str) -> User:
    username = username.strip()
    _check_username(username)
    if role not in set(Role):
        raise UserError(f"role must be one of {', '.join(Role)}, not '{role}'")
    _check_password(password, username)
    if find_user(username) is not None:
        raise UserError(f"a user named '{username}' already exists")
    user = User(username=username, role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record("user.add", "user", user.id, after={"username": username, "role": role})
    return user


def _check_username(username: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username) or len(username) > USERNAME_MAX_LENGTH:
        raise UserError(
            f"the user name '{username}' is not allowed: use 1-{USERNAME_MAX_LENGTH} letters "
            "(a-z, A-Z), digits, '.', '_' or '-', starting with a letter or digit"
        )


def _check_password(password: str, username: str) -> None:
    problem = password_problem(password, [username])
    if problem is not None:
        raise UserError(problem)


def find_user(username: str) -> User | None:
    """The user of that name, whatever the case of its letters."""
    return db.session.scalar(select(User).where(func.lower(User.username) == func.lower(username)))


def _user_named(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise UserError(f"no user named '{username}'")
    return user


def set_active(username: str, active: bool) -> User:
    """Activate or deactivate a user; deactivation ends their sessions for good."""
    user = _user_named(username)
    if user.active != active:
        audit.record(
            "user.activate" if active else "user.deactivate",
            "user",
            user.id,
            before={"active": user.active},
            after={"active": active},
        )
        user.active = active
        if not active:  # reactivation must not revive them
            _end_sessions(user)
    return user


def set_password(username: str, password: str) -> User:
    """Give a user a new password (checked by the policy); their sessions end."""
    user = _user_named(username)
    _check_password(password, user.username)
    user.set_password(password)
    _end_sessions(user)
    audit.record("user.password", "user", user.id, after={"sessions": "ended"})
    return user


def add_account(username: str, role: str, method: str) -> tuple[User, str]:
    """A coordinator adds a user with a random password (see ``reset_password``'s ``method``)."""
    if method not in CREDENTIAL_METHODS:
        raise UserError(f"method must be one of {', '.join(CREDENTIAL_METHODS)}")
    password = generated_password()
    return add_user(username, role, password), password


def generated_password() -> str:
    """A random password for an account a coordinator creates or resets (shown once).

    16 characters from a 64-letter alphabet: 96 random bits, far beyond any guessing, and
    easy to copy (no characters that look alike are avoided: it is pasted, not typed)."""
    return secrets.token_urlsafe(12)


def reset_password(user: User, method: str) -> str:
    """A coordinator resets ``user``'s password: the old one stops working at once and their
    sessions end. Returns the new random password; with ``method`` "link" nobody is shown it
    (the user sets their own through a set-password link, see ``rater.auth.links``)."""
    if method not in CREDENTIAL_METHODS:
        raise UserError(f"method must be one of {', '.join(CREDENTIAL_METHODS)}")
    password = generated_password()
    user.set_password(password)
    _end_sessions(user)
    audit.record(
        "user.password_reset", "user", user.id, after={"method": method, "sessions": "ended"}
    )
    return password


def change_own_password(user: User, current: str, new: str) -> None:
    """A user changes their own password: the current one must be right; every session of
    theirs ends (the caller starts a new one for the browser that asked)."""
    if not user.check_password(current):
        raise UserError("the current password is not right")
    if current == new:
        raise UserError("the new password is the same as the current one")
    _check_password(new, user.username)
    user.set_password(new)
    _end_sessions(user)
    audit.record("user.password_change", "user", user.id, after={"sessions": "ended"})


def set_password_from_link(user: User, password: str) -> None:
    """The user chose a password through their set-password link (which it invalidates:
    the link is bound to the old password hash, see ``rater.auth.links``)."""
    _check_password(password, user.username)
    user.set_password(password)
    _end_sessions(user)
    audit.record("user.password_set", "user", user.id, user_id=user.id, after={"via": "link"})


def deactivation_problem(user: User, actor: User) -> str | None:
    """Why ``actor`` may not deactivate ``user`` (None: they may).

    Nobody deactivates themselves, and the last active coordinator stays: either would leave
    the study without anyone who can administer it from the browser."""
    if user.id == actor.id:
        return "you cannot deactivate your own account"
    if user.is_coordinator and user.active and active_coordinators() <= 1:
        return "the last active coordinator cannot be deactivated"
    return None


def active_coordinators() -> int:
    query = select(func.count()).where(User.role == "coordinator", User.active.is_(True))
    return int(db.session.scalar(query) or 0)


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def end_sessions(username: str) -> User:
    """Log a user out everywhere: every session of theirs ends at its next request."""
    user = _user_named(username)
    _end_sessions(user)
    audit.record("user.sessions_end", "user", user.id, after={"sessions": "ended"})
    return user


def log_out(user: User) -> None:
    """The user logs out: this session ends, and with it every other session of theirs
    (one generation per user; see rater.auth.sessions)."""
    _end_sessions(user)
    audit.record("user.logout", "user", user.id, user_id=user.id)


def _end_sessions(user: User) -> None:
    """Raise the user's session generation: the sessions that carry an older one end.

    Raised in SQL, so that two requests that end sessions at once both count.
    """
    user.session_generation = User.session_generation + 1
    db.session.flush()


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.role, User.username)))


def authenticate(username: str, password: str) -> User | None:
    """The active user with that password, or None (same answer for every failure).

    Every failure costs one password check: an unknown or deactivated user's login is checked
    against a dummy hash, so that response times do not reveal which user names exist.
    """
    user = find_user(username)
    if user is None or not user.active:
        check_dummy_password(password)
        return None
    return user if user.check_password(password) else None


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


def account_key(username: str) -> str:
    """The name an account's login attempts are counted under: the case does not matter."""
    return username.strip().lower()[:USERNAME_MAX_LENGTH]


def count_login_attempt(
    username: str, address: str, limits: LoginLimits
) -> LoginAttempt | LoginBlock:
    """Count a login attempt before its password is checked, or refuse it with a block.

    Counting and checking the limits is one atomic step: the account's and the address's
    ``login_locks`` rows are locked first (SQLite: the statement takes the database's write
    lock; PostgreSQL: row locks, always the account's before the address's, so two logins
    cannot wait for each other), and only then are the recent failures counted. The attempt
    is recorded as failed; ``login_succeeded`` corrects it. The caller commits at once, before
    the (slow) password check, which releases the locks: simultaneous guesses are counted one
    after the other, so no more than the limit are ever checked.
    """
    account, address = account_key(username), address[:64]
    now = utcnow()
    _lock_login_counters(account, address, now)
    block = login_block(account, address, limits, now)
    if block is not None:
        return block
    attempt = LoginAttempt(username=account, address=address, succeeded=False, at=now)
    db.session.add(attempt)
    db.session.flush()
    return attempt


def login_succeeded(attempt: LoginAttempt) -> None:
    attempt.succeeded = True
    db.session.flush()


def _lock_login_counters(account: str, address: str, now: datetime) -> None:
    """Create or touch the two ``login_locks`` rows, which locks them until the commit."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [
        {"scope": "account", "name": account, "touched_at": now},
        {"scope": "address", "name": address, "touched_at": now},
    ]
    statement = insert(LoginLock).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["scope", "name"], set_={"touched_at": statement.excluded.touched_at}
    )
    db.session.execute(statement)


def login_block(
    account: str, address: str, limits: LoginLimits, now: datetime | None = None
) -> LoginBlock | None:
    """A block when the account or the address has used up its failures in the window.

    An account's count restarts after a successful login; an address's does not (one's own
    account must not reset the count for guessing at others). Blocked attempts are not
    recorded, so waiting out the window always works. ``account`` is ``account_key(name)``.
    """
    now = now or utcnow()
    since = now - limits.window
    last_success = (
        select(func.max(LoginAttempt.at))
        .where(LoginAttempt.username == account, LoginAttempt.succeeded.is_(True))
        .scalar_subquery()
    )
    by_account = _nth_latest_failure(
        LoginAttempt.username == account,
        LoginAttempt.at > func.coalesce(last_success, since),
        since=since,
        n=limits.per_account,
    )
    if by_account is not None:
        return LoginBlock("account", by_account + limits.window - now)
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
