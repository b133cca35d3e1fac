"""Arbitrary form data and JSON bodies to every state-changing endpoint: never a 500."""

from __future__ import annotations

from flask import url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rater.extensions import db

FIELD_NAMES = st.sampled_from(
    ["score", "item", "version", "text", "client_id", "audio_seconds", "audio_position",
     "active_seconds", "status", "purpose", "reason", "category", "cannot_rate_category",
     "cannot_rate_reason", "notes", "scores", "homework_type", "completion", "description",
     "kind", "rater", "session", "session_id", "assignment_id", "seed", "username",
     "password", "GHES_1", "GHES_5", "StHAR_A1", "difficulties", "resolve", "count", "page"]
)  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(-(2**63), 2**63).map(str),
    st.sampled_from(["", "0", "4", "5", "-1", "1e309", "nan", "NaN", "inf", "null", "true",
                     "9" * 40, "\x00", "../../etc/passwd", "rater_a", "GHES", "main"]),
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(FIELD_NAMES | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=20,
)
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _targets(app, table, world):
    with app.test_request_context():
        return [
            (endpoint, method, url_for(endpoint, **table.ACCESS[endpoint].values(world)))
            for endpoint, _, methods in table.routes(app)
            for method in sorted(methods & set(table.STATE_CHANGING))
            if endpoint in table.ACCESS and endpoint != "auth.logout"
        ]


def _check(app, table, world, role, data, send):
    client = app.test_client()
    endpoint, method, url = data.draw(st.sampled_from(_targets(app, table, world)))
    table.log_in_as(client, world.user(role))
    response = send(client, method, url)
    db.session.rollback()
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"{method} {endpoint} -> {response.status_code}"
    assert "Traceback" not in body


@FUZZ
@given(data=st.data(), role=st.sampled_from(["rater_a", "coordinator"]))
def test_arbitrary_form_data(app, table, world, data, role):
    form = data.draw(st.dictionaries(FIELD_NAMES, VALUES, max_size=8))
    _check(app, table, world, role, data, lambda c, m, u: c.open(u, method=m, data=form))


@FUZZ
@given(data=st.data(), role=st.sampled_from(["rater_a", "coordinator"]))
def test_arbitrary_json_bodies(app, table, world, data, role):
    body = data.draw(JSON)
    _check(app, table, world, role, data, lambda c, m, u: c.open(u, method=m, json=body))


@FUZZ
@given(data=st.data(), raw=st.binary(max_size=200))
def test_arbitrary_raw_bodies(app, table, world, data, raw):
    content_type = data.draw(
        st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"])
    )
    _check(app, table, world, "rater_a", data,
           lambda c, m, u: c.open(u, method=m, data=raw, content_type=content_type))  # fmt: skip
