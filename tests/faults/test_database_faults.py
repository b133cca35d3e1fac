"""The database goes away, turns read-only or fills up: a clear 503, never a silent loss.

The browser test stands a PostgreSQL restart in for by closing only this run's database
to connections for a few seconds (see docs/load.md): the rater keeps scoring, the page says
"Not saved — retrying", and once the database is back everything typed is stored.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from rater import create_app
from rater.config import TestConfig as AppConfig
from rater.errors import FULL_MESSAGE, READ_ONLY_MESSAGE
from rater.extensions import db

DOWN_SECONDS = 4
NOTE = "Reviews the diary while the database is away"


def _log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("My queue")


def _score(page: Page, code: str, value: int) -> None:
    page.click(f"label.point:has(#{code}-{value})")


@pytest.mark.browser
@pytest.mark.parametrize("fault", ["restart", "read-only"])
def test_browser_keeps_retrying_until_the_database_is_back(
    fault, app, database_url, sim, pg_switch, browser_page
):
    spec = sim.build_study(1, prefix="fault")[0]
    items = sim.item_codes()
    page, indicator = browser_page, browser_page.locator("#save-state")
    with sim.Server(database_url, workers=1, threads=2) as server:
        _log_in(page, server.url, spec.username, sim.PASSWORD)
        page.goto(f"{server.url}/assignments/{spec.assignment_id}/rate")
        _score(page, items[0], 3)
        expect(indicator).to_have_text("All changes saved")

        (pg_switch.unavailable if fault == "restart" else pg_switch.read_only)()
        down_since = time.monotonic()
        _score(page, items[1], 1)
        _score(page, items[2], 4)
        page.fill("#note-text", NOTE)
        page.click("#note-add")
        expect(indicator).to_contain_text("Not saved — retrying")
        time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_since)))
        expect(indicator).to_contain_text("Not saved")  # still nothing acknowledged
        (pg_switch.available if fault == "restart" else pg_switch.writable)()

        expect(indicator).to_have_text("All changes saved", timeout=45_000)
    with sim.database(database_url) as engine, engine.connect() as conn:
        scores = dict(conn.execute(text("SELECT item_code, score FROM item_scores")).all())
        notes = conn.execute(text("SELECT text FROM notes")).scalars().all()
    assert scores == {items[0]: 3, items[1]: 1, items[2]: 4}
    assert notes == [NOTE]


# --- read-only and full databases, through the app itself -----------------------------------


def _logged_in_client(app, sim):
    spec = sim.build_study(1, prefix="fault")[0]
    client = app.test_client()
    response = client.post("/login", data={"username": spec.username, "password": sim.PASSWORD})
    assert response.status_code == 302
    return spec, client


def _same_session(app, client):
    """A client of ``app`` carrying the login cookie of ``client`` (same secret key)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def _stored_scores(database_url: str, sim) -> dict[str, int]:
    with sim.database(database_url) as engine, engine.connect() as conn:
        return dict(conn.execute(text("SELECT item_code, score FROM item_scores")).all())


@contextmanager
def _read_only_app(database_url, request):
    """An app on the database made read-only: a read-only SQLite URI, or PostgreSQL's setting.

    A fresh app, used without pushing its context: each request gets its own ``flask.g``.
    """
    url = make_url(database_url)
    switch = None
    if url.get_backend_name() == "sqlite":
        database_url = f"sqlite:///file:{url.database}?mode=ro&uri=true"
    else:
        switch = request.getfixturevalue("pg_switch")
        switch.read_only()
    read_only = create_app(AppConfig(database_url))
    try:
        yield read_only
    finally:
        with read_only.app_context():
            db.engine.dispose()
        if switch is not None:
            switch.writable()
            db.engine.dispose()  # the test app's connections were ended by the switch


