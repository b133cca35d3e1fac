"""Autosave under load on SQLite and PostgreSQL, against a bare Flask insert as the ceiling.

Run: ``python bench/bench_load.py`` (``--seconds 60`` per engine by default; ``--engines
sqlite`` or ``postgresql`` for one). For each engine it builds a study of 50 raters, starts
``rater serve`` (gunicorn, 2 workers x 4 threads) on a free loopback port and runs the
simulated raters of tests/load/simulation.py:

* paced: each rater pauses 0.5-1.5 s between saves (about what the rating page sends while
  a rater keeps clicking; its debounce is 0.6-1.8 s) for ``--seconds``;
* saturated: no pause at all, for half of ``--seconds`` (the throughput this machine allows).

Then the same client load (same threads, same pauses) is sent for half of ``--seconds`` each to
a bare Flask endpoint doing one INSERT and commit, served by the same gunicorn settings: the
ceiling on this machine, measured in the same run. Printed per engine: throughput and
p50/p95/p99 latency of autosave and of the rating page, the ratio of autosave to the bare
endpoint, and the lost / duplicated / wrong saves found afterwards (must be 0).

PostgreSQL: a database ``rater_bench_<pid>_<random>`` is created on 127.0.0.1:5432 and dropped
at the end (``--postgres-server`` to use another server).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
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


def bare_load(base: str, n: int, seconds: float, think: tuple[float, float]) -> list[float]:
    """n clients posting autosave-sized batches to the bare endpoint; latencies of 200s."""
    latencies: list[list[float]] = [[] for _ in range(n)]
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        rng, http = random.Random(index), requests.Session()
        body = {"base_version": 1, "changes": [{"op": "score", "item": "GHES_1", "value": 3}]}
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = http.post(f"{base}/bare/r{index}", json=body, timeout=10)
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


def row(what: str, latencies: list[float], seconds: float) -> str:
    ms = [sim.percentile(latencies, q) * 1000 for q in (50, 95, 99)]
    return (
        f"  {what:<34} {len(latencies):>7} {len(latencies) / seconds:>8.1f}/s "
        f"{ms[0]:>8.1f} {ms[1]:>8.1f} {ms[2]:>8.1f}"
    )


def bench_engine(engine: str, database_url: str, args: argparse.Namespace) -> dict[str, float]:
    specs, items = prepare(database_url, args.raters)
    half = args.seconds / 2
    paced = sim.LoadOptions(think=PACED, abandon=0.0, resend=0.0, late=0.0, page=0.05)
    saturated = sim.LoadOptions(think=SATURATED, abandon=0.0, resend=0.0, late=0.0, page=0.05)
    with sim.Server(database_url, workers=args.workers, threads=args.threads) as server:
        raters, slow = sim.run_raters(server.url, specs, items, args.seconds, paced)
        more, fast = sim.run_raters(server.url, specs, items, half, saturated, seed=11)
        errors = server.errors()
    # The second run's raters continue the first run's ratings: check against the latest.
    result = sim.verify(database_url, more)
    command = [sys.executable, __file__, "--serve-bare", "--workers", str(args.workers)]
    command += ["--threads", str(args.threads), "--port"]
    with sim.Server(database_url, command=lambda port: [*command, str(port)]) as bare:
        bare_slow = bare_load(bare.url, args.raters, half, PACED)
        bare_fast = bare_load(bare.url, args.raters, half, SATURATED)
    print(f"\n{engine}: {args.raters} raters, {args.workers} workers x {args.threads} threads")
    print(f"  {'':<34} {'requests':>7} {'rate':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    print(row(f"autosave, paced ({args.seconds:g} s)", slow.save_latencies, args.seconds))
    print(row("rating page GET, paced", slow.page_latencies, args.seconds))
    print(row("bare insert, paced", bare_slow, half))
    print(row(f"autosave, saturated ({half:g} s)", fast.save_latencies, half))
    print(row("rating page GET, saturated", fast.page_latencies, half))
    print(row("bare insert, saturated", bare_fast, half))
    throughput = len(fast.save_latencies) / half
    ceiling = len(bare_fast) / half
    print(f"  autosave throughput / bare insert throughput: {throughput / ceiling:.2f}")
    problems = [p for r in raters + more for p in r.problems] + errors
    print(f"  after the runs: {result.summary()}; {len(problems)} client or server problems")
    for problem in problems[:10]:
        print(f"    {problem.rstrip()}")
    return {
        "p95_paced_ms": sim.percentile(slow.save_latencies, 95) * 1000,
        "ratio": throughput / ceiling,
        "bad": len(result.lost) + len(result.duplicated) + len(result.wrong) + len(problems),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="paced run per engine")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-server", default="postgresql://postgres@127.0.0.1:5432/test",
        help="server (and an existing database to connect to) for CREATE/DROP DATABASE",
    )  # fmt: skip
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.port, args.workers, args.threads)
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
            f"throughput >= 0.5 x bare insert (measured {pg['ratio']:.2f})"
        )
    if any(o["bad"] for o in outcomes.values()):
        sys.exit("lost, duplicated or wrong saves, or client/server problems: see above")


if __name__ == "__main__":
    main()
