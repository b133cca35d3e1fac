"""Coordinator downloads: every export kind as CSV, xlsx or Parquet, with its meta file.

Downloads are GETs (they change nothing); the options come from the query string.
"""

from __future__ import annotations

import io
import json

from flask import Blueprint, Response, abort, render_template, request

from rater.auth.decorators import coordinator_required
from rater.errors import render_error
from rater.export import service
from rater.export.statistics import STATS_KINDS
from rater.export.tables import DEFAULT_RESOLVE, KINDS, RESOLVE_MEANINGS, RESOLVE_MODES
from rater.timeutil import utcnow

bp = Blueprint("export", __name__, url_prefix="/export")

DESCRIPTIONS = {
    "long": "One row per rating × item: each rater's own scores, the tidy ratings table "
    "(re-importable).",
    "wide": "One row per rating: each rater's own item scores with scale and subscale scores "
    "(not resolved across raters; consensus scores are applied in sessions only).",
    "sessions": "The analysis dataset: one row per eligible session, items resolved across "
    "raters, GHES score, StH-A, StH-R, StHAR total, PHQ-9, homework and difficulties.",
    "homework": "One row per homework log entry.",
    "events": "One row per coded event (behaviour code, time, end of a segment, note).",
    "reliability": "The reliability report's pair, summary, design, calibration and "
    "consistency tables in long form.",
    "codebook": "One row per column of every export: label, type, allowed values, anchors, "
    "scoring rules, instrument versions.",
    "audit": "Every audit event: who changed what, and when.",
}
# Full Content-Type values, sent as they are (``mimetype=`` would append a second charset to
# text types: ``text/csv; charset=utf-8; charset=utf-8``).
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
    "sav": "application/x-spss-sav",
    "dta": "application/x-stata-dta",
}


def _options() -> service.Options:
    resolve = request.args.get("resolve") or None
    if resolve is not None and resolve not in RESOLVE_MODES:
        abort(400)
    return service.Options(
        include_drafts=request.args.get("include_drafts") == "1",
        include_calibration=request.args.get("include_calibration") == "1",
        resolve=resolve,
        excel=request.args.get("excel") == "1",
    )


@bp.get("/")
@coordinator_required
def downloads():
    options = _options()
    today = utcnow().date()
    return render_template(
        "export/downloads.html",
        kinds=[(k, DESCRIPTIONS[k]) for k in KINDS],
        stats_kinds=STATS_KINDS,
        options=options,
        resolve_modes=RESOLVE_MODES,
        default_resolve=DEFAULT_RESOLVE,
        meanings=RESOLVE_MEANINGS,
        file_names={
            k: service.file_name(k, service.default_format(k), options, today)
            for k in (*KINDS, "all")
        },
        query={k: v for k, v in request.args.items() if k in _OPTION_NAMES},
    )


_OPTION_NAMES = ("include_drafts", "include_calibration", "resolve", "excel")


FMT = "<any(csv, xlsx, parquet, sav, dta):fmt>"


def _write(kind: str, fmt: str) -> tuple[bytes, dict, str] | tuple[None, object, str]:
    """The file's bytes, meta document and file name, or None and an error response."""
    if kind not in (*KINDS, "all"):
        abort(404)
    buffer = io.BytesIO()
    options = _options()
    at = utcnow()
    try:
        document = service.export_to(kind, fmt, buffer, options, at=at)
    except ValueError as exc:
        return None, render_error(400, str(exc)), ""
    return buffer.getvalue(), document, service.file_name(kind, fmt, options, at.date())


def _attachment(body: bytes | str, content_type: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename}"'
    return Response(body, content_type=content_type, headers={"Content-Disposition": disposition})


@bp.get(f"/download/<kind>.{FMT}")
@coordinator_required
def download(kind: str, fmt: str):
    data, document, name = _write(kind, fmt)
    if data is None:
        return document
    return _attachment(data, MEDIA_TYPES[fmt], name)


@bp.get(f"/meta/<kind>.{FMT}.json")
@coordinator_required
def meta(kind: str, fmt: str):
    """The companion meta document of a download (the same options give the same hashes)."""
    data, document, name = _write(kind, fmt)
    if data is None:
        return document
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return _attachment(text, "application/json", f"{name}.meta.json")
