"""Response times of every reliability page at real size, first request and cached ones.

Run from the project root: ``PYTHONPATH=. .venv/bin/python bench/bench_dashboard.py
[--sessions 2000] [--raters 10] [--repeat 5]``.

Builds a simulated study in a temporary SQLite database through the importers (the catalogue
and the ratings CSV; latent-trait model of ``tests.support.simulated``: 40 % double-coded,
GHES and StHAR, 3 calibration sessions rated by every rater), logs in as a coordinator and
times each reliability page: the first request after a change of the data (computes the report
for the data version) and the following ones (answered from the cache; the goal is < 100 ms).
Then it changes the data (a consensus score, which raises the data version) and times the first
request again, to show the change is seen.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from rater import create_app
from rater.cli import transaction, upgrade_schema
from rater.config import TestConfig
from rater.extensions import db
from rater.instruments import load_instruments
from tests.support.simulated import simulated_frame

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-coordinator-pw"
GOAL_SECONDS = 0.100


def pages(first_pair: tuple[str, str]) -> list[str]:
    r1, r2 = first_pair
    return [
        "/reliability/",
        "/reliability/instrument/GHES",
        "/reliability/instrument/StHAR",
        "/reliability/measure/GHES/GHES_score",
        "/reliability/plot/GHES/GHES_score/heatmap.svg",
        "/reliability/plot/GHES/GHES_score/drift.svg",
        f"/reliability/plot/GHES/GHES_score/bland-altman.svg?rater_1={r1}&rater_2={r2}",
        "/reliability/disagreements",
    ]


def build(n_sessions: int, n_raters: int) -> tuple[str, str]:
    """Import the simulated study; returns the first rater pair."""
    from rater.auth.service import add_user
    from rater.rating.importer import import_ratings
    from rater.study.catalogue import import_sessions
    from rater.study.instrument_store import sync_instruments

    frame = simulated_frame(
        load_instruments(ROOT / "instruments"), n_sessions=n_sessions, n_raters=n_raters, seed=7
    )
    sessions = frame.drop_duplicates("session_id")[
        ["session_id", "patient", "therapist", "session_number", "phase"]
    ].copy()
    # The simulation numbers every calibration session 9 (of one extra patient): number them
    # apart, as a catalogue must.
    calibration = frame[frame["purpose"] == "calibration"]["session_id"].unique()
    in_calibration = sessions["session_id"].isin(calibration)
    sessions.loc[in_calibration, "session_number"] = range(100, 100 + len(calibration))
    ratings = frame[["session_id", "rater", "instrument", "item", "score", "purpose"]].copy()
    ratings["submitted_at"] = frame["submitted_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    with transaction():
        sync_instruments()
        add_user("coord", "coordinator", PASSWORD)
        for rater in sorted(frame["rater"].unique()):
            add_user(rater, "rater", PASSWORD)
        import_sessions(_csv(sessions), "sessions.csv", str(ROOT / "audio"))
        import_ratings(_csv(ratings), "ratings.csv")
    print(
        f"study: {n_sessions} sessions, {n_raters} raters, {frame['rating_id'].nunique()} "
        f"ratings, {len(frame)} item scores"
    )
    return tuple(sorted(frame["rater"].unique())[:2])


def _csv(frame) -> bytes:
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()


def timed(client, url: str) -> float:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def consensus_url(client) -> str:
    """The consensus page of the first disagreement."""
    html = client.get("/reliability/disagreements").get_data(as_text=True)
    return re.search(r'href="(/reliability/consensus/[^"]+)"', html)[1]


def change_consensus(client) -> None:
    """Save one consensus score through the page (raises the data version)."""
    url = consensus_url(client)
    page = client.get(url).get_data(as_text=True)
    field = re.search(r'name="(item_[^"]+)"', page)[1]
    response = client.post(url, data={field: "2"})
    assert response.status_code == 302, response.status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--raters", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
        config = TestConfig(f"sqlite:///{tmp}/bench.sqlite")
        config.RATER_INSTRUMENTS_DIR = str(ROOT / "instruments")
        config.RATER_AUDIO_DIR = str(ROOT / "audio")
        config.WTF_CSRF_ENABLED = False
        app = create_app(config)
        with app.app_context():
            upgrade_schema()
            pair = build(args.sessions, args.raters)
            db.session.remove()
        client = app.test_client()
        client.post("/login", data={"username": "coord", "password": PASSWORD})
        worst = 0.0
        print(f"{'page':<80} {'first':>8} {'cached median':>14} {'cached max':>11}")
        for url in pages(pair):
            first = timed(client, url)
            cached = [timed(client, url) for _ in range(args.repeat)]
            worst = max(worst, max(cached))
            print(f"{url:<80} {first:8.3f} {statistics.median(cached):14.4f} {max(cached):11.4f}")
        consensus = consensus_url(client)
        cached = [timed(client, consensus) for _ in range(args.repeat)]
        worst = max(worst, max(cached))
        median = statistics.median(cached)
        print(f"{consensus:<80} {'-':>8} {median:14.4f} {max(cached):11.4f}  (not cached)")
        change_consensus(client)
        after = timed(client, "/reliability/")
        again = timed(client, "/reliability/")
        print(f"after a consensus change: /reliability/ first {after:.3f} s, then {again:.4f} s")
        verdict = "met" if worst < GOAL_SECONDS else "NOT met"
        print(f"slowest cached request: {worst * 1000:.1f} ms (goal < 100 ms: {verdict})")


if __name__ == "__main__":
    main()
