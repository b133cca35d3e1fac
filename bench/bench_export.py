"""Speed and memory of the export against pandas, in two parts, each side by side in one run.

Run: ``python bench/bench_export.py [n_scores]`` (default 1,000,000 item scores).

1. The writer alone: builds a ``long`` table shaped like a real study (15 items per rating,
   codes, a timestamp per rating) in memory, then writes it with
   ``rater.export.writer.write_csv`` (chunked, formula-neutralised, ISO dates, hashed) and with
   plain ``frame.to_csv(index=False)``; prints both times (best of 3) and the ratio (target: at
   most 1.5), and the peak of extra memory while writing (tracemalloc) for all rows and a
   quarter of them.
2. End to end from a database: SQLite files in a temporary folder holding ``n_scores`` and half
   as many item scores (bulk inserts). Each variant runs in its own subprocess, which reports
   its wall time and its peak resident memory above what it held before exporting
   (``ru_maxrss``, so SQLite's and pandas' C allocations count too):
   - ``stream``: the ``rater export long`` path (``service.export_file``: one ordered query,
     streamed chunk by chunk into the CSV writer);
   - ``pandas``: ``pd.read_sql`` of the same ordered query, then ``to_csv`` (the baseline);
   - ``frame``: the whole ratings frame in memory, then the writer (how ``long`` was built
     before it streamed).
   Bounded memory: the streaming peak stays about flat when the rows double; the others grow.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from rater.export import tables, writer
from rater.instruments import load_instruments

ROOT = Path(__file__).resolve().parent.parent


def long_table(n_scores: int, seed: int = 0) -> pd.DataFrame:
    """A long export of about ``n_scores`` item scores (whole ratings of GHES + StHAR)."""
    rng = np.random.default_rng(seed)
    items = [
        (i.code, item.code, item.subscale)
        for i in load_instruments(ROOT / "instruments")
        for item in i.items
    ]
    n_ratings = max(1, n_scores // len(items))
    rating = np.repeat(np.arange(n_ratings), len(items))
    session = rating // 2
    patient = session // 9
    frame = pd.DataFrame(
        {
            "session_id": pd.Series(
                [f"P{p:05d}-S{s % 9 + 1:02d}" for p, s in zip(patient, session, strict=True)]
            ),
            "patient": [f"P{p:05d}" for p in patient],
            "therapist": [f"T{p % 40 + 1}" for p in patient],
            "session_number": (session % 9 + 1).astype("int64"),
            "phase": np.where(session % 9 < 4, "I", "II").astype(object),
            "rater": [f"rater{r % 50 + 1}" for r in rating],
            "purpose": np.where(rating % 2 == 0, "main", "double").astype(object),
            "instrument": [items[k % len(items)][0] for k in range(len(rating))],
            "instrument_version": np.ones(len(rating), dtype="int64"),
            "item": [items[k % len(items)][1] for k in range(len(rating))],
            "subscale": [items[k % len(items)][2] for k in range(len(rating))],
            "score": rng.integers(0, 5, len(rating)).astype("int64"),
            "rating_status": "submitted",
            "submitted_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rating * 3607 + 0.25, unit="s"),
        }
    )
    return frame[[c.name for c in tables.LONG]]


def best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_while(action) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def writer_alone(n_scores: int) -> None:
    frame = long_table(n_scores)
    size = frame.memory_usage(deep=True).sum()
    print(f"long table: {len(frame):,} item scores, {size / 2**20:.0f} MiB in memory")
    with tempfile.TemporaryDirectory() as folder:
        ours_path, theirs_path = Path(folder) / "ours.csv", Path(folder) / "pandas.csv"

        def ours() -> None:
            with ours_path.open("wb") as target:
                writer.write_csv(frame, target)

        def theirs() -> None:
            frame.to_csv(theirs_path, index=False)

        t_pandas = best_of(3, theirs)
        t_ours = best_of(3, ours)
        print(
            f"pandas.to_csv:      {t_pandas:6.2f} s  ({theirs_path.stat().st_size / 2**20:.0f} MiB)"
        )
        print(f"rater write_csv:    {t_ours:6.2f} s  ({ours_path.stat().st_size / 2**20:.0f} MiB)")
        print(f"ratio rater/pandas: {t_ours / t_pandas:6.2f}  (target <= 1.5)")

        quarter = frame.iloc[: len(frame) // 4]

        def write_to_null(table: pd.DataFrame):
            return lambda: writer.write_csv(table, _Null())

        peak_full = peak_while(write_to_null(frame))
        peak_quarter = peak_while(write_to_null(quarter))
        peak_pandas = peak_while(lambda: frame.to_csv(io.StringIO(), index=False))
        print(f"peak extra memory, rater, all rows:     {peak_full / 2**20:7.1f} MiB")
        print(f"peak extra memory, rater, quarter rows: {peak_quarter / 2**20:7.1f} MiB")
        print(f"peak extra memory, pandas to a string:  {peak_pandas / 2**20:7.1f} MiB")
        print(f"bounded: {peak_full < 2 * peak_quarter + 16 * 2**20}")


# ---------------------------------------------------------------------------- end to end

RATERS = 50
ITEMS_PER_RATING = 15
BATCH = 100_000


def build_database(path: Path, n_scores: int) -> int:
    """A SQLite study with about ``n_scores`` submitted item scores; returns the exact count."""
    from sqlalchemy import insert

    from rater.auth.models import User
    from rater.rating.models import Assignment, ItemScore, Rating
    from rater.study.instrument_store import instrument_of, sync_instruments
    from rater.study.models import Patient, Therapist, TherapySession

    with app_for(path).app_context():
        from rater.cli import upgrade_schema
        from rater.extensions import db

        upgrade_schema()
        items = [(v.id, item.code) for v in sync_instruments() for item in instrument_of(v).items]
        n_ratings = max(1, n_scores // len(items))
        n_sessions = (n_ratings + 1) // 2
        now = datetime(2024, 1, 1)

        def rows(table, make, count: int) -> None:
            for start in range(0, count, BATCH):
                batch = [make(k) for k in range(start, min(count, start + BATCH))]
                db.session.execute(insert(table), batch)

        rows(Therapist, lambda k: {"id": k + 1, "code": f"T{k + 1}"}, 40)
        rows(User, lambda k: user_row(k, now), RATERS)
        rows(Patient, lambda k: {"id": k + 1, "code": f"P{k:05d}"}, n_sessions // 9 + 1)
        rows(TherapySession, lambda k: session_row(k), n_sessions)
        rows(Assignment, lambda k: assignment_row(k, now), n_ratings)
        rows(Rating, lambda k: rating_row(k, now), n_ratings)
        rows(ItemScore, lambda k: score_row(k, items, now), n_ratings * len(items))
        db.session.commit()
        db.engine.dispose()
    return n_ratings * len(items)


def user_row(k: int, now: datetime) -> dict:
    return {
        "id": k + 1,
        "username": f"rater{k + 1}",
        "password_hash": "-",
        "role": "rater",
        "active": True,
        "created_at": now,
    }


def session_row(k: int) -> dict:
    number = k % 9 + 1
    return {
        "id": k + 1,
        "code": f"P{k // 9:05d}-S{number:02d}",
        "patient_id": k // 9 + 1,
        "therapist_id": (k // 9) % 40 + 1,
        "session_number": number,
        "phase": "I" if number < 5 else "II",
        "status": "eligible",
    }


def assignment_row(k: int, now: datetime) -> dict:
    # two raters per session; (session, rater) pairs are unique
    rater = (k // 2 * 7 + k % 2 * 3) % RATERS + 1
    return {
        "id": k + 1,
        "session_id": k // 2 + 1,
        "rater_id": rater,
        "purpose": "main" if k % 2 == 0 else "double",
        "status": "submitted",
        "created_at": now,
    }


def rating_row(k: int, now: datetime) -> dict:
    return {
        "id": k + 1,
        "assignment_id": k + 1,
        "status": "submitted",
        "submitted_at": datetime(2024, 1, 1, k % 24, k % 60, k % 59, (k * 7919) % 1_000_000),
        "audio_position": 0.0,
        "active_seconds": 0.0,
        "cannot_rate": False,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def score_row(k: int, items: list[tuple[int, str]], now: datetime) -> dict:
    version_id, code = items[k % len(items)]
    return {
        "rating_id": k // len(items) + 1,
        "instrument_version_id": version_id,
        "item_code": code,
        "score": (k * 31 + k // 7) % 5,
        "updated_at": now,
    }


def app_for(path: Path):
    from rater import create_app
    from rater.config import TestConfig

    return create_app(TestConfig(f"sqlite:///{path}"))


def memory_kib(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak() -> None:
    """Start the peak (VmHWM) afresh, so imports and warm-up do not count (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def run_variant(variant: str, database: Path, output: Path) -> None:
    """In a subprocess: one export, then its time and peak memory as JSON on stdout."""
    import pandas as pd

    from rater.export import service, writer
    from rater.extensions import db
    from rater.rating.frame import count_ratings, ratings_frame, ratings_query

    with app_for(database).app_context():
        # warm up (imports, connection, statement caches) outside the measurement
        service.check("long", "csv", service.Options())
        count_ratings()
        pd.read_sql(ratings_query().limit(1), db.session.connection())
        reset_peak()
        before = memory_kib("VmRSS")
        start = time.perf_counter()
        if variant == "stream":
            service.export_file("long", output, service.Options())
        elif variant == "pandas":
            frame = pd.read_sql(ratings_query(), db.session.connection())
            frame.to_csv(output, index=False)
        else:
            with output.open("wb") as target:
                writer.write_csv(tables.long_table(ratings_frame()), target)
        seconds = time.perf_counter() - start
        peak = memory_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_mib": (peak - before) / 1024}))


def measure(variant: str, database: Path, output: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--variant", variant, str(database), str(output)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def end_to_end(n_scores: int, runs: int = 2) -> None:
    with tempfile.TemporaryDirectory() as folder:
        found: dict[int, dict[str, dict]] = {}
        for size in (n_scores // 2, n_scores):
            database = Path(folder) / f"study-{size}.sqlite"
            start = time.perf_counter()
            exact = build_database(database, size)
            built = time.perf_counter() - start
            print(f"\ndatabase: {exact:,} item scores, built in {built:.1f} s")
            found[size] = {}
            for variant in ("pandas", "stream", "frame"):
                output = Path(folder) / f"{variant}.csv"
                results = [measure(variant, database, output) for _ in range(runs)]
                best = min(results, key=lambda r: r["seconds"])
                best["peak_mib"] = max(r["peak_mib"] for r in results)
                found[size][variant] = best
                print(
                    f"  {variant:7s} {best['seconds']:6.2f} s  peak +{best['peak_mib']:7.1f} MiB"
                    f"  ({output.stat().st_size / 2**20:.0f} MiB file)"
                )
            ratio = found[size]["stream"]["seconds"] / found[size]["pandas"]["seconds"]
            print(f"  ratio rater export long / (pd.read_sql + to_csv): {ratio:.2f}")
        half, full = (found[n_scores // 2], found[n_scores])
        for variant in ("stream", "pandas", "frame"):
            growth = full[variant]["peak_mib"] / max(half[variant]["peak_mib"], 1e-9)
            print(f"peak memory x{growth:4.2f} when the rows double: {variant}")


def main() -> None:
    if sys.argv[1:2] == ["--variant"]:
        run_variant(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    n_scores = int(numbers[0]) if numbers else 1_000_000
    if "--end-to-end" not in sys.argv:
        print("== the writer alone, against pandas.to_csv of the same frame")
        writer_alone(n_scores)
    print("\n== end to end from a SQLite database, one subprocess per run")
    end_to_end(n_scores)


class _Null(io.RawIOBase):
    """A binary sink: memory is measured for the writer, not for keeping the output."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)


if __name__ == "__main__":
    main()
