"""The home page: a study overview for coordinators, the queue for raters."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from rater.allocation.progress import progress
from rater.overview import study_overview

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    if current_user.is_coordinator:
        return render_template(
            "main/coordinator_home.html", overview=study_overview(), progress=progress()
        )
    return redirect(url_for("rating.queue"))
