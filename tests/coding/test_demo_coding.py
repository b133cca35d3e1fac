"""The demo study codes a share of its sessions with the homework coding sheet: summary measures
with a realistic reliability, event agreement for double-coded sessions, and started sessions a
rater can code in the browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from rater.coding.agreement import double_coded_sessions, session_agreement
from rater.extensions import db
from rater.rating.models import Assignment, CodedEvent, Rating
from rater.reliability.consensus import load_report
from rater.reliability.results import Estimate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_config(app_config):
    app_config.RATER_INSTRUMENTS_DIR = str(ROOT / "instruments")  # the demo's own folder
    return app_config


def coded_ratings() -> list[Rating]:
    return [
        r for r in db.session.scalars(select(Rating))
        if any(v.code == "HWC" for v in r.instrument_versions)
    ]  # fmt: skip


@pytest.mark.usefixtures("shipped_demo")
def test_a_share_of_sessions_is_coded_with_events():
    coded = coded_ratings()
    sessions = {r.assignment.session_id for r in coded}
    main = {a.session_id for a in db.session.scalars(select(Assignment))
            if a.purpose != "calibration"}  # fmt: skip
    assert 0.2 <= len(sessions) / len(main) <= 0.5
    submitted = [r for r in coded if r.status == "submitted"]
    with_events = {e.rating_id for e in db.session.scalars(select(CodedEvent))}
    assert {r.id for r in submitted} <= with_events or len(with_events) >= 0.9 * len(submitted)
    startable = [r for r in coded if r.status == "draft" and not r.scores]
    assert startable, "a rater can open a started session with the coding sheet and code it"


@pytest.mark.usefixtures("shipped_demo")
def test_summary_measures_have_realistic_reliability_and_events_agree():
    rep = load_report(design="all", instrument="HWC")
    assert ("HWC", "Homework coding (events)") in rep.instruments
    design = rep.design_result("HWC", "HWC_assigning_n")
    assert design.n_double >= 10
    icc = design.coefficients["ICC(Q,khat)"]
    assert isinstance(icc, Estimate) and 0.6 <= icc.value <= 0.95, icc
    sessions = double_coded_sessions()
    assert len(sessions) >= 5
    view = session_agreement(sessions[0]["session_id"])
    assert view is not None and view.result.units
    assert 0.3 <= view.result.percent <= 1.0


@pytest.mark.usefixtures("shipped_demo")
def test_dashboard_and_agreement_pages_show_the_coding(client, auth):
    assert auth.login("coordinator", "demo-coordinator").status_code == 302
    page = client.get("/reliability/").get_data(as_text=True)
    assert "Homework coding (events)" in page and "HWC_rationale_ratio" in page
    index = client.get("/coding/agreement")
    assert index.status_code == 200
    first = double_coded_sessions()[0]["session_id"]
    view = client.get(f"/coding/agreement/{first}")
    assert view.status_code == 200 and "agreement-timeline" in view.get_data(as_text=True)
