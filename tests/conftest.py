"""Shared fixtures: an app on a throwaway database, clients, a CLI runner, login helpers.

The suite runs on SQLite by default. When ``RATER_TEST_DATABASE_URL`` names a PostgreSQL server
(e.g. ``postgresql://postgres@127.0.0.1:5432/test``), every test runs on PostgreSQL instead: the
fixtures create a database of their own on that server (so parallel runs never meet) and drop it
at the end. The schema is built once per run by the committed Alembic migrations; after each test
every table it filled is emptied.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from hypothesis import settings
from sqlalchemy import text

from rater import create_app
from rater.config import TestConfig
from rater.extensions import db
from rater.reliability.cache import EXTENSION as RELIABILITY_CACHE
from tests.support.databases import scratch_postgres_database

# Hypothesis profiles. ``deterministic`` is the one `make test`, CI and a plain `pytest` use on
# every machine: derandomized, so every run draws the same examples and a newcomer's first run
# agrees with CI. ``explore`` (HYPOTHESIS_PROFILE=explore) draws new examples on each run, and
# the property tests that size their runs by the profile (tests/allocation/test_design.py) run
# 20 times as many; pin what it finds with @example.
settings.register_profile(
    "deterministic", derandomize=True, database=None, deadline=None, print_blob=True
)
settings.register_profile("explore", deadline=None, print_blob=True, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

# Fixtures shared across test folders live in plugins (one Chromium per run for every folder).
pytest_plugins = (
    "tests.support.browser",
    "tests.support.load",
    "tests.support.access",
    "tests.support.demo",
    "tests.support.imports",
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = os.environ.get("RATER_TEST_DATABASE_URL")
    if server:
        with scratch_postgres_database(server, durable=False) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'rater-test.sqlite'}"


@pytest.fixture(scope="session")
def _schema(database_url: str) -> Iterator[str]:
    """Build the schema once per run through the migrations (they are tested by every run)."""
    app = create_app(TestConfig(database_url))
    with app.app_context():
        from rater.cli import upgrade_schema

        upgrade_schema()
        db.engine.dispose()
    yield database_url
    while _shared_apps:  # their pools close before the database is dropped
        _, shared = _shared_apps.popitem()
        with shared.app_context():
            db.engine.dispose()


def _empty_all_tables() -> None:
    """Delete the rows a test left, and on PostgreSQL restart the ids of the tables it used.

    Only tables with rows are touched (one query finds them): most tests fill a few of the
    twenty tables, and PostgreSQL's TRUNCATE of all of them cost ~0.3 s per test.
    """
    tables = list(reversed(db.metadata.sorted_tables))
    probe = " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables
    )
    used = set(db.session.scalars(text(probe)))
    for table in tables:
        if table.name in used:
            db.session.execute(table.delete())
    if db.engine.dialect.name == "postgresql" and used:
        db.session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(table_name, column_name), 1, false) "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND column_default LIKE 'nextval%' AND table_name = ANY(:used)"
            ),
            {"used": sorted(used)},
        )
    db.session.commit()


@pytest.fixture
def app_config(_schema: str, tmp_path: Path) -> TestConfig:  # noqa: ARG001 (a fixture requested for its setup)
    config = TestConfig(_schema)
    config.RATER_INSTRUMENTS_DIR = str(PROJECT_ROOT / "instruments")
    config.RATER_AUDIO_DIR = str(PROJECT_ROOT / "audio")
    return config


def _isolate_requests(app) -> None:
    """Give every test request a clean ``g``.

    The fixtures keep an app context pushed so that tests can use ``db.session`` directly; Flask
    reuses that context for test requests, so without this the user Flask-Login cached in
    ``g`` (and Flask-WTF's CSRF token) would leak from one request, or client, to the next.
    """

    @app.before_request
    def _fresh_g() -> None:
        for name in list(vars(g)):
            delattr(g, name)


class ServerLikeClient(FlaskClient):
    """A test client that reads every response to its end and closes it, as a server does.

    Files (audio, static) are sent as streams: unread, their open file handles would be left to
    the garbage collector, which ``filterwarnings = error`` turns into failures in whichever test
    happens to run the collector. A test that reads a stream itself passes ``buffered=False``
    and closes the response (``with client.get(...) as response``).
    """

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def _new_app(config: TestConfig) -> Flask:
    """An app as every test gets one: its test client closes what it reads."""
    app = create_app(config)
    app.test_client_class = ServerLikeClient
    return app


# Building an app costs ~60 ms (werkzeug compiles a URL builder per route): tests whose
# configurations are equal share one app. What a test may change is put back after it: the
# config, the cached reliability results (kept under a data version that restarts with the
# emptied tables), the rows it wrote and, on PostgreSQL, the pool's connections.
SHARED_APPS = 8
_shared_apps: OrderedDict[str, Flask] = OrderedDict()


def _shared_app(config: TestConfig) -> Flask:
    key = repr(sorted(vars(config).items()))
    app = _shared_apps.pop(key, None)
    if app is None:
        app = _new_app(config)
        _isolate_requests(app)
    _shared_apps[key] = app
    while len(_shared_apps) > SHARED_APPS:
        _, oldest = _shared_apps.popitem(last=False)
        with oldest.app_context():
            db.engine.dispose()
    return app


@contextmanager
def _test_app(config: TestConfig) -> Iterator[Flask]:
    app = _shared_app(config)
    settings_before = dict(app.config)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.rollback()
            _empty_all_tables()
            db.session.remove()
            if db.engine.dialect.name == "postgresql":
                # A new server process for the next test: one kept from a test with a few rows
                # keeps the plans of its foreign-key checks, and the 66,000-row import test then
                # took 150 s instead of 10 (a sequential scan per checked row).
                db.engine.dispose()
            app.config.clear()
            app.config.update(settings_before)
            app.extensions.pop(RELIABILITY_CACHE, None)


@pytest.fixture
def app(app_config: TestConfig) -> Iterator[Flask]:
    with _test_app(app_config) as app:
        yield app


@pytest.fixture
def build_app() -> Iterator[Callable[[TestConfig], Flask]]:
    """``create_app`` for a test that needs an app of its own (a second server process, other
    settings); the pools of the apps it built are disposed after the test, as a stopped
    server's are (on PostgreSQL an undisposed pool leaves open connections to the collector)."""
    built: list[Flask] = []

    def build(config: TestConfig) -> Flask:
        app = _new_app(config)
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def csrf_app(app_config: TestConfig) -> Iterator[Flask]:
    """Like ``app`` but with CSRF protection on, as in production."""
    app_config.WTF_CSRF_ENABLED = True
    with _test_app(app_config) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Factory:
    """Small builders for test data (commit, as a finished request would)."""

    def user(self, name: str, role: str = "rater", password: str = PASSWORD):
        from rater.auth.service import add_user

        user = add_user(name, role, password)
        db.session.commit()
        return user

    def session(
        self,
        code: str = "P01-S01",
        patient: str = "P01",
        therapist: str = "T1",
        number: int = 1,
        status: str = "eligible",
        audio: str | None = "demo-session-a.ogg",
        phq9: int | None = None,
    ):
        from rater.study.models import Patient, Therapist, TherapySession

        t = db.session.scalar(db.select(Therapist).filter_by(code=therapist)) or Therapist(
            code=therapist
        )
        p = db.session.scalar(db.select(Patient).filter_by(code=patient)) or Patient(code=patient)
        s = TherapySession(
            code=code,
            patient=p,
            therapist=t,
            session_number=number,
            phase="I" if number < 5 else "II",
            audio_path=audio,
            duration_seconds=68.3 if audio else None,
            status=status,
            exclusion_reason="test" if status == "excluded" else None,
            phq9=phq9,
        )
        db.session.add(s)
        db.session.commit()
        return s

    def assignment(self, session, rater, purpose: str = "main", status: str = "pending"):
        from rater.rating.models import Assignment

        a = Assignment(session_id=session.id, rater_id=rater.id, purpose=purpose, status=status)
        db.session.add(a)
        db.session.commit()
        return a


@pytest.fixture
def factory(app) -> Factory:  # noqa: ARG001 (a fixture requested for its setup)
    return Factory()


class AuthActions:
    def __init__(self, client) -> None:
        self._client = client

    def login(self, username: str, password: str = PASSWORD):
        return self._client.post(
            "/login", data={"username": username, "password": password}, follow_redirects=False
        )

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


def pytest_collection_modifyitems(items) -> None:
    """Mark tests that never touch a database, so the PostgreSQL pass can skip re-running them."""
    for item in items:
        if "database_url" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.nodb)
