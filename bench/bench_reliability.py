"""Speed of ``rater.reliability.report`` against a loop of pingouin over every pair and measure.

Run: ``python bench/bench_reliability.py [--sessions 2000] [--raters 10] [--no-dashboard]``.

1. A simulated study ten times the reference size (2,000 sessions, 10 raters, 40 %
   double-coded, GHES and StHAR, 3 calibration sessions; latent-trait model from
   ``report.simulated_frame``).  Times the full ``report()`` (per-pair ICCs and kappas,
   pair summaries, the REML design-wide coefficients with Monte-Carlo CIs, Krippendorff's
   alpha, calibration, internal consistency) against a baseline that only computes the
   per-pair ICCs by calling ``pingouin.intraclass_corr`` for every rater pair x measure.
   Checks that both give the same per-pair ICC(A,1) and ICC(A,2) to 1e-9 and prints the
   ratio baseline / report (the goal is >= 10).
2. The demo study's dashboard: builds the demo in a temporary SQLite database, logs in as the
   coordinator and times ``GET /reliability/`` (the goal is < 1 s).

BLAS is limited to one thread for both sides (tiny matrices; on a busy 2-core machine
OpenBLAS threads only add contention).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
from threadpoolctl import threadpool_limits

from rater.instruments import load_instruments
from rater.reliability.report import report
from rater.reliability.values import measure_values
from rater.states import Purpose
from tests.support.simulated import simulated_frame

ROOT = Path(__file__).resolve().parent.parent


def baseline(values: pd.DataFrame) -> pd.DataFrame:
    """Per-pair ICC(A,1) and ICC(A,2) with one pingouin call per rater pair x measure."""
    main = values[values["purpose"] != Purpose.CALIBRATION].dropna(subset=["value"])
    rows = []
    for (instrument, measure), group in main.groupby(["instrument", "measure"]):
        raters = sorted(group["rater"].unique())
        for i, r1 in enumerate(raters):
            for r2 in raters[i + 1 :]:
                both = group[group["rater"].isin([r1, r2])]
                shared = both.groupby("session_id")["rater"].transform("size") == 2
                both = both[shared]
                if both["session_id"].nunique() < 3:  # pingouin needs >= 5 values
                    continue
                table = pg.intraclass_corr(both, "session_id", "rater", "value").set_index("Type")
                rows.append(
                    (
                        instrument,
                        measure,
                        r1,
                        r2,
                        table.loc["ICC(A,1)", "ICC"],
                        table.loc["ICC(A,k)", "ICC"],
                    )
                )
    return pd.DataFrame(
        rows, columns=["instrument", "measure", "rater_1", "rater_2", "ICC(A,1)", "ICC(A,2)"]
    )


def compare(rep, base: pd.DataFrame) -> tuple[int, float]:
    """Number of pair values compared and the largest absolute difference."""
    ours = {
        (p.instrument, p.measure, p.rater_1, p.rater_2, name): p.coefficients[name]
        for p in rep.pairs
        for name in ("ICC(A,1)", "ICC(A,2)")
    }
    worst, compared = 0.0, 0
    for row in base.itertuples(index=False):
        for name, theirs in (("ICC(A,1)", row[4]), ("ICC(A,2)", row[5])):
            mine = ours[(row.instrument, row.measure, row.rater_1, row.rater_2, name)]
            if hasattr(mine, "value") and np.isfinite(theirs):
                worst = max(worst, abs(mine.value - theirs))
                compared += 1
    return compared, worst


def bench_report(n_sessions: int, n_raters: int) -> None:
    instruments = load_instruments(ROOT / "instruments")
    frame = simulated_frame(instruments, n_sessions=n_sessions, n_raters=n_raters, seed=7)
    print(
        f"study: {n_sessions} sessions, {n_raters} raters, 40 % double-coded, "
        f"{frame['rating_id'].nunique()} ratings, {len(frame)} item scores"
    )
    report(simulated_frame(instruments, n_sessions=100, seed=1), instruments)  # warm-up
    start = time.perf_counter()
    rep = report(frame, instruments)
    t_report = time.perf_counter() - start
    values = measure_values(frame, instruments)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = baseline(values)
    t_base = time.perf_counter() - start
    compared, worst = compare(rep, base)
    print(f"report():                  {t_report:8.2f} s  ({len(rep.pairs)} pair x measure rows)")
    print(f"baseline (pingouin loop):  {t_base:8.2f} s  ({len(base)} calls)")
    print(f"per-pair ICCs compared:    {compared}, max |difference| {worst:.2e}")
    print(f"ratio baseline / report:   {t_base / t_report:8.1f}x  (goal >= 10x)")
    if worst > 1e-9:
        raise SystemExit("per-pair ICCs differ from pingouin by more than 1e-9")


def bench_dashboard() -> None:
    from rater import create_app
    from rater.cli import transaction, upgrade_schema
    from rater.config import TestConfig
    from rater.demo import build_demo
    from rater.extensions import db

    with tempfile.TemporaryDirectory() as tmp:
        config = TestConfig(f"sqlite:///{tmp}/demo.sqlite")
        config.RATER_INSTRUMENTS_DIR = str(ROOT / "instruments")
        config.RATER_AUDIO_DIR = str(ROOT / "audio")
        app = create_app(config)
        with app.app_context():
            upgrade_schema()
            with transaction():
                build_demo()
            db.session.remove()
        client = app.test_client()
        client.post("/login", data={"username": "coordinator", "password": "demo-coordinator"})
        client.get("/reliability/")  # warm-up: template compilation, matplotlib fonts
        times, cpu = [], []
        for _ in range(5):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get("/reliability/")
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            assert response.status_code == 200, response.status_code
        print(
            f"demo dashboard GET /reliability/: wall best {min(times):.3f} s, "
            f"median {sorted(times)[2]:.3f} s; CPU best {min(cpu):.3f} s  (goal < 1 s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--raters", type=int, default=10)
    parser.add_argument("--no-dashboard", action="store_true")
    args = parser.parse_args()
    with threadpool_limits(limits=1):
        bench_report(args.sessions, args.raters)
        if not args.no_dashboard:
            bench_dashboard()


if __name__ == "__main__":
    main()
