"""``rater export KIND -o FILE``"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.cli import fail
from rater.export import service
from rater.export.tables import DEFAULT_RESOLVE, KINDS, RESOLVE_MEANINGS, RESOLVE_MODES
from rater.progress import progress_bar
from rater.timeutil import utcnow


@click.command("export")
@click.argument("kind", type=click.Choice([*KINDS, "all"]))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write: .csv, .xlsx (every kind with KIND 'all'), .parquet, or .sav / .dta "
    "(SPSS / Stata, wide and sessions). Default: rater-KIND[-RESOLVE]-DATE.FORMAT (.csv, .xlsx "
    "for 'all') in the current folder.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(service.FORMATS),
    default=None,
    help="Format of the default file name (sav, dta: SPSS and Stata files with variable and "
    "value labels); with -o, the file's extension decides.",
)
@click.option("--include-drafts", is_flag=True, help="Include draft ratings.")
@click.option(
    "--include-calibration", is_flag=True, help="Include calibration ratings in sessions."
)
@click.option(
    "--resolve",
    type=click.Choice(RESOLVE_MODES),
    default=None,
    help=f"How sessions resolves items across raters (default: {DEFAULT_RESOLVE}, i.e. "
    f"{RESOLVE_MEANINGS[DEFAULT_RESOLVE]}).",
)
@click.option("--excel", is_flag=True, help="Write a UTF-8 BOM so Excel detects the encoding.")
@with_appcontext
def export(
    kind: str,
    output: Path | None,
    include_drafts: bool,
    include_calibration: bool,
    resolve: str | None,
    excel: bool,
    fmt: str | None,
) -> None:
    """Export KIND (long, wide, sessions, homework, reliability, codebook, audit, all)."""
    options = service.Options(include_drafts, include_calibration, resolve, excel)
    at = utcnow()
    if output is None:
        fmt = fmt or service.default_format(kind)
        output = Path(service.file_name(kind, fmt, options, at.date()))
    try:
        document = service.export_file(
            kind, output, options, lambda total: progress_bar(total, f"Exporting {kind}"), at
        )
    except ValueError as exc:
        fail(f"Cannot export: {exc}.")
    rows = document["rows"]
    count = rows if isinstance(rows, int) else sum(rows.values())
    click.echo(f"Wrote {count} rows of {kind} to {output} (+ {output.name}.meta.json).")
    resolution = document["resolution"]
    if resolution and resolution["mode"]:
        chosen = "the default" if resolution["default"] else "chosen"
        click.echo(f"Resolution: {resolution['mode']} ({chosen}): {resolution['meaning']}.")


def register(app: Flask) -> None:
    app.cli.add_command(export)
