"""``rater serve``, ``rater backup FILE`` and ``rater restore FILE``.

``rater serve`` runs the app under gunicorn (gthread workers). It refuses to start with the
default secret key (or one shorter than 32 characters) or with debug on unless the demo mode is
on (``RATER_DEMO=1``), and it refuses a database whose schema is not at the latest migration
(``rater init-db`` upgrades it; the server never changes the schema by itself). Each worker
builds its own app, so no database connection is shared across a fork.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from gunicorn.app.base import BaseApplication
from sqlalchemy.engine import URL, make_url

from rater.cli import fail
from rater.config import DEFAULT_SECRET_KEY, MIN_SECRET_KEY_LENGTH
from rater.extensions import db

DEFAULT_WORKERS = 2  # one per core on the reference 2-core machine
DEFAULT_THREADS = 4  # threads per worker: requests mostly wait on the database
BACKUP_MODE = 0o600  # backups hold clinical data: readable by their owner only


class RaterServer(BaseApplication):
    """gunicorn, configured in code; ``factory`` builds the WSGI app inside each worker."""

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def startup_problems(app: Flask) -> list[str]:
    """Reasons not to serve this app in production; empty when it may start."""
    problems = []
    if not app.config.get("RATER_DEMO"):
        problems.extend(secret_key_problems(app.config.get("SECRET_KEY")))
        if app.debug or app.config.get("DEBUG"):
            problems.append("Debug mode is on. Unset FLASK_DEBUG / --debug for a real server.")
    problems.extend(schema_problems())
    problems.extend(instrument_problems(app))
    return problems


def instrument_problems(app: Flask) -> list[str]:
    """Every instrument file must load: a bad one is named with its item and field."""
    from rater.instruments import InstrumentError, load_instruments

    try:
        load_instruments(Path(app.config["RATER_INSTRUMENTS_DIR"]))
    except InstrumentError as exc:
        return [f"An instrument file is invalid: {exc}"]
    return []


def secret_key_problems(key: str | bytes | None) -> list[str]:
    """The key signs every session: the built-in one is public, a short one can be guessed."""
    advice = (
        "Set a long random SECRET_KEY in the environment "
        '(e.g. python -c "import secrets; print(secrets.token_hex(32))").'
    )
    if key == DEFAULT_SECRET_KEY:
        return [f"SECRET_KEY is the built-in default. {advice}"]
    if len(key or "") < MIN_SECRET_KEY_LENGTH:
        return [
            f"SECRET_KEY is too short: it needs at least {MIN_SECRET_KEY_LENGTH} characters, "
            f"it has {len(key or '')}. {advice}"
        ]
    return []


def schema_problems() -> list[str]:
    """The schema must be at the migration head; the server never upgrades it silently."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from rater.config import PROJECT_ROOT

    heads = set(ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == heads:
        return []
    shown = ", ".join(sorted(current)) or "empty"
    return [
        f"The database schema is not up to date (at {shown}, latest {', '.join(sorted(heads))}). "
        "Run `rater init-db` first (after a backup: `rater backup FILE`)."
    ]


def exposure_warning(host: str, proxy_count: int) -> str | None:
    """A warning when ``rater serve`` would face clients without a reverse proxy, else None.

    gunicorn's threads read a request's headers themselves, so a few clients that never finish
    theirs stop it answering (measured: docs/security.md, "Slow clients"); nginx in front reads
    whole requests before it passes them on.
    """
    if proxy_count > 0 or _is_loopback(host):
        return None
    return (
        f"WARNING: rater serve listens on {host}, which other machines can reach, and "
        "RATER_PROXY_COUNT=0 says no reverse proxy is in front. Without one, a few slow "
        "clients can stop the server answering. For any use beyond this machine put nginx in "
        "front (README, Deployment), bind rater serve to 127.0.0.1 and set RATER_PROXY_COUNT=1."
    )


def _is_loopback(host: str) -> bool:
    """True for an address only this machine can reach; a host name counts as reachable."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def gunicorn_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    def when_ready(server: Any) -> None:
        # Print the address actually bound (port 0 picks a free one, handy for tests).
        addresses = ", ".join(f"http://{_address(listener)}/" for listener in server.LISTENERS)
        print(f"rater listening on {addresses}", flush=True)

    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "when_ready": when_ready,
    }


def _address(listener: Any) -> str:
    host, port = listener.sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1))
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1))
@with_appcontext
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the app under gunicorn (put nginx with TLS in front of it; see docs/deploy.md)."""
    # current_app is werkzeug's LocalProxy (its documented _get_current_object gives the app);
    # Flask types the proxy as Flask itself.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    problems = startup_problems(app)
    if problems:
        fail("rater serve refuses to start:", problems)
    database = safe_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if warning := exposure_warning(host, app.config.get("RATER_PROXY_COUNT", 0)):
        click.secho(warning, fg="yellow", err=True)
    db.engine.dispose()  # no connection of this process may survive into the workers
    click.echo(f"Starting {workers} worker(s) x {threads} thread(s); database {database}")
    from rater import create_app

    config = dict(app.config)
    RaterServer(lambda: create_app(config), gunicorn_options(host, port, workers, threads)).run()


# --- backup and restore ---------------------------------------------------------------------


def _engine_of(url: str) -> str:
    return make_url(url).get_backend_name()


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        fail("Backups need a database file, not an in-memory database.")
    return Path(database)


def _libpq_url(url: str) -> str:
    """The URL as pg_dump understands it: no SQLAlchemy driver suffix, and no password (a
    command line is visible to every user of the machine; the password goes in PGPASSWORD)."""
    parts = make_url(url)
    without_password = URL.create(
        "postgresql", username=parts.username, host=parts.host, port=parts.port,
        database=parts.database, query=parts.query,
    )  # fmt: skip
    return without_password.render_as_string(hide_password=False)


def _libpq_environment(url: str) -> dict[str, str]:
    """The environment for pg_dump/pg_restore: the password, if the URL has one, in PGPASSWORD
    (readable only by this user and root, unlike the command line)."""
    password = make_url(url).password
    return {**os.environ, "PGPASSWORD": password} if password else dict(os.environ)


def _create_private(file: Path) -> int:
    """Create ``file`` readable and writable by its owner only (0600), before anything is
    written to it; fail if it exists. Returns the open descriptor."""
    try:
        return os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_MODE)
    except OSError as exc:
        fail(f"Cannot create {file}: {exc.strerror}.")
        raise  # fail() exits; for the type checker


