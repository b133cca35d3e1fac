"""``rater serve``: refuses unsafe settings and stale schemas; serves under gunicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from rater.config import DEFAULT_SECRET_KEY
from rater.config import TestConfig as RaterConfig
from rater.extensions import db
from rater.serve import startup_problems


def test_default_secret_key_and_debug_are_refused_outside_demo(build_app, app_config, monkeypatch):
    app_config.SECRET_KEY = DEFAULT_SECRET_KEY
    monkeypatch.setenv("FLASK_DEBUG", "1")  # what `rater --debug serve` sets
    app = build_app(app_config)
    result = app.test_cli_runner().invoke(args=["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "refuses to start" in result.output
    assert "SECRET_KEY is the built-in default" in result.output
    assert "Debug mode is on" in result.output


def test_demo_mode_may_use_the_default_key(build_app, app_config):
    app_config.SECRET_KEY = DEFAULT_SECRET_KEY
    app_config.RATER_DEMO = True
    app = build_app(app_config)
    with app.app_context():
        assert startup_problems(app) == []


def test_a_database_without_schema_is_refused(build_app, tmp_path):
    app = build_app(RaterConfig(f"sqlite:///{tmp_path / 'empty.sqlite'}"))
    result = app.test_cli_runner().invoke(args=["serve"])
    assert result.exit_code == 1
    assert "schema is not up to date" in result.output and "rater init-db" in result.output


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(build_app, tmp_path):
    app = build_app(RaterConfig(f"sqlite:///{tmp_path / 'wal.sqlite'}"))
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


@contextmanager
def running_server(database_url: str, workers: int = 1, threads: int = 2):
    """``rater serve`` as a subprocess on a free port; yields its base URL.

    Load and fault tests can use the same pattern: the server prints the address it bound.
    """
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "s" * 40}
    env.pop("FLASK_DEBUG", None)
    command = [sys.executable, "-c", "from rater.cli import main; main()", "serve", "--port", "0"]
    command += ["--workers", str(workers), "--threads", str(threads)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 60
        for line in process.stdout:
            lines.append(line)
            if "listening on" in line:
                yield line.split("listening on ")[1].strip().rstrip("/")
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            raise AssertionError("server exited: " + "".join(lines))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()


@pytest.mark.usefixtures("app")
def test_serve_runs_the_app_under_gunicorn(database_url, factory):
    factory.user("r1")
    with (
        running_server(database_url) as base,
        urllib.request.urlopen(f"{base}/login", timeout=10) as response,
    ):
        assert response.status == 200
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Log in" in response.read().decode()


@pytest.mark.parametrize(
    ("host", "proxies", "warned"),
    [("0.0.0.0", 0, True), ("::", 0, True), ("192.168.1.20", 0, True),
     ("rating.example.org", 0, True), ("[2001:db8::1]", 0, True), ("0.0.0.0", 1, False),
     ("127.0.0.1", 0, False), ("127.0.0.2", 0, False), ("::1", 0, False),
     ("localhost", 0, False)],
)  # fmt: skip
def test_serve_warns_when_it_faces_clients_without_a_proxy(
    build_app, app_config, monkeypatch, host, proxies, warned
):
    import rater.serve

    started = []
    monkeypatch.setattr(rater.serve.RaterServer, "run", lambda server: started.append(server))
    app_config.SECRET_KEY = "k" * 40
    app_config.RATER_PROXY_COUNT = proxies
    app = build_app(app_config)
    result = app.test_cli_runner().invoke(args=["serve", "--host", host, "--port", "0"])
    assert result.exit_code == 0, result.output
    assert len(started) == 1  # the warning never stops the server
    assert ("WARNING: rater serve listens on" in result.output) is warned
    if warned:
        assert "RATER_PROXY_COUNT=0" in result.output and "nginx" in result.output
