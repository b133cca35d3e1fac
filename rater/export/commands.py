"""``rater export KIND -o FILE``"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.cli import fail
from rater.export import service
from rater.export.tables import KINDS, RESOLVE_MODES
from rater.progress import progress_bar


@click.command("export")
@click.argument("kind", type=click.Choice([*KINDS, "all"]))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write: .csv, .xlsx (every kind with KIND 'all') or .parquet.",
)
@click.option("--include-drafts", is_flag=True, help="Include draft ratings.")
@click.option(
    "--include-calibration", is_flag=True, help="Include calibration ratings in sessions."
)
@click.option(
    "--resolve",
    type=click.Choice(RESOLVE_MODES),
    default="mean",
    show_default=True,
    help="How sessions resolves items across raters.",
)
@click.option("--excel", is_flag=True, help="Write a UTF-8 BOM so Excel detects the encoding.")
@with_appcontext
def export(
    kind: str,
    output: Path,
    include_drafts: bool,
    include_calibration: bool,
    resolve: str,
    excel: bool,
) -> None:
    """Export KIND (long, wide, sessions, homework, reliability, codebook, audit, all)."""
    options = service.Options(include_drafts, include_calibration, resolve, excel)
    try:
        document = service.export_file(
            kind, output, options, lambda total: progress_bar(total, f"Exporting {kind}")
        )
    except service.ExportUnavailable as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(f"Cannot export: {exc}.")
    rows = document["rows"]
    count = rows if isinstance(rows, int) else sum(rows.values())
    click.echo(f"Wrote {count} rows of {kind} to {output} (+ {output.name}.meta.json).")


def register(app: Flask) -> None:
    app.cli.add_command(export)
