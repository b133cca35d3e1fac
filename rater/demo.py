"""``rater demo``: a demo study in the default database, then the app on 127.0.0.1:5000.

The demo is the reference study: 197 eligible sessions of 22 patients treated by 3 therapists
(sessions 1-9 per patient, phase I = 1-4, II = 5-9; one patient has 8), 5 raters and a
coordinator, and 3 calibration sessions of 2 further patients, excluded from the main study,
that all 5 raters rate first. 40 % of the main study is double-coded (79 sessions).

It is built with the coordinator's own tools: the catalogue is imported, the 3 sessions become
calibration sessions (``add_calibration_sessions``, which also excludes them) and ``allocate``
plans and writes the design. Ratings for the calibration sessions and for about 70 % of the
main sessions are simulated from a latent-trait model (patient and session effects, each
rater's bias and impression of the session, item noise) so that reliability comes out
realistic. Running it twice is safe: the study is built once; users and instruments are
checked.

About a third of the main sessions are also coded with the homework coding sheet
(``instruments/examples/homework_coding.toml``): every rating of those sessions uses it, and
the submitted ones hold simulated events (each coder hears most of the session's behaviours,
a little early or late, now and then under another code, plus a few of their own), so the
summary measures have a realistic reliability and double-coded sessions show event agreement.
The sessions of that share nobody has rated yet are started (drafts without scores), so a rater
can code them on the rating page.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

import click
import numpy as np
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from rater import audit
from rater.allocation.calibration import CALIBRATION_REASON, add_calibration_sessions
from rater.allocation.planning import allocate
from rater.auth import service as users
from rater.auth.models import User
from rater.cli import transaction, upgrade_schema
from rater.config import PROJECT_ROOT
from rater.extensions import db, table_of
from rater.instruments import Instrument, load_instrument
from rater.rating.models import Assignment, CodedEvent, ItemScore, Rating
from rater.states import AssignmentStatus, Purpose, RatingStatus, Role, SessionStatus
from rater.study.catalogue import import_sessions
from rater.study.instrument_store import instrument_of, store_version, sync_instruments
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
DOUBLE_FRACTION = 0.4
CODING_SHEET = PROJECT_ROOT / "instruments" / "examples" / "homework_coding.toml"
SESSIONS_PER_PATIENT = 9  # phase I = sessions 1-4, phase II = 5-9 (the default boundary)


@dataclass(frozen=True)
class DemoSizes:
    """``patients`` main-study patients with 9 sessions each, except the first with 8; then
    ``calibration_patients`` further patients whose ``calibration_sessions`` sessions are
    excluded from the main study (patient codes continue the numbering)."""

    therapists: int = 3
    patients: int = 22
    calibration_patients: int = 2
    calibration_sessions: int = 3
    seed: int = 2024
    rated_share: float = 0.7
    coded_share: float = 0.35


def calibration_codes(sizes: DemoSizes) -> list[str]:
    """Session i (0, 1, ...) of calibration: patient ``i mod calibration_patients`` of the
    further patients, session number 3 + 2i (so both phases occur)."""
    return [
        f"P{sizes.patients + 1 + i % sizes.calibration_patients:02d}-S{3 + 2 * i:02d}"
        for i in range(sizes.calibration_sessions)
    ]


def _catalogue_rows(sizes: DemoSizes) -> list[tuple[int, int, str]]:
    """(patient number, session number, exclusion reason) of every catalogue row."""
    rows = [
        (p, s, "")
        for p in range(1, sizes.patients + 1)
        for s in range(1, SESSIONS_PER_PATIENT + (p > 1))
    ]
    for code in calibration_codes(sizes):
        patient, session = code[1:].split("-S")
        rows.append((int(patient), int(session), CALIBRATION_REASON))
    return rows


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
    baseline: dict[int, int] = {}
    for p, s, reason in _catalogue_rows(sizes):
        base = baseline.setdefault(p, int(rng.integers(12, 24)))
        phq9 = max(0, min(27, round(base - 1.1 * s + rng.normal(0, 2))))
        writer.writerow(
            [
                f"P{p:02d}-S{s:02d}",
                f"P{p:02d}",
                f"T{(p - 1) % sizes.therapists + 1}",
                s,
                DEMO_AUDIO[(p + s) % len(DEMO_AUDIO)],
                (start + timedelta(days=7 * (s - 1) + p)).isoformat(),
                SessionStatus.EXCLUDED if reason else SessionStatus.ELIGIBLE,
                reason,
                phq9,
            ]
        )
    return out.getvalue().encode("utf-8")


def ensure_users() -> tuple[User, list[User]]:
    found = {u.username: u for u in users.list_users()}
    if COORDINATOR[0] not in found:
        found[COORDINATOR[0]] = users.add_user(COORDINATOR[0], Role.COORDINATOR, COORDINATOR[1])
    for name, password in RATERS:
        if name not in found:
            found[name] = users.add_user(name, Role.RATER, password)
    return found[COORDINATOR[0]], [found[name] for name, _ in RATERS]


def build_demo(sizes: DemoSizes = DemoSizes()) -> bool:
    """Build the demo study (flush only); False when it was already built."""
    versions = sync_instruments()
    ensure_users()
    if db.session.get(StudySetting, BUILT_KEY) is not None:
        return False
    import_sessions(
        catalogue_csv(sizes), "demo-sessions.csv", current_app.config["RATER_AUDIO_DIR"]
    )
    add_calibration_sessions(calibration_codes(sizes), exclude=True)
    allocate(DOUBLE_FRACTION, sizes.seed)
    assignments = list(db.session.scalars(select(Assignment).order_by(Assignment.id)))
    instruments = [instrument_of(v) for v in versions]
    _simulate_ratings(assignments, instruments, {v.code: v for v in versions}, sizes)
    _simulate_coding(assignments, versions, sizes)
    db.session.add(StudySetting(key=BUILT_KEY, value={"seed": sizes.seed}))
    n_sessions = db.session.scalar(select(func.count()).select_from(TherapySession))
    audit.record("demo.build", "study", None, after={"sessions": n_sessions})
    db.session.flush()
    return True


def _spread(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    """n normal draws rescaled to mean 0 and standard deviation sd exactly."""
    x = rng.normal(0, 1, n)
    return sd * (x - x.mean()) / (x.std() or 1.0)


def _simulate_ratings(assignments, instruments: list[Instrument], versions, sizes) -> None:
    """Submitted ratings for calibration and part of the main work; a few drafts."""
    rng = np.random.default_rng(sizes.seed + 2)
    sessions = sorted({a.session_id for a in assignments})
    patients = sorted({a.session.patient_id for a in assignments})
    # Effects with exactly the intended spread, so that every demo's reliability is realistic
    # (the realised spread of 22 patients' draws varies a lot); biases from lenient to strict.
    patient_effect = dict(zip(patients, _spread(rng, len(patients), 0.5), strict=True))
    session_effect = dict(zip(sessions, _spread(rng, len(sessions), 0.4), strict=True))
    raters = sorted({a.rater_id for a in assignments})
    rater_bias = dict(zip(raters, np.linspace(-0.3, 0.3, len(raters)), strict=True))
    intercept = {item.code: rng.uniform(1.4, 2.6) for inst in instruments for item in inst.items}
    rated_sessions = {s for s in sorted(sessions) if rng.random() < sizes.rated_share}
    now = utcnow()
    for a in sorted(assignments, key=lambda a: a.id):
        if a.purpose != Purpose.CALIBRATION and a.session_id not in rated_sessions:
            continue
        draft = a.purpose != Purpose.CALIBRATION and rng.random() < 0.08
        truth = patient_effect[a.session.patient_id] + session_effect[a.session_id]
        rating = Rating(
            assignment_id=a.id,
            status=RatingStatus.DRAFT if draft else RatingStatus.SUBMITTED,
            submitted_at=None if draft else now - timedelta(days=int(rng.integers(1, 120))),
            active_seconds=float(rng.integers(1800, 4200)),
        )
        rating.instrument_versions = list(versions.values())
        for inst in instruments:
            impression = rng.normal(0, 0.5)  # this rater's overall view of this session
            for item in inst.items:
                if draft and rng.random() < 0.5:
                    continue
                keyed = -truth if item.reverse else truth
                noise = impression + rng.normal(0, 0.6)
                value = intercept[item.code] + keyed + rater_bias[a.rater_id] + noise
                rating.scores.append(
                    ItemScore(
                        instrument_version_id=versions[inst.code].id,
                        item_code=item.code,
                        score=int(np.clip(round(value), 0, 4)),
                    )
                )
        a.status = AssignmentStatus.IN_PROGRESS if draft else AssignmentStatus.SUBMITTED
        db.session.add(rating)
    db.session.flush()


def _simulate_coding(assignments, versions, sizes: DemoSizes) -> None:
    """The coding sheet for a share of the main sessions, with simulated events (see above)."""
    sheet = load_instrument(CODING_SHEET)
    version = store_version(sheet)
    rng = np.random.default_rng(sizes.seed + 3)
    main = [a for a in assignments if a.purpose != "calibration"]
    sessions = sorted({a.session_id for a in main})
    coded = {s for s in sessions if rng.random() < sizes.coded_share}
    mine = [a for a in main if a.session_id in coded]
    ratings = {
        r.assignment_id: r
        for r in db.session.scalars(
            select(Rating).where(Rating.assignment_id.in_([a.id for a in mine]))
        )
    }
    truths = {s: _true_events(rng, sheet, a.session.duration_seconds or 60.0)
              for s, a in {a.session_id: a for a in mine}.items()}  # fmt: skip
    for a in mine:
        rating = ratings.get(a.id)
        if rating is None:  # not rated yet: started, so that it can be coded in the browser
            rating = ratings[a.id] = Rating(
                assignment_id=a.id, status="draft", instrument_versions=list(versions)
            )
            a.status = "in_progress"
            db.session.add(rating)
        if version not in rating.instrument_versions:  # the sheet may be in the folder too
            rating.instrument_versions.append(version)
    db.session.flush()
    rows = []
    for a in mine:
        rating = ratings[a.id]
        if rating.status == "submitted":
            duration = a.session.duration_seconds or 60.0
            for n, (code, at, end) in enumerate(_heard(rng, sheet, truths[a.session_id], duration)):
                rows.append({"rating_id": rating.id, "instrument_version_id": version.id,
                             "client_id": f"demo-{n}", "code": code, "time_s": at,
                             "end_s": end, "note": ""})  # fmt: skip
    if rows:
        db.session.execute(table_of(CodedEvent).insert(), rows)


def _true_events(rng: np.random.Generator, sheet: Instrument, duration: float) -> list:
    """What happens in a session: (code, time) of point behaviours at a session's own rates,
    and one homework discussion (segment)."""
    points = [c.code for c in sheet.codes if not c.segment]
    rates = rng.gamma(2.0, 1.2, size=len(points))
    out: list[tuple[str, float, float | None]] = [
        (code, float(rng.uniform(0, duration)), None)
        for code, rate in zip(points, rates, strict=True)
        for _ in range(rng.poisson(rate))
    ]
    segments = [c.code for c in sheet.codes if c.segment]
    for code in segments:
        start = float(rng.uniform(0, duration * 0.6))
        out.append((code, start, start + float(rng.uniform(0.1, 0.4)) * duration))
    return out


def _heard(rng: np.random.Generator, sheet: Instrument, truth: list, duration: float) -> list:
    """One coder's events: most true ones, jittered, some under another code, a few extra."""
    points = [c.code for c in sheet.codes if not c.segment]
    heard = []
    for code, at, end in truth:
        if end is None and rng.random() < 0.12:
            continue  # missed
        if end is None and rng.random() < 0.08:
            code = str(rng.choice(points))  # heard as another behaviour
        shift = float(rng.normal(0, 0.7))
        start = round(min(max(at + shift, 0.0), duration), 2)
        heard.append((code, start, None if end is None else round(min(end + shift, duration), 2)))
    for _ in range(rng.poisson(0.6)):
        heard.append((str(rng.choice(points)), round(float(rng.uniform(0, duration)), 2), None))
    return [(c, s, max(e, s) if e is not None else None) for c, s, e in heard]


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

    # current_app is werkzeug's LocalProxy (its documented _get_current_object gives the app);
    # Flask types the proxy as Flask itself.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    app.config["RATER_DEMO"] = True
    # Flask refuses app.run() inside a CLI command; the threaded development server is enough
    # for a local demo (`rater serve` runs a study under gunicorn).
    run_simple(host, port, app, threaded=True, use_reloader=False)


def register(app: Flask) -> None:
    app.cli.add_command(demo)
