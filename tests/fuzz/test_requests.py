"""Arbitrary form data and JSON bodies to every state-changing endpoint: never a 500; input no
view could store (NUL, lone surrogates, JSON nested 100,000 deep) on every route: a clear 400."""

from __future__ import annotations

import pytest
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
                     "9" * 40, "\x00", "a\x00b", "²", "../../etc/passwd", "rater_a", "GHES",
                     "main"]),
)  # fmt: skip
# Any text, lone surrogates included (hypothesis leaves them out by default).
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(FIELD_NAMES | ANY_TEXT, children, max_size=6)
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
@given(data=st.data(), depth=st.integers(0, 100_000), wrapped=st.booleans())
def test_deeply_nested_json(app, table, world, data, depth, wrapped):
    raw = "[" * depth + "]" * depth
    raw = f'{{"changes": {raw}}}' if wrapped else raw
    send = lambda c, m, u: c.open(u, method=m, data=raw, content_type="application/json")  # noqa: E731
    _check(app, table, world, "rater_a", data, send)


@FUZZ
@given(data=st.data(), raw=st.binary(max_size=200))
def test_arbitrary_raw_bodies(app, table, world, data, raw):
    content_type = data.draw(
        st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"])
    )
    _check(app, table, world, "rater_a", data,
           lambda c, m, u: c.open(u, method=m, data=raw, content_type=content_type))  # fmt: skip


# --- every route, with input no view could store -----------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000
# (name, request arguments, a word the 400's message must contain)
BODIES = [
    ("form field with NUL", {"data": {"username": "a\x00", "reason": "x", "seed": "1"}}, "NUL"),
    ("form field name with NUL", {"data": {"a\x00b": "1"}}, "NUL"),
    ("JSON string with NUL", {"json": {"username": "x", "changes": [{"text": "a\x00"}]}}, "NUL"),
    ("JSON key with NUL", {"json": {"a\x00": 1}}, "NUL"),
    ("JSON lone surrogate", {"data": '{"username": "a\\ud800", "base_version": 1}',
                             "content_type": "application/json"}, "surrogate"),
    ("JSON 100,000 deep", {"data": DEEP, "content_type": "application/json"}, "nested"),
    ("JSON 100,000 deep in an object", {"data": f'{{"changes": {DEEP}}}',
                                        "content_type": "application/json"}, "nested"),
    ("JSON 33 deep", {"json": {"base_version": 1, "changes": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
        ]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}, "nested"),
]  # fmt: skip
QUERIES = [("page=%00", "NUL"), ("q=1&next=%2Fqueue%00", "NUL"), ("a%00b=1", "NUL")]
ODD_QUERIES = ["page=%C2%B2", "page=%D9%A1", "days=%C2%B2", "page=99999999999999999999999",
               "page=%ED%A0%80", "patient=%FF%FE"]  # fmt: skip


def _plan(app, table, world):
    """(endpoint, method, url, view values) for every classified route, GETs first."""
    with app.test_request_context():
        plan = [
            (endpoint, method, url_for(endpoint, **table.ACCESS[endpoint].values(world)),
             table.ACCESS[endpoint].values(world))
            for endpoint, _, methods in table.routes(app)
            for method in sorted(methods)
            if endpoint in table.ACCESS
        ]  # fmt: skip
    return sorted(plan, key=lambda p: (p[1] != "GET", p[0].endswith(("delete", "logout"))))


def _url_with(app, endpoint, values, name, value) -> str | None:
    """The URL with one value replaced; None when the route's converter cannot hold it (a
    choice of words: such a URL does not reach the route at all)."""
    with app.test_request_context():
        try:
            return url_for(endpoint, **{**values, name: value})
        except ValueError:
            return None


def _refused(response, word) -> str | None:
    """None when the response is a 400 whose message contains ``word``, else what it was."""
    message = response.json.get("error", "") if response.is_json else ""
    if response.status_code == 400 and word.lower() in message.lower():
        return None
    return f"{response.status_code} {message or response.get_data(as_text=True)[:80]!r}"


