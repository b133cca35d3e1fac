"""Autosave under load on SQLite and PostgreSQL, against a bare Flask insert as the ceiling.

Run: ``python bench/bench_load.py`` (``--seconds 60`` per engine by default; ``--engines
sqlite`` or ``postgresql`` for one). For each engine it builds a study of 50 raters, starts
``rater serve`` (gunicorn, 2 workers x 4 threads) on a free loopback port and runs the
simulated raters of tests/load/simulation.py:

* paced: each rater pauses 0.5-1.5 s between saves (about what the rating page sends while
  a rater keeps clicking; its debounce is 0.6-1.8 s) and reloads its page now and then, for
  ``--seconds``;
* saturated: autosave alone with no pause at all (the throughput this machine allows).

The same client load goes to two reference endpoints served by the same gunicorn settings,
the three servers running side by side in the same run:

* the bare insert: a Flask app with one endpoint doing one INSERT and commit, no login, no
  session, no CSRF: the ceiling on this machine;
* the logged-in insert: the real app plus one endpoint that loads the logged-in user, checks the
  CSRF token and does one INSERT: what the app's framework costs before any autosave work.

Paced, each reference runs for half of ``--seconds``. Saturated, the three take turns in
``--rounds`` rounds (the order rotating each round), each turn lasting half of ``--seconds``
divided by the rounds. A machine whose speed drifts during a run (a shared host's does) then
slows all three alike, and each round's ratio compares loads measured seconds apart, not
minutes apart.

Printed per engine: throughput and p50/p95/p99 latency of autosave, of the rating page and of
both references; the throughput ratios autosave / bare, autosave / logged-in insert and
logged-in insert / bare, as the median of the rounds (each round's shown too) and over all
rounds together; and the lost / duplicated / wrong saves found afterwards (must be 0). The
rating page's first open, when all raters open it at the same moment, is shown on its own.

PostgreSQL: a database ``rater_bench_<pid>_<random>`` is created on 127.0.0.1:5432 and dropped
at the end (``--postgres-server`` to use another server).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from tests.load import simulation as sim  # noqa: E402
from tests.support.databases import scratch_postgres_database  # noqa: E402

PACED = (0.5, 1.5)
SATURATED = (0.0, 0.0)
# What both reference endpoints receive: the size of a one-score autosave batch.
REFERENCE_BODY = {"base_version": 1, "changes": [{"op": "score", "item": "GHES_1", "value": 3}]}
BARE_TABLE = "CREATE TABLE bench_bare (id INTEGER PRIMARY KEY, rater VARCHAR(80), body TEXT)"
BARE_TABLE_PG = "CREATE TABLE bench_bare (id SERIAL PRIMARY KEY, rater VARCHAR(80), body TEXT)"


# --- the bare endpoint -------------------------------------------------------------------------


def bare_app(database_url: str):
    """A Flask app with one endpoint that inserts one row and commits (same engine settings)."""
    import json

    from flask import Flask, jsonify, request

    import rater.db_setup  # noqa: F401  (the same SQLite pragmas: WAL, busy timeout)

    app = Flask("bare")
    connect_args = {"timeout": 30} if database_url.startswith("sqlite") else {}
    engine = create_engine(
        sim.sqlalchemy_url(database_url), pool_pre_ping=True, connect_args=connect_args
    )
    insert = text("INSERT INTO bench_bare (rater, body) VALUES (:rater, :body)")

    @app.post("/bare/<rater>")
    def bare(rater: str):
        payload = request.get_json()
        with engine.begin() as conn:
            conn.execute(insert, {"rater": rater, "body": json.dumps(payload)})
        return jsonify(ok=True)

    return app


def serve_bare(port: int, workers: int, threads: int) -> None:
    from rater.serve import RaterServer, gunicorn_options

    url = os.environ["DATABASE_URL"]
    RaterServer(lambda: bare_app(url), gunicorn_options("127.0.0.1", port, workers, threads)).run()


def client_load(
    n: int, seconds: float, think: tuple[float, float], post: Callable[[int], requests.Response]
) -> list[float]:
    """n clients calling ``post(index)`` until the deadline; latencies of the 200 answers."""
    latencies: list[list[float]] = [[] for _ in range(n)]
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = post(index)
            except requests.RequestException:
                continue
            if response.status_code == 200:
                latencies[index].append(time.perf_counter() - started)
            if think[1] > 0:
                time.sleep(rng.uniform(*think))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return [x for values in latencies for x in values]


Load = Callable[[float, tuple[float, float]], list[float]]  # (seconds, pause) -> latencies


def bare_load(base: str, n: int) -> Load:
    """n clients posting autosave-sized batches to the bare endpoint."""
    sessions = [requests.Session() for _ in range(n)]

    def post(index: int) -> requests.Response:
        return sessions[index].post(f"{base}/bare/r{index}", json=REFERENCE_BODY, timeout=10)

    return lambda seconds, think: client_load(n, seconds, think, post)


# --- the app's floor: a logged-in, CSRF-checked insert ------------------------------------------


def floor_app():
    """The real app plus one endpoint: a logged-in user's CSRF-checked POST doing one INSERT.

    What the app's framework costs (session cookie, user loader, CSRF check, idle clock,
    security headers) before any autosave work: the floor for any authenticated save.
    """
    import json

    from flask import jsonify, request
    from flask_login import current_user

    from rater import create_app
    from rater.config import Config
    from rater.extensions import db

    app = create_app(Config())
    insert = text("INSERT INTO bench_bare (rater, body) VALUES (:rater, :body)")

    @app.post("/bench/floor")
    def floor():
        if not current_user.is_authenticated:
            return jsonify(error="log in"), 401
        body = json.dumps(request.get_json())
        db.session.execute(insert, {"rater": current_user.username, "body": body})
        db.session.commit()
        return jsonify(ok=True)

    return app


def serve_floor(port: int, workers: int, threads: int) -> None:
    from rater.serve import RaterServer, gunicorn_options

    RaterServer(floor_app, gunicorn_options("127.0.0.1", port, workers, threads)).run()


def floor_load(base: str, specs: list[sim.RaterSpec]) -> Load:
    """The simulated raters, logged in, posting autosave-sized batches to the floor endpoint."""
    options = sim.LoadOptions()
    raters = [sim.SimulatedRater(base, spec, [], options, i) for i, spec in enumerate(specs)]
    sim.prepare_all(raters, options)

    def post(index: int) -> requests.Response:
        rater = raters[index]
        headers = {"X-CSRFToken": rater.csrf, "Accept": "application/json"}
        return rater.http.post(
            f"{base}/bench/floor", json=REFERENCE_BODY, headers=headers, timeout=10
        )

    return lambda seconds, think: client_load(len(raters), seconds, think, post)


def autosave_load(
    base: str, specs: list[sim.RaterSpec], items: list[str], options: sim.LoadOptions
) -> tuple[Load, list[sim.SimulatedRater]]:
    """The simulated raters (logged in once), autosaving with ``options``' pauses."""
    raters = [sim.SimulatedRater(base, s, items, options, 11_000 + i) for i, s in enumerate(specs)]
    sim.prepare_all(raters, options)

    def run(seconds: float, _think: tuple[float, float]) -> list[float]:
        done = [len(r.stats.save_latencies) for r in raters]
        sim.run_prepared(raters, seconds)
        return [x for r, n in zip(raters, done, strict=True) for x in r.stats.save_latencies[n:]]

    return run, raters


