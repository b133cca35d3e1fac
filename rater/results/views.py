"""The Results page (coordinators only: it shows PHQ-9) and its downloads.

Everything is a GET (nothing changes); the choice of outcome, predictors and resolution comes
from the query string, and the page computes the results once (``service.load_results``,
which keeps them per content of the data). The course plots are inlined as ``data:`` images,
so the page needs no second computation for them.
"""

from __future__ import annotations

import base64
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from rater.auth.decorators import coordinator_required
from rater.errors import render_error
from rater.export import writer
from rater.results import service
from rater.results.descriptives import OVERALL
from rater.results.report import MODEL_LABELS, VARIANCE_LABELS, ChoiceError, Results
from rater.results.rscript import r_script
from rater.timeutil import utcnow

bp = Blueprint("results", __name__, url_prefix="/results")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLES = ("descriptives", "frequencies", "completion", "omega", "fixed_effects",
          "variance_components", "model_fit", "lr_tests")  # fmt: skip


def _results() -> Results:
    """The results of the request's choice; ChoiceError names a bad choice."""
    resolve = request.args.get("resolve", service.DEFAULT_RESOLVE)
    if resolve not in service.RESOLVE_CHOICES:
        raise ChoiceError(f"resolve must be one of {', '.join(service.RESOLVE_CHOICES)}")
    outcome = request.args.get("outcome") or None
    predictors = request.args.getlist("predictor") if outcome else None
    return service.load_results(outcome, predictors, resolve)


def _load() -> Results | tuple:
    """The results of the request's choice, or an error page naming the bad choice (for the
    downloads, whose links the page builds)."""
    try:
        return _results()
    except ChoiceError as exc:  # our own message naming the variable
        return render_error(400, str(exc))


def _query(found: Results) -> dict:
    return {
        "outcome": found.analysis.outcome,
        "predictor": list(found.analysis.predictors),
        "resolve": found.resolve,
    }


def _svg_data(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@bp.get("/")
@coordinator_required
def index():
    try:
        found = _results()
    except ChoiceError as exc:  # back to the form, which says what was wrong
        flash(f"Not computed: {exc}. The default choice is shown; choose again.", "error")
        return redirect(url_for("results.index"))
    figures = [(label, _svg_data(svg)) for label, svg in found.course_plots]
    descriptives = found.descriptives
    return render_template(
        "results/index.html",
        r=found,
        overall=descriptives[descriptives["by"] == OVERALL],
        by_session=_by(descriptives, "session_number"),
        by_phase=_by(descriptives, "phase"),
        omega=found.omega,
        figures=figures,
        choices=service.RESOLVE_CHOICES,
        default_resolve=service.DEFAULT_RESOLVE,
        model_labels=MODEL_LABELS,
        variance_labels=VARIANCE_LABELS,
        query=_query(found),
        tables=TABLES,
    )


def _by(descriptives, by: str):
    """Rows of one grouping, as (measure, label) -> {group: row} and the groups in order."""
    part = descriptives[descriptives["by"] == by]
    groups = list(dict.fromkeys(part["group"]))
    cells = {(row.measure, row.group): row for row in part.itertuples()}
    measures = list(dict.fromkeys(zip(part["measure"], part["label"], strict=True)))
    return {"groups": groups, "measures": measures, "cells": cells}


def _attachment(body: bytes | str, content_type: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename}"'
    return Response(body, content_type=content_type, headers={"Content-Disposition": disposition})


def _file_name(found: Results, what: str, ext: str) -> str:
    return f"rater-results-{what}-{found.resolve}-{utcnow().date().isoformat()}.{ext}"


@bp.get("/download/<any(" + ", ".join(TABLES) + "):table>.csv")
@coordinator_required
def table_csv(table: str):
    """One results table as CSV for Excel (UTF-8 with a byte-order mark; text cells that a
    spreadsheet would run as formulas are quoted)."""
    found = _load()
    if isinstance(found, tuple):
        return found
    buffer = io.BytesIO()
    writer.write_csv(found.to_frames()[table], buffer, excel=True)
    name = _file_name(found, table.replace("_", "-"), "csv")
    return _attachment(buffer.getvalue(), "text/csv; charset=utf-8", name)


@bp.get("/download/results.xlsx")
@coordinator_required
def workbook():
    found = _load()
    if isinstance(found, tuple):
        return found
    buffer = io.BytesIO()
    writer.write_xlsx(found.to_frames(), buffer)
    return _attachment(buffer.getvalue(), XLSX, _file_name(found, "tables", "xlsx"))


@bp.get("/download/rater-results.R")
@coordinator_required
def r_file():
    """The R script that refits the models with lme4 from the ``sessions`` export."""
    resolve = request.args.get("resolve", service.DEFAULT_RESOLVE)
    outcome = request.args.get("outcome")
    if resolve not in service.RESOLVE_CHOICES or not outcome:
        abort(400)
    predictors = request.args.getlist("predictor")
    try:
        service.check_variables(outcome, predictors)
    except ChoiceError as exc:
        return render_error(400, str(exc))
    sessions = f"rater-sessions-{resolve}-{utcnow().date().isoformat()}.csv"
    script = r_script(outcome, predictors, resolve, sessions)
    return _attachment(script, "text/plain; charset=utf-8", "rater-results.R")
