"""Simulated raters against a real ``rater serve``: shared by tests/load, tests/faults and
bench/bench_load.py.

* ``build_study(n)`` creates n raters with one started rating each (inside an app context).
* ``Server`` runs ``rater serve`` (gunicorn) as a subprocess on a fixed free loopback port, so
  it can be killed with SIGKILL and restarted on the same address while the raters keep going.
* ``SimulatedRater`` logs in, opens its rating page, reads the CSRF token from the meta tag and
  the rating state from the page, then autosaves random scores and notes like the browser
  client: one batch in flight at a time, each change carrying the value last acknowledged by
  the server as ``base``, each batch numbered (``client``, ``seq``) like a browser tab's; a batch
  is retried unchanged until it is acknowledged (after a timeout, a dropped connection or a
  5xx), sometimes abandoned after a few milliseconds and resent, sometimes resent after its
  acknowledgement (a response lost on the way back), and sometimes an old batch arrives again
  late, after newer ones were acknowledged (a copy delayed in the network) — the server must
  answer it as a duplicate and apply nothing.
* ``verify`` compares the database with what each rater saw acknowledged.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from werkzeug.security import generate_password_hash

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
SECRET_KEY = "load-test-secret-" + "x" * 32
# One cheap hash for every simulated rater: the load is about autosave, not about scrypt.
FAST_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
STATE_SCRIPT = re.compile(r'<script type="application/json" id="rating-state">(.*?)</script>', re.S)


# --- the study --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaterSpec:
    username: str
    assignment_id: int
    rating_id: int


def build_study(n_raters: int, prefix: str = "load") -> list[RaterSpec]:
    """n raters, each with one started (draft) rating of a session of its own; committed."""
    from rater.auth.models import User
    from rater.extensions import db
    from rater.rating.models import Assignment
    from rater.rating.service import start_rating
    from rater.study.models import Patient, Therapist, TherapySession

    therapist = Therapist(code=f"{prefix.upper()}-T1")
    specs = []
    for i in range(n_raters):
        user = User(username=f"{prefix}{i:02d}", role="rater", active=True, password_hash=FAST_HASH)
        session = TherapySession(
            code=f"{prefix.upper()}{i:03d}-S01",
            patient=Patient(code=f"{prefix.upper()}{i:03d}"),
            therapist=therapist,
            session_number=1,
            phase="I",
            audio_path="demo-session-a.ogg",
            duration_seconds=68.3,
            status="eligible",
        )
        assignment = Assignment(session=session, rater=user, purpose="main", status="pending")
        db.session.add_all([user, session, assignment])
        rating = start_rating(assignment)
        specs.append((user, assignment, rating))
    db.session.commit()
    return [RaterSpec(u.username, a.id, r.id) for u, a, r in specs]


def item_codes() -> list[str]:
    """The item codes of the current instruments (inside an app context)."""
    from rater.study.instrument_store import current_versions, instrument_of

    return [c for v in current_versions().values() for c in instrument_of(v).item_codes]


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sqlalchemy_url(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def serve_command(workers: int, threads: int, port: int) -> list[str]:
    return [
        sys.executable, "-c", "from rater.cli import main; main()", "serve",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--threads", str(threads),
    ]  # fmt: skip


class Server:
    """A server subprocess in its own process group (SIGKILL takes master and workers)."""

    def __init__(
        self,
        database_url: str,
        workers: int = 2,
        threads: int = 4,
        command: Callable[[int], list[str]] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = (command or (lambda port: serve_command(workers, threads, port)))(self.port)
        self.env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY}
        self.env.pop("FLASK_DEBUG", None)
        self.env.update(env or {})
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 60) -> str:
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=PROJECT_ROOT, text=True, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(self.process, ready), daemon=True).start()
        if not ready.wait(timeout) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.output[-40:]))
        return self.url

    def _drain(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        with process.stdout:  # closed once the server has exited
            for line in process.stdout:
                self.output.append(line)
                if "listening on" in line:
                    ready.set()
        ready.set()

    def kill(self) -> None:
        """SIGKILL to master and workers at once, as a crash or the OOM killer would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def errors(self) -> list[str]:
        """Tracebacks and error lines the server printed (it logs at level warning)."""
        return [line for line in self.output if "Traceback" in line or "ERROR" in line]

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the raters -------------------------------------------------------------------------------


