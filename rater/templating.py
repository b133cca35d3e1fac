"""Template filters and globals."""

from __future__ import annotations

from flask import Flask

from rater.auth.forms import EmptyForm


def format_duration(seconds: float | None) -> str:
    """'1:02:03' or '4:05' for a duration in seconds; '–' when unknown."""
    if seconds is None:
        return "–"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# Coordinator navigation, in display order; an entry shows once its endpoint exists.
COORDINATOR_NAV = (
    ("allocation.index", "Allocation"),
    ("allocation.calibration", "Calibration"),
    ("allocation.progress", "Progress"),
    ("allocation.sessions", "Sessions"),
    ("rating.homework_index", "Homework"),
    ("rating.flagged", "Flagged"),
    ("reliability.dashboard", "Reliability"),
    ("reliability.disagreements", "Disagreements"),
    ("export.downloads", "Exports"),
    ("audit_views.events", "Audit"),
)


def register(app: Flask) -> None:
    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.globals["empty_form"] = EmptyForm

    def coordinator_nav() -> list[tuple[str, str]]:
        return [(e, label) for e, label in COORDINATOR_NAV if e in app.view_functions]

    app.jinja_env.globals["coordinator_nav"] = coordinator_nav
