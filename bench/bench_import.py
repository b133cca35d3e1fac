"""Speed and memory of ``rater sessions import`` and ``rater ratings import`` on both engines.

Run: ``python bench/bench_import.py [--rows N] [--engines sqlite,postgresql]``: a sessions
file of N sessions and a ratings file of N item scores (default 200,000; ``--rows 1000000`` for
the full size, whose goal is under 2 minutes for the ratings on each engine). The files are
shaped like a real study: ten sessions per patient, 40 therapists; whole ratings of GHES and
StHAR (15 items each), two raters per session (purposes left open: the first becomes main, the
second double), one timestamp per rating.

Each step runs in a subprocess of its own, so that its peak resident memory (``ru_maxrss``,
which counts the drivers' and SQLite's C allocations too) belongs to that step alone:

1. ``sessions``: builds the database (schema, instruments, two raters) and imports the
   sessions file with ``import_sessions``, committing once, as the command does;
2. ``ratings``: imports the ratings file with ``import_ratings`` into that database;
3. ``baseline``: the same rows of both files, as parsed by ``csv.reader``, inserted with a
   plain executemany INSERT (SQLAlchemy Core, one statement per row as the driver runs it) into
   a bare table of the files' columns: no checks, no lookups, no constraints, no audit.

Printed per engine and file: rows, seconds, rows/s, the ratio import / baseline (rows/s), the
peak RSS of the import's process and how much it grew during the import (peak minus the RSS
before it, when the file was already in memory).

PostgreSQL: a database ``rater_bench_<pid>_<random>`` is created on 127.0.0.1:5432 and dropped
at the end (``--postgres-server`` to use another server). SQLite: a file in a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

GOAL_SECONDS = 120
ITEMS_PER_RATING = 15  # GHES 7 + StHAR 8
RATERS = ("bench_r1", "bench_r2")


# --- the files ---------------------------------------------------------------------------


def sizes(rows: int) -> tuple[int, int]:
    """(ratings, sessions) of files of ``rows`` rows each (the ratings need fewer sessions)."""
    return max(2, rows // ITEMS_PER_RATING), max(1, rows)


def sessions_csv(n_sessions: int) -> bytes:
    out = io.StringIO()
    out.write("session_id,patient,therapist,session_number,recorded_on,phq9\n")
    start = datetime(2024, 1, 1)
    for s in range(n_sessions):
        patient, number = s // 10, s % 10 + 1
        day = (start + timedelta(days=s % 300)).date().isoformat()
        out.write(f"P{patient:06d}-S{number:02d},P{patient:06d},T{patient % 40},{number},")
        out.write(f"{day},{(s * 7) % 28}\n")
    return out.getvalue().encode()


def ratings_csv(n_ratings: int) -> bytes:
    from rater.instruments import load_instruments

    items = [
        (instrument.code, item.code)
        for instrument in load_instruments(PROJECT_ROOT / "instruments")
        for item in instrument.items
    ]
    out = io.StringIO()
    out.write("session_id,rater,instrument,item,score,submitted_at\n")
    start = datetime(2024, 3, 1, 9)
    for r in range(n_ratings):
        s = r // 2
        prefix = f"P{s // 10:06d}-S{s % 10 + 1:02d},{RATERS[r % 2]},"
        stamp = (start + timedelta(minutes=r)).isoformat()
        for k, (instrument, item) in enumerate(items):
            out.write(f"{prefix}{instrument},{item},{(r + k) % 5},{stamp}\n")
    return out.getvalue().encode()


# --- the steps (each in its own process) --------------------------------------------------


def rss_now_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@contextmanager
def app_context(database_url: str):
    from rater import create_app
    from rater.config import TestConfig

    config = TestConfig(database_url)
    config.RATER_INSTRUMENTS_DIR = str(PROJECT_ROOT / "instruments")
    config.RATER_AUDIO_DIR = str(PROJECT_ROOT / "audio")
    app = create_app(config)
    with app.app_context():
        yield


def step_sessions(database_url: str, rows: int) -> dict:
    from werkzeug.security import generate_password_hash

    from rater.auth.models import User
    from rater.cli import upgrade_schema
    from rater.extensions import db
    from rater.study.catalogue import import_sessions
    from rater.study.instrument_store import sync_instruments

    with app_context(database_url):
        upgrade_schema()
        sync_instruments()
        cheap = generate_password_hash("bench-password", method="pbkdf2:sha256:1")
        for name in RATERS:
            db.session.add(User(username=name, role="rater", active=True, password_hash=cheap))
        db.session.commit()
        data = sessions_csv(sizes(rows)[1])
        return timed(lambda: import_sessions(data, "sessions.csv", PROJECT_ROOT / "audio"))


def step_ratings(database_url: str, rows: int) -> dict:
    from rater.rating.importer import import_ratings

    with app_context(database_url):
        data = ratings_csv(sizes(rows)[0])
        return timed(lambda: import_ratings(data, "ratings.csv"))


def timed(run) -> dict:
    """Run one import and commit it, as the command does; its time and memory."""
    from rater.extensions import db

    gc.collect()
    before = rss_now_kb()
    start = time.perf_counter()
    result = run()
    db.session.commit()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_kb": peak_rss_kb(), "growth_kb": peak_rss_kb() - before,
            "result": {k: v for k, v in vars(result).items() if isinstance(v, int)}}  # fmt: skip


def step_baseline(database_url: str, rows: int) -> dict:
    """Plain executemany INSERTs of the files' rows into bare tables; seconds of each."""
    from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, insert

    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    n_ratings, n_sessions = sizes(rows)
    seconds = {}
    for name, data in (
        ("sessions", sessions_csv(n_sessions)),
        ("ratings", ratings_csv(n_ratings)),
    ):
        reader = csv.reader(io.StringIO(data.decode()))
        header = next(reader)
        table = Table(
            f"bench_plain_{name}",
            MetaData(),
            Column("id", Integer, primary_key=True),
            *(Column(c, Text) for c in header),
        )
        table.create(engine)
        records = [dict(zip(header, row, strict=True)) for row in reader]
        start = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(insert(table), records)
        seconds[name] = time.perf_counter() - start
        table.drop(engine)
    engine.dispose()
    return seconds


