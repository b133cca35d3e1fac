"""``rater demo``: a demo study in the default database, then the app on 127.0.0.1:5000.

The demo mirrors the reference study: 3 therapists, 22 patients with about 9 sessions each,
5 raters and a coordinator, 3 calibration sessions rated by everyone, a 40 % double-coded
design, and simulated ratings for part of the sessions drawn from a latent-trait model
(patient and session effects, rater bias, noise) so that reliability comes out realistic.
Running it twice is safe: the study is built once; users and instruments are checked.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

import click
import numpy as np
import pandas as pd
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from rater import audit
from rater.allocation.service import SETTING_FRACTION, SETTING_SEED, put_setting
from rater.auth import service as users
from rater.auth.models import User
from rater.cli import transaction, upgrade_schema
from rater.extensions import db
from rater.instruments import Instrument
from rater.rating.models import Assignment, ItemScore, Rating
from rater.study.catalogue import import_sessions
from rater.study.instrument_store import instrument_of, sync_instruments
from rater.study.models import StudySetting, TherapySession
from rater.timeutil import utcnow

DEMO_AUDIO = (
    "demo-session-a.ogg",
    "demo-session-b.ogg",
    "demo-session-c.ogg",
    "demo-session-d.ogg",
)
COORDINATOR = ("coordinator", "demo-coordinator")
RATERS = tuple((f"rater{i}", f"demo-rater{i}") for i in range(1, 6))
BUILT_KEY = "demo.built"
N_CALIBRATION = 3
DOUBLE_FRACTION = 0.4


@dataclass(frozen=True)
class DemoSizes:
    therapists: int = 3
    patients: int = 22
    seed: int = 2024
    rated_share: float = 0.6


def catalogue_csv(sizes: DemoSizes) -> bytes:
    """The demo session catalogue as CSV, exactly as a coordinator would import it."""
    rng = np.random.default_rng(sizes.seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "session_id",
            "patient",
            "therapist",
            "session_number",
            "audio",
            "recorded_on",
            "status",
            "exclusion_reason",
            "phq9",
        ]
    )
    start = date(2024, 1, 8)
    excluded = {
        (3, 2): "recording incomplete",
        (9, 7): "audio inaudible",
        (15, 4): "session not held as planned",
        (20, 9): "recording incomplete",
    }
    for p in range(1, sizes.patients + 1):
        therapist = f"T{(p - 1) % sizes.therapists + 1}"
        n_sessions = int(rng.integers(7, 12))
        baseline = int(rng.integers(12, 24))
        for s in range(1, n_sessions + 1):
            reason = excluded.get((p, s), "")
            phq9 = max(0, min(27, round(baseline - 1.1 * s + rng.normal(0, 2))))
            writer.writerow(
                [
                    f"P{p:02d}-S{s:02d}",
                    f"P{p:02d}",
                    therapist,
                    s,
                    DEMO_AUDIO[(p + s) % len(DEMO_AUDIO)],
                    (start + timedelta(days=7 * (s - 1) + p)).isoformat(),
                    "excluded" if reason else "eligible",
                    reason,
                    phq9,
                ]
            )
    return out.getvalue().encode("utf-8")


def ensure_users() -> tuple[User, list[User]]:
    found = {u.username: u for u in users.list_users()}
    if COORDINATOR[0] not in found:
        found[COORDINATOR[0]] = users.add_user(COORDINATOR[0], "coordinator", COORDINATOR[1])
    for name, password in RATERS:
        if name not in found:
            found[name] = users.add_user(name, "rater", password)
    return found[COORDINATOR[0]], [found[name] for name, _ in RATERS]


def build_demo(sizes: DemoSizes = DemoSizes()) -> bool:
    """Build the demo study (flush only); False when it was already built."""
    versions = sync_instruments()
    _, raters = ensure_users()
    if db.session.get(StudySetting, BUILT_KEY) is not None:
        return False
    import_sessions(
        catalogue_csv(sizes), "demo-sessions.csv", current_app.config["RATER_AUDIO_DIR"]
    )
    sessions = list(db.session.scalars(select(TherapySession).order_by(TherapySession.code)))
    calibration = _pick_calibration(sessions, sizes.seed)
    assignments = _calibration_assignments(calibration, raters) + _main_assignments(
        sessions, raters, sizes.seed
    )
    db.session.add_all(assignments)
    db.session.flush()
    instruments = [instrument_of(v) for v in versions]
    _simulate_ratings(assignments, instruments, {v.code: v for v in versions}, sizes)
    # Stored so that `rater allocate` re-plans with the design the demo used.
    put_setting(SETTING_FRACTION, DOUBLE_FRACTION)
    put_setting(SETTING_SEED, sizes.seed)
    db.session.add(StudySetting(key=BUILT_KEY, value={"seed": sizes.seed}))
    audit.record("demo.build", "study", None, after={"sessions": len(sessions)})
    db.session.flush()
    return True


def _pick_calibration(sessions: list[TherapySession], seed: int) -> list[TherapySession]:
    """One phase-II session of a different therapist each, set aside from the main pool."""
    rng = np.random.default_rng(seed + 1)
    chosen = []
    for therapist in sorted({s.therapist.code for s in sessions})[:N_CALIBRATION]:
        pool = [s for s in sessions if s.therapist.code == therapist and s.is_eligible]
        pick = pool[int(rng.integers(len(pool)))]
        pick.status = "excluded"
        pick.exclusion_reason = "calibration session (rated by every rater)"
        chosen.append(pick)
    return chosen


def _calibration_assignments(sessions, raters) -> list[Assignment]:
    return [
        Assignment(session_id=s.id, rater_id=r.id, purpose="calibration", status="pending")
        for s in sessions
        for r in raters
    ]


def _main_assignments(sessions, raters, seed: int) -> list[Assignment]:
    from rater.allocation.design import design

    frame = pd.DataFrame(
        {
            "session_id": [s.id for s in sessions],
            "therapist": [s.therapist.code for s in sessions],
            "patient": [s.patient.code for s in sessions],
            "phase": [s.phase for s in sessions],
            "status": [s.status for s in sessions],
        }
    )
    by_name = {r.username: r for r in raters}
    plan = design(frame, [r.username for r in raters], double_fraction=DOUBLE_FRACTION, seed=seed)
    return [
        Assignment(
            session_id=int(row.session_id),
            rater_id=by_name[row.rater].id,
            purpose=row.purpose,
            status="pending",
        )
        for row in plan.assignments.itertuples()
    ]


def _simulate_ratings(assignments, instruments: list[Instrument], versions, sizes) -> None:
    """Submitted ratings for calibration and part of the main work; a few drafts."""
    rng = np.random.default_rng(sizes.seed + 2)
    sessions = {a.session_id for a in assignments}
    patient_effect: dict[int, float] = {}
    session_effect: dict[int, float] = {}
    for a in sorted(assignments, key=lambda a: a.session_id):
        pid = a.session.patient_id
        patient_effect.setdefault(pid, rng.normal(0, 0.7))
        session_effect.setdefault(a.session_id, rng.normal(0, 0.5))
    rater_bias = {r: rng.normal(0, 0.25) for r in sorted({a.rater_id for a in assignments})}
    intercept = {item.code: rng.uniform(1.4, 2.6) for inst in instruments for item in inst.items}
    rated_sessions = {s for s in sorted(sessions) if rng.random() < sizes.rated_share}
    now = utcnow()
    for a in sorted(assignments, key=lambda a: a.id):
        if a.purpose != "calibration" and a.session_id not in rated_sessions:
            continue
        draft = a.purpose != "calibration" and rng.random() < 0.08
        truth = patient_effect[a.session.patient_id] + session_effect[a.session_id]
        rating = Rating(
            assignment_id=a.id,
            status="draft" if draft else "submitted",
            submitted_at=None if draft else now - timedelta(days=int(rng.integers(1, 120))),
            active_seconds=float(rng.integers(1800, 4200)),
        )
        rating.instrument_versions = list(versions.values())
        for inst in instruments:
            for item in inst.items:
                if draft and rng.random() < 0.5:
                    continue
                keyed = -truth if item.reverse else truth
                value = intercept[item.code] + keyed + rater_bias[a.rater_id] + rng.normal(0, 0.6)
                rating.scores.append(
                    ItemScore(
                        instrument_version_id=versions[inst.code].id,
                        item_code=item.code,
                        score=int(np.clip(round(value), 0, 4)),
                    )
                )
        a.status = "in_progress" if draft else "submitted"
        db.session.add(rating)
    db.session.flush()


@click.command("demo")
@click.option("--no-serve", is_flag=True, help="Only build the demo study.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def demo(no_serve: bool, host: str, port: int) -> None:
    """Build a demo study in the default database and serve the app."""
    upgrade_schema()
    with transaction():
        built = build_demo()
    click.echo("Demo study built." if built else "Demo study already present; left as it is.")
    click.echo("Logins (username / password):")
    click.echo(f"  coordinator: {COORDINATOR[0]} / {COORDINATOR[1]}")
    for name, password in RATERS:
        click.echo(f"  rater:       {name} / {password}")
    if no_serve:
        return
    click.echo(f"Serving on http://{host}:{port}/  (Ctrl+C to stop)")
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()
    app.config["RATER_DEMO"] = True
    # Flask refuses app.run() inside a CLI command; the threaded development server is enough
    # for a local demo (`rater serve` runs a study under gunicorn).
    run_simple(host, port, app, threaded=True, use_reloader=False)


def register(app: Flask) -> None:
    app.cli.add_command(demo)
