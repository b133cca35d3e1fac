"""Reliability dashboard, drill-downs, plots (SVG), disagreements and consensus (coordinators).

Everything is computed from ``ratings_frame()`` (through ``consensus.load_report``) once per
data version and server process (``rater.reliability.cache``): every change to the data raises
the version, so nothing is ever stale.  The dashboard computes
the design-wide REML coefficients for scales only; the instrument page for every item.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from rater.auth.decorators import coordinator_required
from rater.extensions import db
from rater.formatting import plural
from rater.reliability import cache, consensus, glossary, plots
from rater.reliability.forms import consensus_form, consensus_scores, field_name
from rater.reliability.output import UNBOUNDED_NOTE, show
from rater.reliability.report import ReliabilityReport
from rater.reliability.results import (
    BANDS,
    FIRM_PAIR_SESSIONS,
    MIN_SESSIONS,
    Estimate,
    NotEnoughData,
    band,
    pair_caution,
)

bp = Blueprint("reliability", __name__, url_prefix="/reliability")


def band_of(result: Any) -> str:
    return band(result.value) if isinstance(result, Estimate) else ""


BAND_BADGE = {"poor": "bad", "moderate": "warn", "good": "ok", "excellent": "ok"}


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "show": show,
        "band_of": band_of,
        "band_badge": BAND_BADGE,
        "min_sessions": MIN_SESSIONS,
        "unbounded_note": UNBOUNDED_NOTE,
        "bands": BANDS,
        "field_name": field_name,
        "no_pair_reason": no_pair_reason,
        "terms": glossary.BY_KEY,
        "pair_caution": pair_caution,
        "firm_sessions": FIRM_PAIR_SESSIONS,
    }


def _svg(text: str) -> Response:
    response = Response(text, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response


def _measure_or_404(rep: ReliabilityReport, instrument: str, measure: str):
    try:
        return rep.measure(instrument, measure)
    except StopIteration:
        abort(404)


def _instrument_report(instrument: str, design: str) -> ReliabilityReport:
    if instrument not in cache.instrument_codes():
        abort(404)
    return cache.report(design=design, instrument=instrument)


@bp.route("/")
@coordinator_required
def dashboard():
    rep = cache.report(design="scales")
    return render_template(
        "reliability/dashboard.html", rep=rep, by=_drift_by("drift"), drift_axis=plots.DRIFT_AXIS
    )


def _drift_by(argument: str = "by") -> str:
    """The drift view's period from the query (month by default); 400 for anything else."""
    by = request.args.get(argument, "month")
    if by not in plots.DRIFT_BY:
        abort(400)
    return by


@bp.route("/glossary")
@coordinator_required
def glossary_page():
    return render_template("reliability/glossary.html", glossary=glossary.TERMS)


@bp.route("/instrument/<instrument>")
@coordinator_required
def instrument(instrument: str):
    rep = _instrument_report(instrument, "all")
    return render_template("reliability/instrument.html", rep=rep, code=instrument)


@bp.route("/measure/<instrument>/<measure>")
@coordinator_required
def pairs(instrument: str, measure: str):
    rep = _instrument_report(instrument, "none")
    m = _measure_or_404(rep, instrument, measure)
    by = _drift_by()
    return render_template(
        "reliability/pairs.html",
        rep=rep,
        m=m,
        pairs=rep.pairs_of(instrument, measure),
        drift=cache.cached(
            ("drift table", instrument, measure, by),
            lambda: plots.drift_table(_paired(rep, measure), by).to_dict("records"),
        ),
        by=by,
        drift_axis=plots.DRIFT_AXIS,
    )


def _paired(rep: ReliabilityReport, measure: str):
    """The report's double-coded values of one measure (for plots)."""
    return rep.paired[rep.paired["measure"] == measure]


