"""``rater users ...``"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.auth import service
from rater.cli import fail, transaction


@click.group("users")
def users() -> None:
    """Add, list and deactivate users."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["rater", "coordinator"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def add(name: str, role: str, password_stdin: bool) -> None:
    """Add a user NAME with a role; the password is prompted for."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with transaction():
            service.add_user(name, role, password)
    except service.UserError as exc:
        fail(f"Cannot add user: {exc}.")
    click.echo(f"Added {role} {name}.")


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
    try:
        with transaction():
            service.set_active(name, False)
    except service.UserError as exc:
        fail(f"Cannot deactivate: {exc}.")
    click.echo(f"Deactivated {name}.")


def register(app: Flask) -> None:
    app.cli.add_command(users)
