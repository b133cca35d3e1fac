"""``rater demo``: it builds exactly the study the README (and its own docstring) describe, once."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

import rater.demo
from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment, Rating
from rater.study.instrument_store import instrument_of, sync_instruments
from rater.study.models import Patient, TherapySession

README = Path(__file__).resolve().parents[2] / "README.md"

# The sentence of the README's Set-up section (and of rater/demo.py's docstring) that says what
# the demo builds; its numbers are read from the text, so text and demo cannot drift apart.
CLAIM = re.compile(
    r"(?P<eligible>\d+) eligible sessions of (?P<patients>\d+) patients treated by"
    r" (?P<therapists>\d+) therapists \(sessions 1-(?P<per_patient>\d+) per patient,"
    r" phase I = 1-(?P<last_phase_one>\d+), II = (?P<first_phase_two>\d+)-\d+;"
    r" one patient has (?P<short>\d+)\), (?P<raters>\d+) raters and a coordinator, and"
    r" (?P<calibration>\d+) calibration sessions of (?P<calibration_patients>\d+) further"
    r" patients, excluded from the main study, that all (?P<all_raters>\d+) raters rate first;?"
    r"\.? (?P<percent>\d+) % of the main study is double-coded \((?P<doubles>\d+) sessions\)"
)


def claim(text: str) -> dict[str, int]:
    flat = " ".join(text.split()).replace("–", "-")
    match = CLAIM.search(flat)
    assert match, "the text no longer states what the demo builds in the words CLAIM expects"
    return {k: int(v) for k, v in match.groupdict().items()}


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _sessions() -> list[TherapySession]:
    return list(db.session.scalars(select(TherapySession)))


def test_readme_and_docstring_state_the_same_demo() -> None:
    assert claim(README.read_text("utf-8")) == claim(rater.demo.__doc__)


@pytest.mark.usefixtures("app")
def test_demo_builds_what_the_readme_says_once(runner) -> None:
    said = claim(README.read_text("utf-8"))
    first = runner.invoke(args=["demo", "--no-serve"])
    assert first.exit_code == 0, first.output
    assert "coordinator / demo-coordinator" in first.output
    assert "rater5 / demo-rater5" in first.output

    eligible = [s for s in _sessions() if s.status == "eligible"]
    assert len(eligible) == said["eligible"]
    assert len({s.patient_id for s in eligible}) == said["patients"]
    assert len({s.therapist_id for s in _sessions()}) == said["therapists"]
    per_patient = Counter(s.patient_id for s in eligible)
    full, short = said["per_patient"], said["short"]
    assert sorted(per_patient.values()) == [short] + [full] * (said["patients"] - 1)
    for s in eligible:
        assert 1 <= s.session_number <= full
        assert s.phase == ("I" if s.session_number <= said["last_phase_one"] else "II")
    assert said["first_phase_two"] == said["last_phase_one"] + 1

    raters = list(db.session.scalars(select(User).where(User.role == "rater")))
    assert len(raters) == said["raters"] == said["all_raters"]
    assert _count(User, User.role == "coordinator") == 1

    calibration = list(db.session.scalars(select(Assignment).filter_by(purpose="calibration")))
    sessions = {a.session for a in calibration}
    assert len(sessions) == said["calibration"]
    assert Counter(a.session_id for a in calibration) == {s.id: len(raters) for s in sessions}
    assert {s.status for s in sessions} == {"excluded"}  # excluded from the main study ...
    further = {s.patient_id for s in sessions}  # ... and of patients outside it
    assert len(further) == said["calibration_patients"]
    assert not further & set(per_patient)
    assert _count(Patient) == said["patients"] + said["calibration_patients"]

    main = Counter(
        a.session_id for a in db.session.scalars(select(Assignment).filter_by(purpose="main"))
    )
    double = Counter(
        a.session_id for a in db.session.scalars(select(Assignment).filter_by(purpose="double"))
    )
    assert main == {s.id: 1 for s in eligible}  # every eligible session once, nothing else
    assert set(double) <= set(main) and set(double.values()) == {1}
    assert len(double) == said["doubles"] == math.floor(said["percent"] / 100 * len(eligible) + 0.5)

    counts = (_count(TherapySession), _count(Assignment), _count(Rating), _count(User))
    second = runner.invoke(args=["demo", "--no-serve"])
    assert second.exit_code == 0 and "already present" in second.output
    assert (_count(TherapySession), _count(Assignment), _count(Rating), _count(User)) == counts


@pytest.mark.usefixtures("app")
def test_demo_ratings_have_realistic_reliability(runner) -> None:
    """Simulated double-codes agree like trained raters do: ICC(A,2) of the scale means (items
    keyed as the instrument scores them) lies in 0.6-0.85 for both scales."""
    import pingouin as pg

    from rater.rating.frame import ratings_frame

    assert runner.invoke(args=["demo", "--no-serve"]).exit_code == 0
    frame = ratings_frame()
    frame = frame[frame.purpose != "calibration"]
    for version in sync_instruments():
        scale = instrument_of(version)
        rows = frame[frame.instrument == scale.code]
        values = rows.pivot(index=["session_id", "purpose"], columns="item", values="score")
        means = scale.keyed(values).mean(axis=1).unstack().dropna()
        assert len(means) >= 30
        long = means.reset_index().melt(id_vars="session_id", var_name="r", value_name="s")
        table = pg.intraclass_corr(long, targets="session_id", raters="r", ratings="s")
        icc = float(table.loc[table.Type.isin(["ICC2k", "ICC(A,k)"]), "ICC"].iloc[0])
        assert 0.6 <= icc <= 0.85, (scale.code, icc)
