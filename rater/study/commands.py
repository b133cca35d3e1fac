"""``rater init-db`` and ``rater sessions import``"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from rater.cli import fail, transaction, upgrade_schema
from rater.csvinput import ImportFailed
from rater.instruments import InstrumentError
from rater.progress import progress_bar
from rater.study.catalogue import import_sessions
from rater.study.instrument_store import sync_instruments


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema and register the instruments."""
    upgrade_schema()
    try:
        with transaction():
            versions = sync_instruments()
    except InstrumentError as exc:
        fail(
            f"An instrument file is invalid: {exc}. Nothing was registered; fix the file and "
            "run `rater init-db` again."
        )
    click.echo("Database is up to date.")
    for v in versions:
        click.echo(f"  instrument {v.code} version {v.version} ({v.source_file})")


@click.group("sessions")
def sessions() -> None:
    """The session catalogue."""


@sessions.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_(file: Path) -> None:
    """Import or update sessions from FILE (CSV); all-or-nothing, safe to repeat."""
    data = file.read_bytes()
    try:
        with transaction(), progress_bar(data.count(b"\n"), "Importing sessions") as step:
            result = import_sessions(
                data,
                file.name,
                current_app.config["RATER_AUDIO_DIR"],
                current_app.config["RATER_PHASE_BOUNDARY"],
                progress=step,
            )
    except ImportFailed as exc:
        fail(f"{file.name}: {len(exc.problems)} problem(s); nothing was imported:", exc.problems)
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(
        f"Sessions: {result.created} new, {result.updated} updated, {result.unchanged} unchanged."
    )


def register(app: Flask) -> None:
    app.cli.add_command(init_db)
    app.cli.add_command(sessions)