STEPS = {"sessions": step_sessions, "ratings": step_ratings, "baseline": step_baseline}


def run_step(step: str, database_url: str, rows: int) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--step", step, database_url, str(rows)],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- the report ---------------------------------------------------------------------------


def bench_engine(engine: str, database_url: str, rows: int) -> None:
    n_ratings, n_sessions = sizes(rows)
    print(f"\n== {engine}: {n_sessions:,} sessions, {n_ratings:,} ratings, "
          f"{n_ratings * ITEMS_PER_RATING:,} scores")  # fmt: skip
    sessions = run_step("sessions", database_url, rows)
    ratings = run_step("ratings", database_url, rows)
    baseline = run_step("baseline", database_url, rows)
    print(f"  {'file':9} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'plain rows/s':>12} "
          f"{'ratio':>6} {'peak RSS':>9} {'growth':>8}")  # fmt: skip
    for name, step, count in (
        ("sessions", sessions, n_sessions),
        ("ratings", ratings, n_ratings * ITEMS_PER_RATING),
    ):
        rate, plain = count / step["seconds"], count / baseline[name]
        print(
            f"  {name:9} {count:>10,} {step['seconds']:>8.1f} {rate:>9,.0f} {plain:>12,.0f} "
            f"{rate / plain:>6.2f} {step['peak_kb'] / 1024:>7.0f}MB "
            f"{step['growth_kb'] / 1024:>6.0f}MB"
        )
    total = ratings["seconds"]
    verdict = "met" if total < GOAL_SECONDS else "missed"
    print(f"  ratings import: {total:.1f} s for {n_ratings * ITEMS_PER_RATING:,} scores "
          f"(goal for 1,000,000: < {GOAL_SECONDS} s; {verdict} at this size)")  # fmt: skip
    print(f"  results: sessions {sessions['result']}, ratings {ratings['result']}")


def main() -> None:
    if sys.argv[1:2] == ["--step"]:
        step, database_url, rows = sys.argv[2], sys.argv[3], int(sys.argv[4])
        print(json.dumps(STEPS[step](database_url, rows)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-server", default="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for engine in args.engines.split(","):
        if engine == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                bench_engine(engine, f"sqlite:///{folder}/bench.sqlite", args.rows)
        else:
            from tests.support.databases import scratch_postgres_database

            with scratch_postgres_database(args.postgres_server, prefix="rater_bench") as url:
                bench_engine(engine, url, args.rows)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
