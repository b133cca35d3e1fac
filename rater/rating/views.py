"""The rater's pages."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from rater.auth.decorators import rater_required
from rater.rating.service import queue_for

bp = Blueprint("rating", __name__)


@bp.route("/queue")
@rater_required
def queue():
    return render_template("rating/queue.html", assignments=queue_for(current_user))
