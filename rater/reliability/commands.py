"""Commands of the reliability package: ``rater reliability [--instrument CODE] [--json]``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.cli import fail
from rater.reliability.consensus import current_instruments, load_report


@click.command("reliability")
@click.option("--instrument", "code", metavar="CODE", help="Only this instrument (e.g. GHES).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (see docs/reliability.md).")
@with_appcontext
def reliability(code: str | None, as_json: bool) -> None:
    """Print the inter-rater reliability report of the submitted ratings."""
    known = [i.code for i in current_instruments()]
    if code is not None and code not in known:
        fail(f"Unknown instrument {code!r}; known: {', '.join(known) or 'none'}.")
    rep = load_report(design="all", instrument=code)
    if as_json:
        click.echo(rep.to_json())
    else:
        click.echo(rep.to_text())


def register(app: Flask) -> None:
    """Add this package's commands to the `rater` group."""
    app.cli.add_command(reliability)
