"""``rater results [--outcome CODE] [--predictor CODE ...] [--resolve mean|consensus] [--json]
[--r-script FILE]``: the Results page on the command line."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.cli import fail
from rater.results import service
from rater.results.report import ChoiceError
from rater.results.rscript import r_script
from rater.timeutil import utcnow


@click.command("results")
@click.option("--outcome", metavar="CODE", help="Outcome of the models (a score or phq9).")
@click.option("--predictor", "predictors", metavar="CODE", multiple=True,
              help="A time-varying predictor (repeatable).")  # fmt: skip
@click.option("--resolve", type=click.Choice(service.RESOLVE_CHOICES),
              default=service.DEFAULT_RESOLVE, show_default=True,
              help="Double-coded sessions: pair mean, or consensus where given.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (see docs/results.md).")
@click.option("--r-script", "script", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the R script (lme4) that refits the models to FILE.")  # fmt: skip
@with_appcontext
def results(
    outcome: str | None,
    predictors: tuple[str, ...],
    resolve: str,
    as_json: bool,
    script: Path | None,
) -> None:
    """Descriptives, homework frequencies, omega and the multilevel models of the study."""
    if predictors and not outcome:
        fail("--predictor needs --outcome.")
    try:
        found = service.load_results(outcome, list(predictors) if outcome else None, resolve)
    except ChoiceError as exc:
        fail(f"{exc}.")
    click.echo(found.to_json() if as_json else found.to_text(), nl=not as_json)
    if script is not None:
        sessions = f"rater-sessions-{resolve}-{utcnow().date().isoformat()}.csv"
        text = r_script(found.analysis.outcome, found.analysis.predictors, resolve, sessions)
        script.write_text(text, encoding="utf-8")


def register(app: Flask) -> None:
    """Add this package's commands to the `rater` group."""
    app.cli.add_command(results)