def test_read_only_database_answers_503_and_stores_nothing(app, database_url, sim, request):
    spec, client = _logged_in_client(app, sim)
    item = sim.item_codes()[0]
    body = {"base_version": 1, "changes": [{"op": "score", "item": item, "value": 2, "base": None}]}
    url = f"/assignments/{spec.assignment_id}/autosave"
    with _read_only_app(database_url, request) as read_only:
        login_page = read_only.test_client().post(
            "/login", data={"username": spec.username, "password": sim.PASSWORD}
        )
        refused = _same_session(read_only, client).post(url, json=body)
    assert refused.status_code == 503
    assert refused.json == {"error": READ_ONLY_MESSAGE, "status": 503}
    assert refused.headers["Retry-After"] == "5"
    assert login_page.status_code == 503  # an HTML form says it in HTML
    assert "read-only" in login_page.get_data(as_text=True)
    assert "Traceback" not in login_page.get_data(as_text=True)
    assert _stored_scores(database_url, sim) == {}
    # The client keeps the change and retries; once writable it is stored.
    assert client.post(url, json=body).status_code == 200
    assert _stored_scores(database_url, sim) == {item: 2}


def test_one_save_refused_as_read_only_renews_every_connection_opened_read_only(
    app, database_url, sim, pg_switch
):
    """After a read-only period the first save on a stale connection fails; the pool then
    replaces all connections it opened before, so the next save goes through."""
    spec, client = _logged_in_client(app, sim)
    item = sim.item_codes()[0]
    body = {"base_version": 1, "changes": [{"op": "score", "item": item, "value": 3, "base": None}]}
    url = f"/assignments/{spec.assignment_id}/autosave"
    pg_switch.read_only()
    stale = create_app(AppConfig(database_url))
    try:
        with stale.app_context():
            opened = [db.engine.connect() for _ in range(3)]  # pooled while read-only
            for connection in opened:
                connection.close()
        pg_switch.writable()
        rater = _same_session(stale, client)
        answers = [rater.post(url, json=body).status_code for _ in range(2)]
    finally:
        with stale.app_context():
            db.engine.dispose()
    assert answers == [503, 200]
    assert _stored_scores(database_url, sim) == {item: 3}


def test_full_database_answers_503_and_stores_nothing(app, database_url, sim):
    spec, client = _logged_in_client(app, sim)
    db.session.remove()
    note = {"op": "note.put", "client_id": "n1", "seconds": 1.5, "text": "x" * 9000, "base": None}
    body = {"base_version": 1, "changes": [note]}
    url = f"/assignments/{spec.assignment_id}/autosave"
    with _full_database(database_url) as full:
        refused = _same_session(full, client).post(url, json=body)
    assert refused.status_code == 503
    assert refused.json == {"error": FULL_MESSAGE, "status": 503}
    with sim.database(database_url) as engine, engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notes")).scalar() == 0
    # Room again: the client's retry of the same batch is stored.
    assert client.post(url, json=body).status_code == 200


@contextmanager
def _full_database(database_url: str):
    """An app whose database cannot grow.

    SQLite: ``max_page_count`` pinned to the file's size after a VACUUM. PostgreSQL: a trigger
    on ``notes`` raising SQLSTATE 53100 (disk_full) exactly as the server does when it cannot
    extend a file; dropped again on exit.
    """
    full = create_app(AppConfig(database_url))
    if make_url(database_url).get_backend_name() == "sqlite":
        path = make_url(database_url).database
        with sqlite3.connect(path) as conn:
            conn.execute("VACUUM")  # no free pages left: any new row must grow the file
        conn.close()
        with full.app_context():
            event.listen(db.engine, "connect", _no_growth)
            db.engine.dispose()
        try:
            yield full
        finally:
            with full.app_context():
                db.engine.dispose()
        return
    with full.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(PG_DISK_FULL_TRIGGER))
        try:
            yield full
        finally:
            with db.engine.begin() as conn:
                conn.execute(text("DROP TRIGGER rater_disk_full ON notes"))
                conn.execute(text("DROP FUNCTION rater_disk_full()"))
            db.engine.dispose()


PG_DISK_FULL_TRIGGER = """
CREATE FUNCTION rater_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
END $$;
CREATE TRIGGER rater_disk_full BEFORE INSERT OR UPDATE ON notes
  FOR EACH ROW EXECUTE FUNCTION rater_disk_full();
"""


def _no_growth(dbapi_connection, record) -> None:
    """SQLite stops at its current size (max_page_count is raised to the page count)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA max_page_count = 1")
    cursor.close()
