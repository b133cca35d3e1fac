"""``rater events import``"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.cli import fail, transaction
from rater.coding.importer import import_events
from rater.csvinput import ImportFailed


@click.group("events")
def events() -> None:
    """Coded events (behaviour codes on the audio timeline)."""


@events.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_(file: Path) -> None:
    """Import coded events from FILE (CSV: session_id, rater, code, time_s[, end_s][, note]).

    All-or-nothing; the events of each (session, rater) in the file replace their stored ones.
    """
    try:
        with transaction():
            result = import_events(file.read_bytes(), file.name)
    except ImportFailed as exc:
        fail(f"{file.name}: {len(exc.problems)} problem(s); nothing was imported:", exc.problems)
    click.echo(
        f"Events: {result.events} events of {result.ratings} ratings imported "
        f"({result.replaced} stored events replaced, {result.ratings_started} ratings started)."
    )


def register(app: Flask) -> None:
    app.cli.add_command(events)
