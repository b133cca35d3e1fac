"""Coding pages: the waveform peaks of a session's recording, the coding panel of the rating
page (a template helper), and the coordinator's event-agreement view of a double-coded session.

Peaks are access-checked exactly like the audio they describe (``Assignment.can_be_viewed_by``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, send_file
from flask_login import current_user, login_required

from rater.auth.decorators import coordinator_required
from rater.coding import agreement as agreement_service
from rater.coding.service import coding_panel
from rater.rating.models import Assignment, Rating
from rater.rating.service import get_assignment
from rater.study.audio_stream import audio_file
from rater.study.peaks import PeaksError, peaks_file

bp = Blueprint("coding", __name__)


def peaks_dir() -> Path:
    """Where peaks are cached: ``RATER_PEAKS_DIR``, else ``.peaks`` in the audio folder."""
    configured = current_app.config.get("RATER_PEAKS_DIR")
    if configured:
        return Path(configured)
    return Path(current_app.config["RATER_AUDIO_DIR"]) / ".peaks"


@bp.route("/assignments/<int:assignment_id>/peaks.json")
@login_required
def peaks(assignment_id: int):
    assignment = get_assignment(assignment_id)
    if assignment is None or not assignment.can_be_viewed_by(current_user):
        abort(404)
    try:
        path = peaks_file(audio_file(assignment.session.audio_path), peaks_dir())
    except PeaksError:
        current_app.logger.warning("peaks of assignment %s cannot be computed", assignment_id)
        abort(404)
    response = send_file(path, mimetype="application/json", max_age=3600, conditional=True)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    def panel(_assignment: Assignment, rating: Rating) -> dict[str, Any] | None:
        return coding_panel(rating)

    return {"coding_panel": panel}


@bp.route("/coding/agreement")
@coordinator_required
def agreement_index():
    return render_template(
        "coding/agreement_index.html", sessions=agreement_service.double_coded_sessions()
    )


@bp.route("/coding/agreement/<path:session_code>")
@coordinator_required
def agreement(session_code: str):
    view = agreement_service.session_agreement(session_code)
    if view is None:
        abort(404)
    return render_template("coding/agreement.html", view=view)