# --- databases ---------------------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="rater-bench-") as folder:
        yield f"sqlite:///{folder}/bench.sqlite"


def postgres_database(server: str):
    return scratch_postgres_database(server, prefix="rater_bench")


def prepare(database_url: str, n_raters: int) -> tuple[list[sim.RaterSpec], list[str]]:
    """Schema through the migrations, the study, and the bare endpoint's table."""
    from rater import create_app
    from rater.cli import upgrade_schema
    from rater.config import TestConfig
    from rater.extensions import db

    app = create_app(TestConfig(database_url))
    with app.app_context():
        upgrade_schema()
        specs, items = sim.build_study(n_raters), sim.item_codes()
        postgres = db.engine.dialect.name == "postgresql"
        db.session.execute(text(BARE_TABLE_PG if postgres else BARE_TABLE))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return specs, items


# --- one engine --------------------------------------------------------------------------------


def row(what: str, latencies: list[float], seconds: float | None) -> str:
    ms = [sim.percentile(latencies, q) * 1000 for q in (50, 95, 99)]
    rate = f"{len(latencies) / seconds:>8.1f}/s" if seconds else f"{'':>10}"
    return f"  {what:<38} {len(latencies):>7} {rate} {ms[0]:>8.1f} {ms[1]:>8.1f} {ms[2]:>8.1f}"


def reference_server(database_url: str, flag: str, args: argparse.Namespace) -> sim.Server:
    """A reference endpoint served with the app's gunicorn settings."""
    command = [sys.executable, __file__, flag, "--workers", str(args.workers)]
    command += ["--threads", str(args.threads), "--port"]
    return sim.Server(database_url, command=lambda port: [*command, str(port)])


Turns = list[tuple[list[float], float]]  # (latencies, seconds) of each turn


def saturated_rounds(loads: dict[str, Load], rounds: int, seconds: float) -> dict[str, Turns]:
    """Each load for ``seconds`` with no pause, in turn, ``rounds`` times (order rotating)."""
    names = list(loads)
    turns: dict[str, Turns] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.monotonic()
            latencies = loads[name](seconds, SATURATED)
            turns[name].append((latencies, time.monotonic() - started))
    return turns


def pooled(turns: Turns) -> tuple[list[float], float]:
    return [x for latencies, _ in turns for x in latencies], sum(s for _, s in turns)


