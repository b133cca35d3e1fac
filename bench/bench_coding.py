"""Coding a long session: the rating page of a 60-minute session with 1,500 events, its peaks,
and an autosave of one event.

Run: ``python bench/bench_coding.py [--events 1500] [--minutes 60] [--repeat 20]
[--database-url postgresql://postgres@127.0.0.1:5432/postgres]``.

Builds a throwaway study (SQLite in a temporary folder by default; with ``--database-url`` a
scratch database on that PostgreSQL server): the GHES, StHAR and homework coding sheets, one
rater, one session whose recording is a generated 60-minute WAV file (8 kHz mono), and a
started rating with N events spread over the hour. Then, in-process through the test client
(so the figures are server time, without a network or a browser):

1. ``GET /assignments/<id>/rate`` ``--repeat`` times: median and worst (goal: median < 300 ms);
2. ``GET /assignments/<id>/peaks.json`` twice: the first computes the peaks (decoding the
   whole file once), the second reads them from the cache next to the audio (goal: the second
   < 50 ms; the peaks are computed exactly once);
3. one autosave batch adding an event to the rating that holds N events (median of 20).

Prints each figure with its goal and exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import soundfile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

PAGE_GOAL_MS = 300
CACHED_PEAKS_GOAL_MS = 50
PASSWORD = "bench-password-123"


def write_recording(path: Path, minutes: float, rate: int = 8000) -> None:
    """A noise-like recording with a slow loudness envelope (written in blocks)."""
    rng = np.random.default_rng(1)
    with soundfile.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as out:
        for start in range(0, int(minutes * 60), 60):
            t = np.arange(60 * rate) / rate + start
            envelope = 0.3 + 0.25 * np.sin(t / 7.0) ** 2
            out.write((rng.standard_normal(60 * rate) * 0.2 * envelope).astype("float32"))


def build(n_events: int, minutes: float) -> int:
    from rater.auth.service import add_user
    from rater.cli import upgrade_schema
    from rater.extensions import db
    from rater.rating import service
    from rater.rating.models import Assignment, CodedEvent
    from rater.study.instrument_store import current_versions
    from rater.study.models import Patient, Therapist, TherapySession

    upgrade_schema()
    rater = add_user("coder", "rater", PASSWORD)
    session = TherapySession(
        code="P01-S01", patient=Patient(code="P01"), therapist=Therapist(code="T1"),
        session_number=1, phase="I", audio_path="long.wav", duration_seconds=minutes * 60,
        status="eligible",
    )  # fmt: skip
    db.session.add(session)
    db.session.flush()
    assignment = Assignment(session_id=session.id, rater_id=rater.id, purpose="main")
    db.session.add(assignment)
    db.session.flush()
    rating = service.start_rating(assignment)
    sheet = current_versions()["HWC"]
    codes = ["ASSIGN", "RATIONALE", "TAILOR", "OBSTACLE", "REVIEW", "EFFICACY"]
    rng = np.random.default_rng(2)
    times = np.sort(rng.uniform(0, minutes * 60 - 1, n_events)).round(2)
    rows = [
        {"rating_id": rating.id, "instrument_version_id": sheet.id, "client_id": f"e{i}",
         "code": codes[i % len(codes)], "time_s": float(t), "end_s": None, "note": ""}
        for i, t in enumerate(times)
    ]  # fmt: skip
    if rows:
        db.session.execute(CodedEvent.__table__.insert(), rows)
    db.session.commit()
    return assignment.id


def timed(call, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server")
    args = parser.parse_args()

    from rater import create_app
    from rater.config import TestConfig
    from rater.extensions import db
    from rater.study import peaks as peaks_module

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rater-bench-")))
        url = f"sqlite:///{folder / 'bench.sqlite'}"
        if args.database_url:
            from tests.support.databases import scratch_postgres_database

            url = stack.enter_context(scratch_postgres_database(args.database_url))
        instruments = folder / "instruments"
        instruments.mkdir()
        for path in [*(PROJECT_ROOT / "instruments").glob("*.toml"),
                     PROJECT_ROOT / "instruments/examples/homework_coding.toml"]:  # fmt: skip
            shutil.copy(path, instruments / path.name)
        audio = folder / "audio"
        audio.mkdir()
        started = time.perf_counter()
        write_recording(audio / "long.wav", args.minutes)
        megabytes = (audio / "long.wav").stat().st_size / 1e6
        print(f"recording: {args.minutes:g} min, {megabytes:.0f} MB "
              f"(written in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        config = TestConfig(url)
        config.RATER_INSTRUMENTS_DIR = str(instruments)
        config.RATER_AUDIO_DIR = str(audio)
        config.TESTING = False
        app = create_app(config)
        with app.app_context():
            assignment_id = build(args.events, args.minutes)
            client = app.test_client()
            login = client.post("/login", data={"username": "coder", "password": PASSWORD})
            assert login.status_code == 302, login.status_code

            def page():
                response = client.get(f"/assignments/{assignment_id}/rate")
                assert response.status_code == 200 and b'id="coding-panel"' in response.data

            page()  # warm: templates compiled, instrument parsed
            page_ms = timed(page, args.repeat)
            calls = []
            real = peaks_module.compute_peaks
            peaks_module.compute_peaks = lambda p, *a: calls.append(p) or real(p, *a)
            fetch = lambda: client.get(f"/assignments/{assignment_id}/peaks.json")  # noqa: E731
            first_ms = timed(fetch, 1)[0]
            size = len(fetch().data)
            cached_ms = statistics.median(timed(fetch, 5))
            cache = list((audio / ".peaks").glob("*.json"))
            seq = iter(range(1, 10_000))

            def autosave():
                n = next(seq)
                change = {"op": "event.add", "client_id": f"new-{n}", "code": "ASSIGN",
                          "time_s": float(n), "end_s": None, "note": ""}  # fmt: skip
                body = {"client": "bench", "seq": n, "base_version": 0, "changes": [change]}
                response = client.post(f"/assignments/{assignment_id}/autosave", json=body)
                assert response.status_code == 200, response.json

            save_ms = timed(autosave, 20)
            db.session.remove()
    median_page = statistics.median(page_ms)
    print(
        f"rating page with {args.events} events ({args.minutes:g} min): median "
        f"{median_page:.0f} ms, worst {max(page_ms):.0f} ms (goal < {PAGE_GOAL_MS} ms)"
    )
    print(
        f"peaks: first request {first_ms:.0f} ms (computed), then {cached_ms:.1f} ms from the "
        f"cache ({len(cache)} file, {size / 1e3:.0f} kB JSON); computed {len(calls)} time(s)"
    )
    print(f"autosave of one event into a rating with {args.events}: median "
          f"{statistics.median(save_ms):.1f} ms, worst {max(save_ms):.1f} ms")  # fmt: skip
    ok = median_page < PAGE_GOAL_MS and cached_ms < CACHED_PEAKS_GOAL_MS and len(calls) == 1
    print("all goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
