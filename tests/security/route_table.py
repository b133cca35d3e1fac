"""Who may reach which endpoint: the table behind the permission matrix, CSRF walk and fuzzing.

Every endpoint of the URL map must have an entry in ``ACCESS`` (a test fails otherwise, so a
new route cannot slip through unclassified). An entry names the access class and, for routes
with URL parameters, a builder that takes the ``World`` (objects made by ``build_world``) and
returns the URL values. Objects in URLs belong to rater A; rater B must be refused.

Access classes:
  PUBLIC       anyone, also anonymous (login page, static files)
  LOGGED_IN    any logged-in user; anonymous goes to the login page (or gets 401 JSON)
  RATER        raters only; a coordinator gets 403
  RATER_OWN    only the rater who owns the object (rater A); rater B gets 403/404; a
               coordinator may or may not (``coordinator=True`` when allowed)
  COORDINATOR  coordinators only; raters get 403/404

The ``table`` and ``world`` fixtures (tests/support/access.py) hand out this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PUBLIC = "public"
LOGGED_IN = "logged-in"
RATER = "rater"
RATER_OWN = "rater-own"
COORDINATOR = "coordinator"

ROLES = ("anonymous", "rater_a", "rater_b", "coordinator")
# Sessions that were valid once and must now be treated as anonymous (see ``log_in_as``).
STALE_SESSIONS = ("ended", "too-old", "idle", "no-login-time")
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
NOTE_OF_A = "NOTE-WRITTEN-BY-RATER-A"
PHQ9_VALUE = 23


@dataclass
class World:
    """The objects every matrix run starts from."""

    coordinator: Any
    rater_a: Any
    rater_b: Any
    session_a: Any  # rated by A only (PHQ-9 recorded)
    session_b: Any  # rated by B only
    assignment_a: Any  # A's, with a draft rating holding scores and a note
    assignment_b: Any
    rating_a: Any
    homework_entry: Any  # an 'assigned_next' entry on session A, entered by the coordinator

    def user(self, role: str) -> Any:
        return {"rater_a": self.rater_a, "rater_b": self.rater_b}.get(role, self.coordinator)


@dataclass(frozen=True)
class Access:
    kind: str
    params: Callable[[World], dict[str, Any]] | None = None
    coordinator: bool = False  # for RATER_OWN: may a coordinator reach it too?
    # The allowed role may get 404 because the small world lacks the data (a plot of pairs
    # that were never double-coded); access is still checked for everyone else.
    may_lack_data: bool = False

    def values(self, world: World) -> dict[str, Any]:
        return self.params(world) if self.params else {}

    def expected(self, role: str) -> str:
        """'ok', 'login' (sent to log in / 401) or 'denied' (403 or 404) for a role."""
        if self.kind == PUBLIC:
            return "ok"
        if role == "anonymous":
            return "login"
        if self.kind == LOGGED_IN:
            return "ok"
        if self.kind == RATER:
            return "denied" if role == "coordinator" else "ok"
        if self.kind == RATER_OWN:
            if role == "coordinator":
                return "ok" if self.coordinator else "denied"
            return "ok" if role == "rater_a" else "denied"
        if self.kind == COORDINATOR:
            return "ok" if role == "coordinator" else "denied"
        raise ValueError(f"unknown access class {self.kind}")


def _assignment_a(w: World) -> dict[str, Any]:
    return {"assignment_id": w.assignment_a.id}


def _session_a(w: World) -> dict[str, Any]:
    return {"session_id": w.session_a.id}


def _entry(w: World) -> dict[str, Any]:
    return {"entry_id": w.homework_entry.id}


def _user_b(w: World) -> dict[str, Any]:
    return {"user_id": w.rater_b.id}


def _set_password_link_of_a(w: World) -> dict[str, Any]:
    from rater.auth.links import set_password_token

    return {"token": set_password_token(w.rater_a)}


def _measure(_w: World) -> dict[str, Any]:
    return {"instrument": "GHES", "measure": "GHES_score"}


ACCESS: dict[str, Access] = {
    "static": Access(PUBLIC, lambda _w: {"filename": "css/app.css"}),
    "auth.login": Access(PUBLIC),
    "auth.logout": Access(LOGGED_IN),
    "main.home": Access(LOGGED_IN),
    "audit_views.events": Access(COORDINATOR),
    # accounts: coordinators administer users (the objects are rater B's account); everyone
    # changes their own password; a set-password link needs no login (rater A's: the walk resets B)
    "accounts.users": Access(COORDINATOR),
    "accounts.add_user": Access(COORDINATOR),
    "accounts.reset_password": Access(COORDINATOR, _user_b),
    "accounts.deactivate": Access(COORDINATOR, _user_b),
    "accounts.reactivate": Access(COORDINATOR, _user_b),
    "accounts.logout_everywhere": Access(COORDINATOR, _user_b),
    "accounts.change_password": Access(LOGGED_IN),
    "accounts.set_password": Access(PUBLIC, _set_password_link_of_a),
    # rating: the rater's own work (a coordinator may look, never rate)
    "rating.queue": Access(RATER),
    "rating.rate": Access(RATER_OWN, _assignment_a, coordinator=True),
    "rating.audio": Access(RATER_OWN, _assignment_a, coordinator=True),
    "rating.start": Access(RATER_OWN, _assignment_a),
    "rating.autosave": Access(RATER_OWN, _assignment_a),
    "rating.submit": Access(RATER_OWN, _assignment_a),
    "rating.cannot_rate": Access(RATER_OWN, _assignment_a),
    # rating: coordinator actions and pages
    "rating.reopen": Access(COORDINATOR, _assignment_a),
    "rating.unflag": Access(COORDINATOR, _assignment_a),
    "rating.flagged": Access(COORDINATOR),
    "rating.session_audio": Access(COORDINATOR, _session_a),
    "rating.homework_index": Access(COORDINATOR),
    "rating.homework_session": Access(COORDINATOR, _session_a),
    "rating.homework_edit": Access(COORDINATOR, _entry),
    "rating.homework_delete": Access(COORDINATOR, _entry),
    "rating.homework_grid": Access(COORDINATOR, lambda w: {"patient_id": w.session_a.patient_id}),
    # allocation: coordinators only
    "allocation.index": Access(COORDINATOR),
    "allocation.commit": Access(COORDINATOR),
    "allocation.progress": Access(COORDINATOR),
    "allocation.sessions": Access(COORDINATOR),
    "allocation.calibration": Access(COORDINATOR),
    "allocation.calibration_draw": Access(COORDINATOR),
    "allocation.calibration_pick": Access(COORDINATOR),
    "allocation.calibration_gate": Access(COORDINATOR),
    "allocation.calibration_release": Access(COORDINATOR),
    "allocation.raters": Access(COORDINATOR),
    "allocation.rater_change": Access(COORDINATOR, lambda _w: {"action": "join"}),
    "allocation.move": Access(COORDINATOR, _assignment_a),
    "allocation.batches_page": Access(COORDINATOR),
    "allocation.release": Access(COORDINATOR),
    # exports: coordinators only (they hold every rater's scores and PHQ-9)
    "export.downloads": Access(COORDINATOR),
    "export.download": Access(COORDINATOR, lambda _w: {"kind": "long", "fmt": "csv"}),
    "export.meta": Access(COORDINATOR, lambda _w: {"kind": "sessions", "fmt": "csv"}),
    # reliability: coordinators only
    "reliability.dashboard": Access(COORDINATOR),
    "reliability.glossary_page": Access(COORDINATOR),
    "reliability.disagreements": Access(COORDINATOR),
    "reliability.instrument": Access(COORDINATOR, lambda _w: {"instrument": "GHES"}),
    "reliability.pairs": Access(COORDINATOR, _measure, may_lack_data=True),
    "reliability.heatmap_svg": Access(COORDINATOR, _measure, may_lack_data=True),
    "reliability.drift_svg": Access(COORDINATOR, _measure, may_lack_data=True),
    "reliability.bland_altman_svg": Access(
        COORDINATOR,
        lambda w: {**_measure(w), "rater_1": "rater_a", "rater_2": "rater_b"},
        may_lack_data=True,
    ),
    "reliability.consensus_page": Access(
        COORDINATOR, lambda w: {"session_code": w.session_a.code}, may_lack_data=True
    ),
    "coding.peaks": Access(RATER_OWN, _assignment_a, coordinator=True),
    "coding.agreement_index": Access(COORDINATOR),
    "coding.agreement": Access(
        COORDINATOR, lambda w: {"session_code": w.session_a.code}, may_lack_data=True
    ),
    # results: coordinators only (PHQ-9)
    "results.index": Access(COORDINATOR),
    "results.table_csv": Access(COORDINATOR, lambda _w: {"table": "descriptives"}),
    "results.workbook": Access(COORDINATOR),
    "results.r_file": Access(COORDINATOR, lambda _w: {"outcome": "GHES_score"}),
}


def build_world(factory: Any) -> World:
    """Users, two sessions, one assignment each for raters A and B, A's draft rating."""
    from rater.extensions import db
    from rater.rating.models import HomeworkEntry, ItemScore, Note, Rating
    from rater.study.instrument_store import current_versions, sync_instruments

    sync_instruments()
    db.session.commit()
    coordinator = factory.user("coord", "coordinator")
    rater_a, rater_b = factory.user("rater_a"), factory.user("rater_b")
    # A "/" in the code: every walk also reaches the pages named by a session code with it.
    session_a = factory.session("P01/S02", number=2, phq9=PHQ9_VALUE)
    session_b = factory.session("P02-S03", patient="P02", number=3, audio="demo-session-b.ogg")
    assignment_a = factory.assignment(session_a, rater_a, status="in_progress")
    assignment_b = factory.assignment(session_b, rater_b, status="pending")
    versions = current_versions()
    ghes = versions["GHES"]
    rating = Rating(assignment_id=assignment_a.id, status="draft")
    rating.instrument_versions = list(versions.values())
    rating.scores = [ItemScore(instrument_version_id=ghes.id, item_code="GHES_1", score=3)]
    rating.notes = [Note(client_id="n-1", audio_seconds=12.0, text=NOTE_OF_A)]
    db.session.add(rating)
    entry = HomeworkEntry(
        session_id=session_a.id,
        entered_by_id=coordinator.id,
        kind="assigned_next",
        homework_type="behavioural",
        description="Plan two activities",
    )
    db.session.add(entry)
    db.session.commit()
    return World(
        coordinator, rater_a, rater_b, session_a, session_b, assignment_a, assignment_b, rating,
        entry,
    )  # fmt: skip


