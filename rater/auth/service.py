"""User management: flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select

from rater import audit
from rater.auth.models import ROLES, User
from rater.extensions import db


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
