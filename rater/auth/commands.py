"""``rater users ...``"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.auth import service
from rater.cli import fail, transaction
from rater.states import Role

PASSWORD_RULES = (
    "Passwords: at least 8 characters, not a common or easily guessed one; spaces and any "
    "characters are fine. User names: letters, digits, '.', '_' and '-'."
)


@click.group("users", epilog=PASSWORD_RULES)
def users() -> None:
    """Add, list and deactivate users; change passwords; end sessions."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input."
)


def _commit(change: Callable[[], object], refusal: str, done: str) -> None:
    """Run a service change in one transaction; on a UserError print why and exit 1."""
    try:
        with transaction():
            change()
    except service.UserError as exc:
        fail(f"{refusal}: {exc}.")
    click.echo(done)


@users.command("add", epilog=PASSWORD_RULES)
@click.argument("name")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@password_stdin_option
@with_appcontext
def add(name: str, role: str, password_stdin: bool) -> None:
    """Add a user NAME with a role; the password is prompted for."""
    password = _read_password(password_stdin)
    _commit(
        lambda: service.add_user(name, role, password), "Cannot add user", f"Added {role} {name}."
    )


@users.command("list")
@with_appcontext
def list_() -> None:
    """List users with their role and state."""
    for user in service.list_users():
        state = "active" if user.active else "deactivated"
        click.echo(f"{user.username:<24} {user.role:<12} {state}")


@users.command("deactivate")
@click.argument("name")
@with_appcontext
def deactivate(name: str) -> None:
    """Deactivate user NAME: they cannot log in and their sessions end at once."""
    _commit(lambda: service.set_active(name, False), "Cannot deactivate", f"Deactivated {name}.")


@users.command("password", epilog=PASSWORD_RULES)
@click.argument("name")
@password_stdin_option
@with_appcontext
def password(name: str, password_stdin: bool) -> None:
    """Give user NAME a new password (prompted for); their sessions end."""
    new_password = _read_password(password_stdin)
    _commit(
        lambda: service.set_password(name, new_password),
        "Cannot change the password",
        f"Changed the password of {name}; their sessions have ended.",
    )


@users.command("logout")
@click.argument("name")
@with_appcontext
def logout(name: str) -> None:
    """Log user NAME out everywhere: each of their sessions ends at its next request."""
    _commit(lambda: service.end_sessions(name), "Cannot log out", f"Ended every session of {name}.")


def register(app: Flask) -> None:
    app.cli.add_command(users)
