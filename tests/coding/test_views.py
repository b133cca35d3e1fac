"""The peaks endpoint (access-checked like the audio, computed once) and the coordinator's
event-agreement view of a double-coded session."""

from __future__ import annotations

import re

import pytest

from rater.auth.models import User
from rater.extensions import db
from rater.rating import service
from rater.rating.models import Assignment
from rater.study import peaks as peaks_module
from rater.timeutil import utcnow
from tests.coding.test_import_export import HEADER, run_import
from tests.rating.helpers import build_study, login_as, started


@pytest.mark.parametrize(
    "visitor, status", [("anonymous", 302), ("rater", 200), ("other", 404), ("coordinator", 200)]
)
def test_peaks_are_checked_like_the_audio(client, auth, factory, visitor, status):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, visitor)
    with client.get(f"/assignments/{study.id}/peaks.json") as response:  # closes the file
        assert response.status_code == status
        body = response.json if status == 200 else None
    if body is not None:
        assert body["version"] == 2 and body["length"] * 2 == len(body["data"])
        assert body["duration"] == pytest.approx(68.3, abs=0.5)


def test_peaks_are_computed_once_and_then_read_from_the_cache(client, auth, factory, monkeypatch):
    study = build_study(factory)
    login_as(auth, "rater")
    calls = []
    real = peaks_module.compute_peaks
    monkeypatch.setattr(peaks_module, "compute_peaks", lambda p: calls.append(p) or real(p))
    bodies = []
    for _ in range(2):
        with client.get(f"/assignments/{study.id}/peaks.json") as response:  # closes the file
            bodies.append(response.json)
    assert bodies[0] == bodies[1] and len(calls) == 1


@pytest.fixture
def double_coded(factory, runner, tmp_path):
    factory.user("coord", "coordinator")
    ann, bob = factory.user("ann"), factory.user("bob")
    session = factory.session("P01-S01", number=1)
    for rater, purpose in ((ann, "main"), (bob, "double")):
        rating = service.start_rating(factory.assignment(session, rater, purpose))
        rating.status, rating.submitted_at = "submitted", utcnow()
    db.session.commit()
    rows = [
        "ann,ASSIGN,10", "bob,ASSIGN,11",  # matched
        "ann,RATIONALE,20", "bob,TAILOR,20.5",  # paired, other code
        "ann,REVIEW,40",  # A only
        "ann,EFFICACY,50", "bob,EFFICACY,51.5",  # matched
    ]  # fmt: skip
    text = HEADER + "".join(f"P01-S01,{r},,\n" for r in rows)
    assert run_import(runner, tmp_path, text).exit_code == 0


@pytest.mark.usefixtures("double_coded")
def test_agreement_view_shows_both_timelines_and_the_weakest_codes(client, auth):
    auth.login("coord")
    index = client.get("/coding/agreement").get_data(as_text=True)
    assert "P01-S01" in index and "ann, bob" in index
    assert '<td class="num">4</td><td class="num">50 %</td>' in index  # 2 of 4 units agree
    page = client.get("/coding/agreement/P01-S01").get_data(as_text=True)
    assert page.count('class="mark matched"') == 4
    unmatched = re.findall(r'class="mark unmatched" data-lane="(\d)" data-code="(\w+)"', page)
    assert sorted(unmatched) == [("0", "RATIONALE"), ("0", "REVIEW"), ("1", "TAILOR")]
    table = page[page.index('id="lowest-codes"') :]
    order = re.findall(r"<tr><td>(\w+)</td>", table)
    assert order[-2:] == ["ASSIGN", "EFFICACY"] or order[-2:] == ["EFFICACY", "ASSIGN"]
    assert set(order[:3]) == {"RATIONALE", "REVIEW", "TAILOR"}


@pytest.mark.usefixtures("double_coded")
def test_agreement_view_is_for_coordinators_only(client, auth):
    auth.login("ann")
    assert client.get("/coding/agreement/P01-S01").status_code in (302, 403, 404)
    auth.logout()
    auth.login("coord")
    assert client.get("/coding/agreement/P09-S09").status_code == 404


@pytest.mark.usefixtures("double_coded")
def test_a_coding_sheet_shows_its_events_coded_never_0_of_0_scored(client, auth):
    auth.login("coord")
    ann = db.session.scalars(
        db.select(Assignment)
        .join(User, Assignment.rater_id == User.id)
        .where(User.username == "ann")
    ).one()
    page = client.get(f"/assignments/{ann.id}/rate").get_data(as_text=True)
    assert "0 of 0 scored" not in page
    counters = re.findall(r'<span[^>]*data-events-for="HWC"[^>]*>([^<]*)</span>', page)
    assert counters == ["4 events coded", "4 events coded"]  # progress card and sheet heading
    assert 'data-count-for="HWC"' not in page  # the scale counter (and its "complete") is not used
    assert re.search(r'data-count-for="GHES">0 of \d+ scored', page)
