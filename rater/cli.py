"""The ``rater`` command group (``flask --app rater ...`` works too).

Each command commits once at its end, or rolls back and changes nothing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup

from rater.extensions import db

# Command modules of the domain packages; each exposes ``register(app)``.
COMMAND_MODULES = (
    "rater.auth.commands",
    "rater.study.commands",
    "rater.rating.commands",
    "rater.allocation.commands",
    "rater.reliability.commands",
    "rater.export.commands",
    "rater.coding.commands",
    "rater.results.commands",
    "rater.serve",
    "rater.demo",
)


def register(app: Flask) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def _create_app() -> Flask:
    from rater import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def cli() -> None:
    """rater: observer rating of recorded psychotherapy sessions."""


def main() -> None:
    cli(prog_name="rater")


@contextmanager
def transaction() -> Iterator[None]:
    """Commit once at the end of a command, or roll back everything."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def upgrade_schema() -> None:
    """Create or upgrade the schema with the committed Alembic revisions."""
    from flask_migrate import upgrade

    upgrade(directory=str(Path(current_app.root_path).parent / "migrations"))


def fail(message: str, problems: list | None = None) -> NoReturn:
    """Print problems to stderr and exit with status 1."""
    click.secho(message, fg="red", err=True)
    for problem in problems or []:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)