def no_pair_reason(rep: ReliabilityReport, instrument: str, measure: str) -> str:
    """Why a measure has no rater pair at all ('' when it has one): shown instead of a plot."""
    summary = rep.summary(instrument, measure)
    if summary is None or summary.n_pairs:
        return ""
    mean = summary.statistics["mean"]
    assert isinstance(mean, NotEnoughData)  # no pair, so no estimate
    return f"No rater pair: {mean.reason}."


@bp.route("/plot/<instrument>/<measure>/heatmap.svg")
@coordinator_required
def heatmap_svg(instrument: str, measure: str):
    rep = _instrument_report(instrument, "none")
    m = _measure_or_404(rep, instrument, measure)

    def draw() -> str:
        raters = sorted(set(rep.paired["rater_1"]) | set(rep.paired["rater_2"]))
        pairs = rep.pairs_of(instrument, measure)
        reason = no_pair_reason(rep, instrument, measure) or "No rater pairs yet."
        return plots.heatmap_svg(pairs, raters, m.label, no_pairs=reason)

    return _svg(cache.cached(("heatmap", instrument, measure), draw))


@bp.route("/plot/<instrument>/<measure>/bland-altman.svg")
@coordinator_required
def bland_altman_svg(instrument: str, measure: str):
    """The pair's user names come as query arguments (``rater_1``, ``rater_2``): a name from
    before the user-name rule may hold a "/", which no path segment can carry."""
    rater_1, rater_2 = request.args.get("rater_1"), request.args.get("rater_2")
    if not rater_1 or not rater_2:
        abort(400)
    rep = _instrument_report(instrument, "none")
    m = _measure_or_404(rep, instrument, measure)

    def draw() -> str:
        paired = _paired(rep, measure)
        limits = cache.cached(
            ("bland-altman scale", instrument, measure),
            lambda: plots.bland_altman_limits(paired, MIN_SESSIONS),
        )
        return plots.bland_altman_svg(
            paired, rater_1, rater_2, m.label, limits=limits, min_n=MIN_SESSIONS
        )

    known = {(p.rater_1, p.rater_2) for p in rep.pairs_of(instrument, measure)}
    if (rater_1, rater_2) not in known:  # arbitrary names: not kept (the cache stays bounded)
        return _svg(draw())
    return _svg(cache.cached(("bland-altman", instrument, measure, rater_1, rater_2), draw))


@bp.route("/plot/<instrument>/<measure>/drift.svg")
@coordinator_required
def drift_svg(instrument: str, measure: str):
    by = _drift_by()
    rep = _instrument_report(instrument, "none")
    m = _measure_or_404(rep, instrument, measure)

    def draw() -> str:
        reason = no_pair_reason(rep, instrument, measure) or "No double-coded sessions yet."
        return plots.drift_svg(_paired(rep, measure), m.label, by, no_pairs=reason)

    return _svg(cache.cached(("drift", instrument, measure, by), draw))


@bp.route("/disagreements")
@coordinator_required
def disagreements():
    found = cache.disagreements()
    limits = {inst.code: inst.disagreement_threshold for inst in consensus.current_instruments()}
    return render_template("reliability/disagreements.html", found=found, limits=limits)


# path: session codes come from the catalogue and may hold a "/" (e.g. "T1/P01/S01").
@bp.route("/consensus/<path:session_code>", methods=["GET", "POST"])
@coordinator_required
def consensus_page(session_code: str):
    view = consensus.consensus_view(session_code)
    if view is None:
        abort(404)
    instruments = [inst for inst, _ in view.instruments]
    suggested = {
        item.code: view.suggested(item.code) for inst in instruments for item in inst.items
    }
    form = consensus_form(instruments, suggested)
    if form.validate_on_submit():
        changed = consensus.save_consensus(view, consensus_scores(form, instruments), current_user)
        db.session.commit()
        flash(f"Consensus saved ({plural(changed, 'item')} changed).", "success")
        return redirect(url_for("reliability.consensus_page", session_code=session_code))
    if request.method == "POST":
        flash("The form could not be saved; please check the scores.", "error")
    return render_template("reliability/consensus.html", view=view, form=form)