def log_in_as(client: Any, user: Any | None, stale: str | None = None) -> None:
    """Put a user into the client's session (or none), without the cost of a password check.

    ``stale`` makes it a session the server must refuse: one of ``STALE_SESSIONS``.
    The test fixtures keep one app context open, which requests share; Flask-Login caches the
    user in ``g`` of that context, so the cache is dropped here too.
    """
    import time

    from flask import current_app, g

    from rater.auth.sessions import GENERATION_KEY, LAST_SEEN_KEY, LOGIN_AT_KEY

    g.pop("_login_user", None)
    now = int(time.time())
    with client.session_transaction() as session:
        session.clear()
        if user is not None:
            session["_user_id"] = str(user.id)
            session["_fresh"] = True
            session[LOGIN_AT_KEY] = now
            session[LAST_SEEN_KEY] = now
            session[GENERATION_KEY] = user.session_generation
            if stale == "ended":  # the user logged out (or was logged out) since
                session[GENERATION_KEY] = user.session_generation - 1
            elif stale == "too-old":  # logged in longer ago than the maximum age
                max_age = current_app.permanent_session_lifetime.total_seconds()
                session[LOGIN_AT_KEY] = now - int(max_age) - 1
            elif stale == "idle":
                idle = current_app.config["RATER_SESSION_IDLE_MINUTES"] * 60
                session[LAST_SEEN_KEY] = now - idle - 1
            elif stale == "no-login-time":  # a cookie from before login times were kept
                del session[LOGIN_AT_KEY]


def routes(app: Any) -> list[tuple[str, str, set[str]]]:
    """(endpoint, rule, methods) for every rule of the URL map, HEAD and OPTIONS left out."""
    return sorted(
        (rule.endpoint, rule.rule, set(rule.methods or ()) - {"HEAD", "OPTIONS"})
        for rule in app.url_map.iter_rules()
    )


def outcome(response: Any) -> str:
    """Classify a response: 'login', 'denied', 'error' (5xx) or 'ok'."""
    status = response.status_code
    location = response.headers.get("Location", "")
    # login_required sends anonymous users to /login?next=…; logout's own redirect has no next.
    if status == 401 or (status in (301, 302, 303) and "/login?next=" in location):
        return "login"
    if status in (403, 404):
        return "denied"
    if status >= 500:
        return "error"
    return "ok"
