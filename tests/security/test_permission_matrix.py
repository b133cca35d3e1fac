"""Every route of the URL map, as anonymous, rater A, rater B and coordinator.

Rater A owns the objects named in URLs; rater B must never reach them, and no page a rater
can reach may show PHQ-9 or another rater's note.
"""

from __future__ import annotations

import re

import pytest

from rater.extensions import db

# Bodies that are not text (a wrong answer to one is still caught by its access class).
BINARY = ("audio/ogg", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def test_every_endpoint_is_classified(app, table):
    endpoints = {endpoint for endpoint, _, _ in table.routes(app)}
    unclassified = sorted(endpoints - set(table.ACCESS))
    assert not unclassified, f"add these endpoints to tests/security/route_table.py: {unclassified}"
    stale = sorted(set(table.ACCESS) - endpoints)
    assert not stale, f"these table entries name no endpoint any more: {stale}"


def _walk(app, table, world, role, stale=None):
    """(endpoint, method, expected, got, status, body) for every route, GETs before POSTs.

    With ``stale`` (one of ``table.STALE_SESSIONS``), the role's session is one the server
    must refuse, and every route is expected to treat it as anonymous."""
    client = app.test_client()
    user = None if role == "anonymous" else world.user(role)
    results = []
    plan = [
        (endpoint, method)
        for endpoint, _, methods in table.routes(app)
        for method in sorted(methods)
        if endpoint in table.ACCESS  # unclassified ones fail test_every_endpoint_is_classified
    ]
    # GETs first; destructive POSTs (delete, logout) last, so the others find their objects.
    plan.sort(key=lambda item: (item[1] != "GET", item[0].endswith(("delete", "logout"))))
    with app.test_request_context():
        from flask import url_for

        urls = {e: url_for(e, **table.ACCESS[e].values(world)) for e, _ in plan}
    for endpoint, method in plan:
        table.log_in_as(client, user, stale)
        response = client.open(urls[endpoint], method=method)
        got = table.outcome(response)
        expected = table.ACCESS[endpoint].expected("anonymous" if stale else role)
        if got == "ok" and method == "GET" and response.status_code >= 400:
            got = f"ok-but-{response.status_code}"
        if got == "denied" and expected == "ok" and table.ACCESS[endpoint].may_lack_data:
            got = "ok" if response.status_code == 404 else got
        body = response.get_data(as_text=True) if response.mimetype not in BINARY else ""
        results.append((endpoint, method, expected, got, response.status_code, body))
        db.session.rollback()
    return results


@pytest.mark.parametrize("role", ["anonymous", "rater_a", "rater_b", "coordinator"])
def test_permission_matrix(app, table, world, role):
    results = _walk(app, table, world, role)
    wrong = [
        f"{method} {endpoint}: expected {expected}, got {got} ({status})"
        for endpoint, method, expected, got, status, _ in results
        if expected != got
    ]
    if role.startswith("rater"):
        wrong += _blinding_breaches(table, role, results)
    if role == "rater_b":
        wrong += _changes_to_rating_a(table, world)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("stale", ["ended", "too-old", "idle", "no-login-time"])
@pytest.mark.parametrize("role", ["rater_a", "coordinator"])
def test_a_stale_session_reaches_only_what_anonymous_reaches(app, table, world, role, stale):
    """A session that was ended (logout, password change, "log out everywhere"), is older
    than the maximum age, idle too long or from before login times were kept: every route
    answers it as it answers anonymous, autosave and audio included, and nothing changes."""
    assert stale in table.STALE_SESSIONS
    results = _walk(app, table, world, role, stale)
    wrong = [
        f"{method} {endpoint}: expected {expected}, got {got} ({status})"
        for endpoint, method, expected, got, status, _ in results
        if expected != got
    ]
    wrong += _changes_to_rating_a(table, world)
    assert not wrong, "\n".join(wrong)


# A signed CSRF token (itsdangerous: base64 parts joined by dots) is random text that may contain
# "phq" by chance; it is taken out before the page is searched for PHQ-9.
SIGNED_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{8,}")


def _without_signed_tokens(body: str) -> str:
    return SIGNED_TOKEN.sub("", body)


def _blinding_breaches(table, role, results) -> list[str]:
    """No page a rater reaches shows PHQ-9; rater B never sees rater A's note."""
    breaches = []
    for endpoint, method, _, got, _, body in results:
        if got != "ok":
            continue
        if "phq" in _without_signed_tokens(body).lower():
            breaches.append(f"{method} {endpoint} shows PHQ-9 to a rater")
        if role == "rater_b" and table.NOTE_OF_A in body:
            breaches.append(f"{method} {endpoint} shows rater A's note to rater B")
    return breaches


def _changes_to_rating_a(table, world) -> list[str]:
    """Beyond status codes: B's requests left A's rating exactly as it was."""
    from rater.rating.models import Rating

    db.session.expire_all()
    rating = db.session.get(Rating, world.rating_a.id)
    state = (rating.status, rating.version, [s.score for s in rating.scores])
    notes = [n.text for n in rating.notes]
    if state == ("draft", 1, [3]) and notes == [table.NOTE_OF_A]:
        return []
    return [f"rater B's requests changed rater A's rating: {state} {notes}"]