@pytest.mark.parametrize("role", ["anonymous", "rater_a", "coordinator"])
def test_unusable_input_gets_a_clear_400_on_every_route(app, table, world, role):
    client = app.test_client()
    user = None if role == "anonymous" else world.user(role)
    json = {"Accept": "application/json"}
    wrong = []

    def expect(what, word, method, url, **kwargs):
        table.log_in_as(client, user)
        with client.open(url, method=method, headers=json, **kwargs) as response:  # closes files
            db.session.rollback()
            if (problem := _refused(response, word)) is not None:
                wrong.append(f"{method} {url} {what}: {problem}")

    for endpoint, method, url, values in _plan(app, table, world):
        for query, word in QUERIES:
            expect(f"?{query}", word, method, f"{url}?{query}")
        for name, value in values.items():
            nul_url = _url_with(app, endpoint, values, name, f"{value}\x00")
            if isinstance(value, str) and nul_url:
                expect(f"<{name}> with NUL", "NUL", method, nul_url)
        if method in table.STATE_CHANGING:
            for what, kwargs, word in BODIES:
                expect(what, word, method, url, **kwargs)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ["rater_a", "coordinator"])
def test_odd_but_storable_input_never_gives_a_500(app, table, world, role):
    """Superscript and Arabic-Indic digits, huge numbers, undecodable bytes in query strings;
    ids beyond the database's integer range in paths (404, like any id that does not exist)."""
    client = app.test_client()
    wrong = []

    def send(method, url, allowed):
        table.log_in_as(client, world.user(role))
        with client.open(url, method=method) as response:  # closes the files it streams
            db.session.rollback()
            if response.status_code not in allowed:
                wrong.append(f"{method} {url} -> {response.status_code}")

    for endpoint, method, url, values in _plan(app, table, world):
        for query in ODD_QUERIES:
            send(method, f"{url}?{query}", range(500))
        for name, value in values.items():
            for huge in (2**31, 2**63, 10**30) if isinstance(value, int) else ():
                send(method, _url_with(app, endpoint, values, name, huge), {404})
    assert not wrong, "\n".join(wrong)


# --- autosave: known ops with fields of any JSON type ---------------------------------------------

FIELDS_OF = {
    "score": ["item", "value", "base"],
    "note.put": ["client_id", "seconds", "text", "base"],
    "note.delete": ["client_id", "base"],
    "homework.put": ["client_id", "homework_type", "completion", "description", "base"],
    "homework.delete": ["client_id", "base"],
    "difficulties": ["values", "base"],
    "position": ["seconds"],
    "active": ["seconds"],
}
PLAUSIBLE = st.sampled_from(
    ["GHES_1", 3, None, "n-1", 12.5, "behavioural", "yes", "lack of time", ["lack of time"],
     {"seconds": 12.0, "text": "x"}, 10**400, -1, True]
)  # fmt: skip
# The fields that name what a change is about are mostly right, so that the others are reached.
KEYS = {"item": st.just("GHES_1"), "client_id": st.sampled_from(["n-1", "h-1"])}
CHANGE = st.sampled_from(sorted(FIELDS_OF)).flatmap(
    lambda op: st.fixed_dictionaries(
        {"op": st.just(op)} | {name: KEYS[name] for name in FIELDS_OF[op] if name in KEYS},
        optional={name: PLAUSIBLE | JSON for name in FIELDS_OF[op] if name not in KEYS},
    )
)


@settings(FUZZ, max_examples=150)
@given(changes=st.lists(CHANGE, max_size=5), envelope=st.sampled_from([{}, {"client": "t"}]))
def test_autosave_changes_of_any_type(app, table, world, changes, envelope):
    """Every answer is 200, 400 naming the changes, 409 or 413; never a 500."""
    client = app.test_client()
    table.log_in_as(client, world.rater_a)
    body = {"base_version": 1, "changes": changes, **envelope}
    if envelope:
        body["seq"] = 1 + len(changes)
    url = f"/assignments/{world.assignment_a.id}/autosave"
    response = client.post(url, json=body)
    db.session.rollback()
    assert response.status_code in (200, 400, 409, 413), (body, response.status_code)
    if response.status_code == 400 and "problems" in response.json:
        assert all(
            p.startswith(("change ", "notes:", "homework:")) for p in response.json["problems"]
        )