def sqlite_backup(source: Path, target: Path) -> None:
    """Copy a live SQLite database with the online backup API (consistent, no lock-out)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def sqlite_check(path: Path) -> list[str]:
    """Problems that make ``path`` unfit to restore from (not SQLite, damaged, not rater)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        conn.close()
    except sqlite3.DatabaseError as exc:
        return [f"{path} is not a readable SQLite database ({exc})."]
    if integrity != "ok":
        return [f"{path} is damaged: {integrity}"]
    if not {"alembic_version", "users", "ratings"} <= tables:
        return [f"{path} is not a rater database (its tables are missing)."]
    return []


def _run(command: list[str], what: str, url: str, stdout: int | None = None) -> None:
    """Run a PostgreSQL client tool on ``url``'s database (password in the environment)."""
    tool = command[0]
    if shutil.which(tool) is None:
        fail(f"{tool} is not on the PATH; install the PostgreSQL client tools.")
    result = subprocess.run(
        command, stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, check=False, env=_libpq_environment(url),
    )  # fmt: skip
    if result.returncode != 0:
        fail(f"{what} failed:", [line for line in result.stderr.splitlines() if line.strip()])


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@with_appcontext
def backup(file: Path, force: bool) -> None:
    """Back up the database to FILE while the server keeps running.

    SQLite: a consistent copy through the online backup API. PostgreSQL: pg_dump -Fc. FILE is
    created with mode 0600 before anything is written to it (a backup holds clinical data).
    """
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if file.exists() and not force:
        fail(f"{file} exists; choose another name or pass --force.")
    sqlite = _engine_of(url) == "sqlite"
    if sqlite and not _sqlite_path(url).exists():
        fail(f"There is no database at {_sqlite_path(url)}.")
    if file.exists():
        file.unlink()
    descriptor = _create_private(file)
    try:
        if sqlite:
            os.close(descriptor)  # SQLite writes into the empty private file
            sqlite_backup(_sqlite_path(url), file)
        else:
            with os.fdopen(descriptor, "wb") as out:
                _run(["pg_dump", "--format=custom", _libpq_url(url)], "pg_dump", url, out.fileno())
    except BaseException:
        file.unlink(missing_ok=True)  # no half-written backup that looks like a good one
        raise
    click.echo(f"Backed up {safe_url(url)} to {file}.")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the database.")
@with_appcontext
def restore(file: Path, yes: bool) -> None:
    """Replace the database with the backup in FILE. Stop the server first.

    SQLite: FILE is checked (integrity, rater tables) and copied over the database with the
    backup API. PostgreSQL: pg_restore --clean into the database of DATABASE_URL.
    """
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if not yes:
        click.confirm(f"Replace everything in {safe_url(url)} with {file}?", abort=True)
    db.engine.dispose()
    if _engine_of(url) == "sqlite":
        problems = sqlite_check(file)
        if problems:
            fail("Nothing was restored:", problems)
        sqlite_backup(file, _sqlite_path(url))
    else:
        _run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
             f"--dbname={_libpq_url(url)}", str(file)],
            "pg_restore",
            url,
        )  # fmt: skip
    click.echo(f"Restored {safe_url(url)} from {file}.")


def register(app: Flask) -> None:
    """Add the deployment commands to the ``rater`` group."""
    for command in (serve, backup, restore):
        app.cli.add_command(command)
