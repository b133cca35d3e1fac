"""Reliability pages: coordinators only (raters 403, anonymous to login), real content."""

from __future__ import annotations

import math
import re

import pytest

from rater.extensions import db
from rater.formatting import format_number
from rater.reliability.report import report

PAGES = (
    "/reliability/",
    "/reliability/instrument/GHES",
    "/reliability/measure/GHES/GHES_score",
    "/reliability/measure/StHAR/StHAR_A1?by=block",
    "/reliability/plot/GHES/GHES_score/heatmap.svg",
    "/reliability/plot/GHES/GHES_score/drift.svg",
    "/reliability/plot/GHES/GHES_score/bland-altman.svg?rater_1=rater1&rater_2=rater2",
    "/reliability/disagreements",
)


def consensus_url(client) -> str:
    html = client.get("/reliability/disagreements").get_data(as_text=True)
    start = html.index("/reliability/consensus/")
    return html[start : html.index('"', start)]


@pytest.mark.usefixtures("demo")
def test_anonymous_is_sent_to_login(client):
    for url in (*PAGES, "/reliability/consensus/P01-S01"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"]


@pytest.mark.usefixtures("demo")
def test_raters_get_403_on_every_page(client, auth):
    auth.login("coordinator", "demo-coordinator")
    consensus = consensus_url(client)
    auth.logout()
    auth.login("rater1", "demo-rater1")
    for url in (*PAGES, consensus):
        assert client.get(url).status_code == 403, url
    assert client.post(consensus, data={}).status_code == 403


@pytest.mark.usefixtures("demo")
def test_coordinator_sees_dashboard_plots_and_drill_downs(client, auth):
    auth.login("coordinator", "demo-coordinator")
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        if ".svg" in url:
            assert response.mimetype == "image/svg+xml"
            assert response.get_data(as_text=True).startswith("<svg")
            assert response.headers["Cache-Control"] == "no-store"
    html = client.get("/reliability/").get_data(as_text=True)
    words = re.sub(r"<[^>]+>", "", html)  # the symbols are links to the glossary
    for text in ("ICC(A,2) mean across pairs", "ICC(Q,k̂)", "Cronbach α", "Calibration round"):
        assert text in words
    assert "<script" not in html
    assert client.get(consensus_url(client)).status_code == 200


@pytest.mark.usefixtures("demo")
def test_unknown_instrument_or_measure_is_404(client, auth):
    auth.login("coordinator", "demo-coordinator")
    assert client.get("/reliability/instrument/NOPE").status_code == 404
    assert client.get("/reliability/measure/GHES/NOPE").status_code == 404
    assert client.get("/reliability/plot/NOPE/x/heatmap.svg").status_code == 404
    assert client.get("/reliability/measure/GHES/GHES_score?by=week").status_code == 400


@pytest.mark.usefixtures("app")
def test_dashboard_without_ratings_says_not_enough_data(client, auth, factory):
    from rater.study.instrument_store import sync_instruments

    sync_instruments()
    db.session.commit()
    factory.user("carla", role="coordinator")
    auth.login("carla")
    html = client.get("/reliability/").get_data(as_text=True)
    assert "not enough data — no double-coded sessions yet" in html
    assert client.get("/reliability/disagreements").status_code == 200


def _unbounded_pair(rep):
    """A pair result of the report whose ICC(A,2) interval has no lower bound."""
    for pair in rep.pairs:
        icc = pair.coefficients.get("ICC(A,2)")
        if getattr(icc, "ci_low", None) == -math.inf:
            return pair, icc
    return None, None


@pytest.mark.usefixtures("shipped_demo")
def test_unbounded_limits_show_as_minus_infinity_and_no_negative_zero(client, auth):
    """The shipped demo has ICC(A,2) intervals without a lower bound (a pair's F bound below
    the pole); the measure page writes them '[−∞, high]' and explains why, and no page shows
    '-0.00' (an ICC of −1.6e-16 once was)."""
    from rater.reliability.consensus import load_report

    pair, icc = _unbounded_pair(load_report())
    assert pair is not None, "the demo should have an interval without a lower bound"
    auth.login("coordinator", "demo-coordinator")
    html = client.get(f"/reliability/measure/{pair.instrument}/{pair.measure}").get_data(
        as_text=True
    )
    assert f"[−∞, {format_number(icc.ci_high)}]" in html
    assert "the interval has no lower bound" in html
    pages = (
        *PAGES,
        "/reliability/instrument/StHAR",
        "/reliability/measure/StHAR/StHAR_A5",
        "/reliability/plot/StHAR/StHAR_A5/heatmap.svg",
        f"/reliability/plot/{pair.instrument}/{pair.measure}/bland-altman.svg"
        f"?rater_1={pair.rater_1}&rater_2={pair.rater_2}",
    )
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.get_data(as_text=True)
        assert "-0.00" not in text and "−0.00" not in text, url


def test_counts_are_written_with_the_right_plural(client, auth, factory, monkeypatch):
    """One rating by one rater of one session: '1 submitted rating by 1 rater: 1 session'."""
    from rater.reliability import consensus
    from tests.reliability.test_report import TINY, tidy

    rep = report(tidy([("S1", "ann", "main", {"T1": 2, "T2": 3, "T3": 1})]), [TINY])
    monkeypatch.setattr(consensus, "current_instruments", lambda: [TINY])
    monkeypatch.setattr(consensus, "load_report", lambda **_: rep)
    factory.user("carla", role="coordinator")
    auth.login("carla")
    html = " ".join(client.get("/reliability/").get_data(as_text=True).split())
    assert "1 submitted rating by 1 rater: 1 session in the main design" in html
    assert "0 calibration ratings" in html
    html = " ".join(client.get("/reliability/instrument/TINY").get_data(as_text=True).split())
    assert "(1 rating)" in html
    assert "1 complete main rating (minimum 5)" in html


@pytest.mark.usefixtures("shipped_demo")
def test_a_measure_without_pairs_shows_the_reason_not_an_empty_plot(client, auth):
    """StHAR_total in the shipped demo: double-coded sessions, but no rater rated both t−1 and
    t of a patient.  The pages say so, the plots too; the design-wide ICC is still given."""
    auth.login("coordinator", "demo-coordinator")
    reason = re.compile(r"\d+ double-coded sessions, but no two raters both rated sessions t−1")
    dashboard = client.get("/reliability/").get_data(as_text=True)
    assert reason.search(dashboard)
    assert "no double-coded sessions yet" not in dashboard
    assert "/plot/StHAR/StHAR_total/" not in dashboard
    assert "/plot/StHAR/StH_A/heatmap.svg" in dashboard  # measures with pairs keep theirs
    page = client.get("/reliability/measure/StHAR/StHAR_total").get_data(as_text=True)
    assert reason.search(page) and "/plot/StHAR/StHAR_total/" not in page
    for plot in ("heatmap.svg", "drift.svg"):
        svg = client.get(f"/reliability/plot/StHAR/StHAR_total/{plot}").get_data(as_text=True)
        text = " ".join(re.findall(r">([^<]+)</text>", svg))  # the message, wrapped in lines
        assert reason.search(text), plot
    instrument = client.get("/reliability/instrument/StHAR").get_data(as_text=True)
    row = instrument[instrument.index(">StHAR_total</a>") :].split("</tr>")[0]
    cells = re.findall(r"<td>(.*?)</td>", row, flags=re.S)
    assert re.match(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\]", cells[3].strip())  # ICC(Q,k̂) [CI]
