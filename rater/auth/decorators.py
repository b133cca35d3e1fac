"""Role decorators: the one place that turns a role into access."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, session
from flask_login import current_user, login_required

from rater.states import Role


def role_required(role: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any):
            if current_user.role != role:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


coordinator_required = role_required(Role.COORDINATOR)
rater_required = role_required(Role.RATER)


def session_user_id() -> int | None:
    """The id of the user this session logged in, without loading the user.

    Only for requests that check the user in their own query (autosave: its UPDATE requires
    an active user who is the assignment's rater, with the session's generation, see
    ``rater.auth.sessions``): loading the user first would cost a
    database round trip on the request a study sends most. Flask-Login keeps the id under
    ``_user_id``; every other request loads the user through ``current_user`` as usual.
    """
    value = session.get("_user_id")
    return int(value) if isinstance(value, str) and value.isdigit() else None