def ratios(top: Turns, bottom: Turns) -> tuple[float, list[float], float]:
    """Throughput ratio: the median of the rounds, each round's, and over all rounds."""
    each = [(len(a) / sa) / (len(b) / sb) for (a, sa), (b, sb) in zip(top, bottom, strict=True)]
    (a, sa), (b, sb) = pooled(top), pooled(bottom)
    return statistics.median(each), each, (len(a) / sa) / (len(b) / sb)


def print_ratio(what: str, top: Turns, bottom: Turns) -> float:
    median, each, overall = ratios(top, bottom)
    rounds = " ".join(f"{r:.2f}" for r in each)
    print(f"  {what}: {median:.2f} (median of rounds: {rounds}; all rounds together {overall:.2f})")
    return median


def bench_engine(engine: str, database_url: str, args: argparse.Namespace) -> dict[str, float]:
    specs, items = prepare(database_url, args.raters)
    half = args.seconds / 2
    paced = sim.LoadOptions(think=PACED, abandon=0.0, resend=0.0, late=0.0, page=0.05)
    # Saturated: autosave alone, like the reference endpoints (the paced run has the page loads).
    saturated = sim.LoadOptions(think=SATURATED, abandon=0.0, resend=0.0, late=0.0, page=0.0)
    with (
        sim.Server(database_url, workers=args.workers, threads=args.threads) as server,
        reference_server(database_url, "--serve-bare", args) as bare_server,
        reference_server(database_url, "--serve-floor", args) as floor_server,
    ):
        raters, slow = sim.run_raters(server.url, specs, items, args.seconds, paced)
        bare, floor = bare_load(bare_server.url, args.raters), floor_load(floor_server.url, specs)
        bare_slow, floor_slow = bare(half, PACED), floor(half, PACED)
        autosave, more = autosave_load(server.url, specs, items, saturated)
        loads = {"autosave": autosave, "floor": floor, "bare": bare}
        turns = saturated_rounds(loads, args.rounds, half / args.rounds)
        errors = server.errors()
    # The second run's raters continue the first run's ratings: check against the latest.
    result = sim.verify(database_url, more)
    turn = half / args.rounds
    print(f"\n{engine}: {args.raters} raters, {args.workers} workers x {args.threads} threads")
    print(f"  {'':<38} {'requests':>7} {'rate':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    print(row(f"autosave, paced ({args.seconds:g} s)", slow.save_latencies, args.seconds))
    print(row("rating page GET, paced", slow.page_latencies, args.seconds))
    print(row("logged-in insert in the app, paced", floor_slow, half))
    print(row("bare insert, paced", bare_slow, half))
    print(f"  saturated, in turns: {args.rounds} rounds of {turn:g} s each")
    print(row("autosave, saturated", *pooled(turns["autosave"])))
    print(row("logged-in insert in the app, saturated", *pooled(turns["floor"])))
    print(row("bare insert, saturated", *pooled(turns["bare"])))
    print(row("rating page GET, first open (all at once)", slow.first_page_latencies, None))
    ratio = print_ratio("autosave / bare insert throughput", turns["autosave"], turns["bare"])
    print_ratio("autosave / logged-in insert in the app", turns["autosave"], turns["floor"])
    print_ratio("logged-in insert in the app / bare insert", turns["floor"], turns["bare"])
    problems = [p for r in raters + more for p in r.problems] + errors
    print(f"  after the runs: {result.summary()}; {len(problems)} client or server problems")
    for problem in problems[:10]:
        print(f"    {problem.rstrip()}")
    return {
        "p95_paced_ms": sim.percentile(slow.save_latencies, 95) * 1000,
        "ratio": ratio,
        "bad": len(result.lost) + len(result.duplicated) + len(result.wrong) + len(problems),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="paced run per engine")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6, help="saturated turns per load")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-server", default="postgresql://postgres@127.0.0.1:5432/test",
        help="server (and an existing database to connect to) for CREATE/DROP DATABASE",
    )  # fmt: skip
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.port, args.workers, args.threads)
        return
    if args.serve_floor:
        serve_floor(args.port, args.workers, args.threads)
        return
    print(f"bench_load: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    outcomes = {}
    for engine in args.engines.split(","):
        database = (
            sqlite_database() if engine == "sqlite" else postgres_database(args.postgres_server)
        )
        with database as url:
            outcomes[engine] = bench_engine(engine, url, args)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    if "postgresql" in outcomes:
        pg = outcomes["postgresql"]
        print(
            f"goal on PostgreSQL: p95 autosave < 100 ms (measured {pg['p95_paced_ms']:.0f} ms), "
            f"throughput >= 0.4 x bare insert (measured {pg['ratio']:.2f}, median of the rounds)"
        )
    if any(o["bad"] for o in outcomes.values()):
        sys.exit("lost, duplicated or wrong saves, or client/server problems: see above")


if __name__ == "__main__":
    main()