@dataclass
class LoadOptions:
    think: tuple[float, float] = (0.05, 0.3)  # pause between two saves of one rater (seconds)
    timeout: float = 10.0  # client timeout of one request; then the batch is retried
    abandon: float = 0.03  # share of batches first sent with a read timeout of a few ms
    resend: float = 0.05  # share of acknowledged batches sent once more (a lost response)
    late: float = 0.03  # share of rounds that also deliver an old batch again, late
    page: float = 0.05  # share of loop rounds that reload the rating page
    note: float = 0.4  # share of batches with a note
    settle: float = 60.0  # seconds after the deadline to get the last batch acknowledged


@dataclass
class Stats:
    save_latencies: list[float] = field(default_factory=list)
    page_latencies: list[float] = field(default_factory=list)
    first_page_latencies: list[float] = field(default_factory=list)  # every rater at once
    acknowledged: int = 0
    resent: int = 0
    abandoned: int = 0
    late: int = 0
    retried: int = 0
    statuses: Counter = field(default_factory=Counter)

    def merge(self, other: Stats) -> None:
        self.save_latencies += other.save_latencies
        self.page_latencies += other.page_latencies
        self.first_page_latencies += other.first_page_latencies
        self.acknowledged += other.acknowledged
        self.resent += other.resent
        self.abandoned += other.abandoned
        self.late += other.late
        self.retried += other.retried
        self.statuses.update(other.statuses)


class Refused(Exception):
    """The server refused a save that a correct client should never see refused."""


