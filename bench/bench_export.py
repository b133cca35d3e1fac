"""Speed and memory of the CSV export writer against ``pandas.DataFrame.to_csv``.

Run: ``python bench/bench_export.py [n_scores]`` (default 1,000,000 item scores). Builds a
``long`` table shaped like a real study (15 items per rating, codes, a timestamp per rating),
then, side by side in the same run, writes it with ``rater.export.writer.write_csv`` (chunked,
formula-neutralised, ISO dates, hashed) and with plain ``frame.to_csv(index=False)``; prints
both times (best of 3) and the ratio (target: at most 1.5). Then measures the peak of extra
memory while writing (tracemalloc) for the full table and for a quarter of it: a streaming
writer's peak does not grow with the number of rows.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
import tracemalloc
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


def main() -> None:
    n_scores = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
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


class _Null(io.RawIOBase):
    """A binary sink: memory is measured for the writer, not for keeping the output."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)


if __name__ == "__main__":
    main()
