"""Template filters and globals (the formatting itself lives in ``rater.formatting``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rater.formatting import (
    format_duration,
    format_hours,
    format_number,
    format_range,
    plural,
)

if TYPE_CHECKING:
    from flask import Flask

# Coordinator navigation, in display order.
COORDINATOR_NAV = (
    ("allocation.index", "Allocation"),
    ("allocation.calibration", "Calibration"),
    ("allocation.batches_page", "Batches"),
    ("allocation.progress", "Progress"),
    ("allocation.sessions", "Sessions"),
    ("rating.homework_index", "Homework"),
    ("rating.flagged", "Flagged"),
    ("reliability.dashboard", "Reliability"),
    ("reliability.disagreements", "Disagreements"),
    ("results.index", "Results"),
    ("export.downloads", "Exports"),
    ("audit_views.events", "Audit"),
    ("accounts.users", "Users"),
)


def register(app: Flask) -> None:
    from rater.auth.forms import EmptyForm  # Flask-WTF: only where templates are rendered

    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.filters["number"] = format_number
    app.jinja_env.filters["hours"] = format_hours
    app.jinja_env.globals["number_range"] = format_range
    app.jinja_env.filters["plural"] = plural
    app.jinja_env.globals["empty_form"] = EmptyForm

    app.jinja_env.globals["coordinator_nav"] = lambda: COORDINATOR_NAV