class SimulatedRater:
    """One rater's browser: sequential saves, retried until acknowledged."""

    def __init__(
        self, base: str, spec: RaterSpec, items: list[str], options: LoadOptions, seed: int
    ) -> None:
        self.base, self.spec, self.items, self.options = base, spec, items, options
        self.rng = random.Random(seed)
        self.http = requests.Session()
        self.stats = Stats()
        self.problems: list[str] = []
        self.version = 0
        self.csrf = ""
        self.scores: dict[str, int] = {}  # item -> last acknowledged value
        self.notes: dict[str, dict[str, Any]] = {}  # client_id -> last acknowledged state
        self.in_flight: list[dict[str, Any]] = []  # changes sent but not yet acknowledged
        self.client = uuid.uuid4().hex  # this "tab": its batches are numbered 1, 2, 3 ...
        self.seq = 0
        self.history: list[dict[str, Any]] = []  # acknowledged batches (for late copies)
        self.lock = threading.Lock()

    # -- pages --

    def login(self, give_up_at: float) -> None:
        page = self._request("GET", "/login", give_up_at)
        token = CSRF_META.search(page.text)
        data = {"username": self.spec.username, "password": PASSWORD, "csrf_token": token[1]}
        response = self._request("POST", "/login", give_up_at, data=data, allow_redirects=False)
        if response.status_code != 302:
            raise Refused(f"login of {self.spec.username}: {response.status_code}")

    def open_page(self, give_up_at: float) -> None:
        started = time.perf_counter()
        response = self._request("GET", f"/assignments/{self.spec.assignment_id}/rate", give_up_at)
        if response.status_code != 200 or not STATE_SCRIPT.search(response.text):
            raise Refused(f"rating page of {self.spec.username}: {response.status_code}")
        latencies = self.stats.page_latencies if self.version else self.stats.first_page_latencies
        latencies.append(time.perf_counter() - started)
        self.csrf = CSRF_META.search(response.text)[1]
        state = json.loads(STATE_SCRIPT.search(response.text)[1])
        if self.version and state["version"] != self.version:
            self.problems.append(f"page shows version {state['version']}, acked {self.version}")
        if not self.version:  # a fresh browser starts from what the page shows as saved
            self.scores = dict(state["scores"])
            self.notes = {n["client_id"]: {"seconds": n["seconds"], "text": n["text"]}
                          for n in state["notes"]}  # fmt: skip
        self.version = state["version"]

    # -- saves --

    def next_batch(self) -> list[dict[str, Any]]:
        rng, changes = self.rng, []
        for item in rng.sample(self.items, rng.randint(1, 3)):
            changes.append(
                {"op": "score", "item": item, "value": rng.randint(0, 4),
                 "base": self.scores.get(item)}
            )  # fmt: skip
        if rng.random() < self.options.note:
            if self.notes and rng.random() < 0.4:
                cid = rng.choice(sorted(self.notes))
                base = self.notes[cid]
            else:
                cid, base = uuid.uuid4().hex, None
            seconds = round(rng.uniform(0, 3600), 2)
            text = f"note {rng.randrange(10**6)} " + "ä" * rng.randint(0, 40)
            change = {"op": "note.put", "client_id": cid, "seconds": seconds, "text": text}
            changes.append({**change, "base": base})
        if rng.random() < 0.2:
            changes.append({"op": "position", "seconds": round(rng.uniform(0, 60), 2)})
        return changes

    def save(self, changes: list[dict[str, Any]], give_up_at: float) -> None:
        """Send one batch until the server acknowledges it (or raise Refused)."""
        self.seq += 1
        body = {"client": self.client, "seq": self.seq, "base_version": self.version}
        body["changes"] = changes
        with self.lock:
            self.in_flight = changes
        if self.rng.random() < self.options.abandon:
            self.stats.abandoned += 1
            self._post(body, timeout=(self.options.timeout, self.rng.uniform(0.001, 0.02)))
        result = self._post_until_acknowledged(body, give_up_at)
        with self.lock:
            self._acknowledge(changes, result)
        if self.rng.random() < self.options.resend:
            self.stats.resent += 1
            again = self._post_until_acknowledged(body, give_up_at)
            if again.get("applied") or not again.get("duplicate"):
                self.problems.append(f"a resent batch was applied again: {again}")
        self.history = [*self.history[-19:], body]

    def deliver_late(self, give_up_at: float) -> None:
        """An old batch arrives again after newer ones: acknowledged as a duplicate, not applied."""
        if len(self.history) < 2:
            return
        self.stats.late += 1
        old = self.rng.choice(self.history[:-1])
        answer = self._post_until_acknowledged(old, give_up_at)
        if answer.get("applied") or not answer.get("duplicate"):
            self.problems.append(f"a late copy of batch {old['seq']} was applied: {answer}")

    def _post_until_acknowledged(self, body: dict[str, Any], give_up_at: float) -> dict:
        attempt = 0
        while True:
            response = self._post(body, timeout=self.options.timeout)
            if response is not None and response.status_code == 200:
                return response.json()
            if response is not None and response.status_code < 500:
                raise Refused(f"{self.spec.username}: {response.status_code} {response.text[:300]}")
            if time.monotonic() > give_up_at:
                raise Refused(f"{self.spec.username}: gave up with a batch not acknowledged")
            attempt += 1
            self.stats.retried += 1
            time.sleep(min(1.0, 0.05 * 2**attempt) * self.rng.uniform(0.5, 1.0))

    def _post(self, body: dict[str, Any], timeout: Any) -> requests.Response | None:
        headers = {"X-CSRFToken": self.csrf, "Accept": "application/json"}
        url = f"{self.base}/assignments/{self.spec.assignment_id}/autosave"
        started = time.perf_counter()
        try:
            response = self.http.post(url, json=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            self.stats.statuses[type(exc).__name__] += 1
            return None
        self.stats.statuses[response.status_code] += 1
        if response.status_code == 200:
            self.stats.save_latencies.append(time.perf_counter() - started)
        return response

    def _acknowledge(self, changes: list[dict[str, Any]], result: dict[str, Any]) -> None:
        self.stats.acknowledged += 1
        self.version = result["version"]
        for change in changes:
            if change["op"] == "score":
                self.scores[change["item"]] = change["value"]
            elif change["op"] == "note.put":
                self.notes[change["client_id"]] = {
                    "seconds": change["seconds"],
                    "text": change["text"],
                }
        self.in_flight = []

    def snapshot(self) -> tuple[dict[str, int], dict[str, dict], list[dict[str, Any]]]:
        """What is acknowledged, and what is in flight (may or may not be stored)."""
        with self.lock:
            return dict(self.scores), {k: dict(v) for k, v in self.notes.items()}, self.in_flight

    # -- the loop --

    def prepare(self, give_up_at: float) -> None:
        """Log in and open the rating page (before the timed load starts)."""
        try:
            self.login(give_up_at)
            self.open_page(give_up_at)
        except Refused as exc:
            self.problems.append(str(exc))

    def run(self, deadline: float) -> None:
        give_up_at = deadline + self.options.settle
        if self.problems:
            return
        try:
            while time.monotonic() < deadline:
                if self.rng.random() < self.options.page:
                    self.open_page(give_up_at)
                self.save(self.next_batch(), give_up_at)
                if self.rng.random() < self.options.late:
                    self.deliver_late(give_up_at)
                low, high = self.options.think
                if high > 0:
                    time.sleep(self.rng.uniform(low, high))
        except Refused as exc:
            self.problems.append(str(exc))
        except Exception as exc:  # a crashed rater must fail the run, not vanish
            self.problems.append(f"{self.spec.username}: {type(exc).__name__}: {exc}")

    def _request(self, method: str, path: str, give_up_at: float, **kwargs: Any):
        while True:
            try:
                response = self.http.request(
                    method, self.base + path, timeout=self.options.timeout, **kwargs
                )
                if response.status_code < 500:
                    return response
            except requests.RequestException:
                pass
            if time.monotonic() > give_up_at:
                raise Refused(f"{self.spec.username}: {method} {path} kept failing")
            self.stats.retried += 1
            time.sleep(0.2)


def run_raters(
    base: str,
    specs: list[RaterSpec],
    items: list[str],
    seconds: float,
    options: LoadOptions | None = None,
    seed: int = 7,
    during: Callable[[list[SimulatedRater]], None] | None = None,
) -> tuple[list[SimulatedRater], Stats]:
    """Run every rater in a thread for ``seconds``; ``during`` runs meanwhile (e.g. a kill)."""
    options = options or LoadOptions()
    raters = [SimulatedRater(base, s, items, options, seed * 1000 + i) for i, s in enumerate(specs)]
    prepare_all(raters, options)
    run_prepared(raters, seconds, during)
    total = Stats()
    for rater in raters:
        total.merge(rater.stats)
    return raters, total


def run_prepared(
    raters: list[SimulatedRater],
    seconds: float,
    during: Callable[[list[SimulatedRater]], None] | None = None,
) -> None:
    """Run raters that are logged in (``prepare_all``), each in a thread, for ``seconds``.

    Their stats go on from where they stand: a rater can run several times.
    """
    deadline = time.monotonic() + seconds
    threads = _start_threads([(r.run, deadline) for r in raters])
    if during is not None:
        during(raters)
    settle = max((r.options.settle for r in raters), default=0.0)
    for thread in threads:
        thread.join(seconds + settle + 60)


def prepare_all(raters: list[SimulatedRater], options: LoadOptions) -> None:
    """Every rater logs in and opens its page, all at once (before the timed load)."""
    _in_threads([(r.prepare, time.monotonic() + options.settle) for r in raters], options.settle)


def _start_threads(calls: list[tuple[Callable[[float], None], float]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=f, args=(arg,), daemon=True) for f, arg in calls]
    for thread in threads:
        thread.start()
    return threads


def _in_threads(calls: list[tuple[Callable[[float], None], float]], limit: float) -> None:
    for thread in _start_threads(calls):
        thread.join(limit + 60)


# --- checking the database ------------------------------------------------------------------


@contextmanager
def database(database_url: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass
class Verification:
    checked_scores: int = 0
    checked_notes: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong)

    def summary(self) -> str:
        return (
            f"{self.checked_scores} scores and {self.checked_notes} notes checked: "
            f"{len(self.lost)} lost, {len(self.duplicated)} duplicated, {len(self.wrong)} wrong"
        )


def stored_state(engine: Engine) -> tuple[dict, dict, dict]:
    """(rating_id, item) -> [scores]; (rating_id, client_id) -> [notes]; rating_id -> version."""
    scores: dict[tuple[int, str], list[int]] = {}
    notes: dict[tuple[int, str], list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for rating_id, item, score in conn.execute(
            text("SELECT rating_id, item_code, score FROM item_scores")
        ):
            scores.setdefault((rating_id, item), []).append(score)
        for rating_id, cid, seconds, note in conn.execute(
            text("SELECT rating_id, client_id, audio_seconds, text FROM notes")
        ):
            notes.setdefault((rating_id, cid), []).append({"seconds": seconds, "text": note})
        versions = dict(conn.execute(text("SELECT id, version FROM ratings")).all())
    return scores, notes, versions


def verify(
    database_url: str, raters: list[SimulatedRater], allow_in_flight: bool = False
) -> Verification:
    """Every acknowledged value is stored exactly once, and nothing else is.

    With ``allow_in_flight`` (the server was killed mid-request) a field may instead hold the
    value of the batch that was in flight, which the server may have stored before it died.
    """
    with database(database_url) as engine:
        scores, notes, versions = stored_state(engine)
    result = Verification()
    for rater in raters:
        acked_scores, acked_notes, in_flight = rater.snapshot()
        pending = in_flight if allow_in_flight else []
        _check_rating(result, rater.spec, scores, notes, acked_scores, acked_notes, pending)
        if not allow_in_flight and versions.get(rater.spec.rating_id) != rater.version:
            stored = versions.get(rater.spec.rating_id)
            result.wrong.append(f"{rater.spec.username}: version {stored}, acked {rater.version}")
    return result


def _check_rating(result, spec, scores, notes, acked_scores, acked_notes, pending) -> None:
    rid, who = spec.rating_id, spec.username
    maybe_score = {c["item"]: c["value"] for c in pending if c["op"] == "score"}
    maybe_note = {c["client_id"]: c for c in pending if c["op"] == "note.put"}
    for (rating_id, item), values in scores.items():
        if rating_id != rid:
            continue
        if len(values) > 1:
            result.duplicated.append(f"{who}: {item} stored {len(values)} times")
        if item not in acked_scores and values[0] != maybe_score.get(item):
            result.wrong.append(f"{who}: {item}={values[0]} was never acknowledged")
    for item, value in acked_scores.items():
        result.checked_scores += 1
        stored = scores.get((rid, item))
        if stored is None:
            result.lost.append(f"{who}: {item}={value} acknowledged, not stored")
        elif stored[0] not in (value, maybe_score.get(item, value)):
            result.wrong.append(f"{who}: {item}={stored[0]}, last acknowledged {value}")
    for (rating_id, cid), rows in notes.items():
        if rating_id != rid:
            continue
        if len(rows) > 1:
            result.duplicated.append(f"{who}: note {cid} stored {len(rows)} times")
        if cid not in acked_notes and cid not in maybe_note:
            result.wrong.append(f"{who}: note {cid} was never acknowledged")
    for cid, note in acked_notes.items():
        result.checked_notes += 1
        rows = notes.get((rid, cid))
        if not rows:
            result.lost.append(f"{who}: note {cid} acknowledged, not stored")
        elif not any(_same_note(rows[0], n) for n in (note, maybe_note.get(cid, note))):
            result.wrong.append(f"{who}: note {cid} is {rows[0]}, last acknowledged {note}")


def _same_note(stored: dict[str, Any], sent: dict[str, Any]) -> bool:
    return abs(stored["seconds"] - sent["seconds"]) < 0.005 and stored["text"] == sent["text"]


def consistency_problems(database_url: str) -> list[str]:
    """Database-level consistency: SQLite's integrity check, and the constraints hold."""
    problems = []
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as conn:
            problems += [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            problems += [f"foreign key: {r}" for r in conn.execute("PRAGMA foreign_key_check")]
        conn.close()
    checks = {
        "score out of range": "SELECT count(*) FROM item_scores WHERE score < 0 OR score > 4",
        "score twice": "SELECT count(*) FROM (SELECT 1 FROM item_scores "
        "GROUP BY rating_id, item_code HAVING count(*) > 1) AS d",
        "note twice": "SELECT count(*) FROM (SELECT 1 FROM notes WHERE client_id IS NOT NULL "
        "GROUP BY rating_id, client_id HAVING count(*) > 1) AS d",
        "orphan score": "SELECT count(*) FROM item_scores s LEFT JOIN ratings r "
        "ON r.id = s.rating_id WHERE r.id IS NULL",
        "orphan note": "SELECT count(*) FROM notes n LEFT JOIN ratings r "
        "ON r.id = n.rating_id WHERE r.id IS NULL",
    }
    with database(database_url) as engine, engine.connect() as conn:
        for name, query in checks.items():
            count = conn.execute(text(query)).scalar()
            if count:
                problems.append(f"{name}: {count} rows")
    return problems


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def describe(stats: Stats, result: Verification | None = None) -> str:
    p95 = percentile(stats.save_latencies, 95) * 1000
    line = (
        f"{stats.acknowledged} batches acknowledged ({stats.resent} resent, {stats.abandoned} "
        f"abandoned, {stats.late} late copies, {stats.retried} retries), autosave p95 "
        f"{p95:.0f} ms, "
        f"statuses {dict(stats.statuses)}"
    )
    return line if result is None else f"{line}; {result.summary()}"
