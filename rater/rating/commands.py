"""``rater ratings import`` and ``rater homework import``"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.auth.service import find_user
from rater.cli import fail, transaction
from rater.csvinput import ImportFailed
from rater.progress import progress_bar
from rater.rating import homework as homework_service
from rater.rating.importer import import_ratings


@click.group("ratings")
def ratings() -> None:
    """Ratings made outside the browser."""


@ratings.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Import ratings that lack required items too (and list them).",
)
@with_appcontext
def import_(file: Path, allow_incomplete: bool) -> None:
    """Import submitted ratings in long form from FILE (CSV); all-or-nothing."""
    data = file.read_bytes()
    try:
        with transaction(), progress_bar(data.count(b"\n"), "Importing ratings") as step:
            result = import_ratings(
                data, file.name, progress=step, allow_incomplete=allow_incomplete
            )
    except ImportFailed as exc:
        fail(f"{file.name}: {len(exc.problems)} problem(s); nothing was imported:", exc.problems)
    click.echo(
        f"Ratings: {result.ratings} ratings with {result.scores} scores imported "
        f"({result.assignments_created} new assignments)."
    )
    if result.incomplete:
        click.echo(f"{len(result.incomplete)} of them lack required items:")
        for rating in result.incomplete:
            click.echo(f"  {rating}")


@click.group("homework")
def homework() -> None:
    """Homework assigned for the next session (the second GHES homework-log item)."""


@homework.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "by", required=True, help="The coordinator the entries are recorded as.")
@with_appcontext
def import_homework(file: Path, by: str) -> None:
    """Add homework entries from FILE (CSV: session_id, homework_type, description); all or
    nothing. Entries stored already are not added twice, so a file can be imported again."""
    user = find_user(by)
    if user is None or not user.is_coordinator or not user.active:
        fail(f"--by: '{by}' is not an active coordinator.")
    try:
        with transaction():
            result = homework_service.import_homework(file.read_bytes(), file.name, user.id)
    except ImportFailed as exc:
        fail(f"{file.name}: {len(exc.problems)} problem(s); nothing was imported:", exc.problems)
    click.echo(f"Homework: {result.added} entries added, {result.present} already present.")


def register(app: Flask) -> None:
    app.cli.add_command(ratings)
    app.cli.add_command(homework)
