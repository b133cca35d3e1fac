"""The Results page, its downloads and ``rater results``: coordinators only, real content.

A small demo (6 patients, every session rated). The service keeps results per content of the
data, so the identical demo of each test is fitted once per run.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from rater.extensions import db
from rater.formatting import format_number
from rater.rating.models import Assignment, ConsensusScore
from rater.results import report, service
from rater.results.models import Analysis, ModelFit, model_sequence
from rater.results.views import TABLES
from rater.study.instrument_store import current_versions
from rater.study.models import TherapySession

PAGES = (
    "/results/",
    "/results/?outcome=phq9&predictor=GHES_score&predictor=StHAR_total&resolve=consensus",
    "/results/download/fixed_effects.csv",
    "/results/download/results.xlsx",
    "/results/download/rater-results.R?outcome=GHES_score",
)


@pytest.mark.usefixtures("demo")
def test_anonymous_is_sent_to_login_and_raters_are_refused(client, auth):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    auth.login("rater1", "demo-rater1")
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    assert "/results/" not in client.get("/queue").get_data(as_text=True)


@pytest.mark.usefixtures("demo")
def test_page_shows_the_models_descriptives_omega_and_data_used(client, auth):
    auth.login("coordinator", "demo-coordinator")
    html = client.get("/results/").get_data(as_text=True)
    found = service.load_results()
    assert found.analysis.outcome == "GHES_score" and found.analysis.predictors == ("StHAR_total",)
    assert "Resolution of double-coded sessions: mean</strong> (the default" in html
    assert "the pair mean of a double-coded session" in html
    for f in found.analysis.fits:
        assert f.converged, f.message
        assert f.spec.formula in html
        for e in f.fixed:
            assert f'<td class="num">{format_number(e.estimate, 4)}</td>' in html
    null = found.analysis.fits[0]
    assert format_number(null.icc, 3) in html
    for t in found.analysis.tests:
        assert f"χ²({t.df}) = {format_number(t.chi2, 3)}" in html
    overall = found.descriptives[found.descriptives["by"] == "overall"].set_index("measure")
    assert format_number(overall.loc["GHES_score", "mean"]) in html
    assert "PHQ-9 total" in html  # coordinators only
    omega = found.omega[found.omega["group"] == "overall"].set_index("measure")
    assert format_number(omega.loc["GHES_score", "omega"]) in html
    # one course plot per score and PHQ-9, inlined
    assert html.count('src="data:image/svg+xml;base64,') == len(found.model_variables) == 5
    assert 'href="/results/"' in html  # the navigation link


@pytest.mark.usefixtures("demo")
def test_chosen_outcome_predictors_and_consensus_resolution(client, auth):
    """A consensus score changes the data under --resolve consensus, never under mean."""
    double = db.session.scalars(
        select(Assignment.session_id).where(Assignment.purpose == "double")
    ).first()
    ghes = current_versions()["GHES"]
    db.session.add(ConsensusScore(session_id=double, instrument_version_id=ghes.id,
                                  item_code="GHES_1", score=4, decided_by_id=1))  # fmt: skip
    db.session.commit()
    code = db.session.get(TherapySession, double).code
    consensus = service.load_results("phq9", ["GHES_score"], "consensus")
    mean = service.load_results("phq9", ["GHES_score"], "mean")
    row = consensus.data.set_index("session_id").loc[code]
    assert row["GHES_1"] == 4 and row["resolution"] == "consensus+mean"
    assert mean.data.set_index("session_id").loc[code, "resolution"] == "mean"
    auth.login("coordinator", "demo-coordinator")
    html = client.get("/results/?outcome=phq9&predictor=GHES_score&resolve=consensus").get_data(
        as_text=True
    )
    assert "Resolution of double-coded sessions: consensus</strong>" in html
    assert "Multilevel models of PHQ-9 total" in html
    assert "phq9 ~ 1 + session_number + GHES_score + (1 + session_number | patient)" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("outcome=GHES_1", "&#39;GHES_1&#39; is not a scale score or PHQ-9"),
        ("outcome=phq9&predictor=phq9", "must be different variables"),
        ("resolve=main", "resolve must be one of mean, consensus"),
    ],
)
@pytest.mark.usefixtures("demo")
def test_a_bad_choice_is_refused_with_its_name(client, auth, query, message):
    """Back on the form with the default choice and a message naming the bad one."""
    auth.login("coordinator", "demo-coordinator")
    response = client.get(f"/results/?{query}")
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert message in page.get_data(as_text=True)


@pytest.mark.usefixtures("demo")
def test_a_model_that_did_not_converge_is_shown_as_such(client, auth, monkeypatch):
    specs = model_sequence("GHES_score", ["StHAR_total"])

    def failing(_data, outcome, predictors):
        fits = tuple(ModelFit(s, True, False, 40, 6, "did not converge: reason X") for s in specs)
        ml = tuple(ModelFit(s, False, False, 40, 6, "did not converge: reason X") for s in specs)
        from rater.results.models import compare

        return Analysis(outcome, tuple(predictors), 40, 6, fits, ml, tuple(compare(ml)))

    monkeypatch.setattr(report, "analyse", failing)
    monkeypatch.setattr(service, "_cache", type(service._cache)())
    auth.login("coordinator", "demo-coordinator")
    html = client.get("/results/").get_data(as_text=True)
    assert html.count("Not converged: did not converge: reason X") == 4
    assert "Fixed effect" not in html and "no test: a model did not converge" in html
    frames = service.load_results().to_frames()
    assert frames["fixed_effects"].empty
    assert not frames["model_fit"]["converged"].any()
    assert frames["model_fit"]["loglik"].isna().all()


@pytest.mark.usefixtures("demo")
def test_csv_downloads_are_excel_csv_of_the_tables(client, auth):
    auth.login("coordinator", "demo-coordinator")
    frames = service.load_results().to_frames()
    for table in TABLES:
        response = client.get(f"/results/download/{table}.csv")
        assert response.status_code == 200
        assert response.data.startswith(b"\xef\xbb\xbf")  # utf-8-sig
        assert "attachment" in response.headers["Content-Disposition"]
        got = pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig")
        assert list(got.columns) == list(frames[table].columns)
        assert len(got) == len(frames[table])
    got = pd.read_csv(io.BytesIO(client.get("/results/download/fixed_effects.csv").data))
    expected = frames["fixed_effects"]
    pd.testing.assert_series_equal(got["estimate"], expected["estimate"], check_exact=False,
                                   rtol=1e-12)  # fmt: skip


@pytest.mark.usefixtures("demo")
def test_workbook_has_one_sheet_per_table(client, auth):
    auth.login("coordinator", "demo-coordinator")
    response = client.get("/results/download/results.xlsx?outcome=phq9&predictor=GHES_score")
    book = load_workbook(io.BytesIO(response.data), read_only=True)
    assert book.sheetnames == list(TABLES)
    rows = list(book["fixed_effects"].values)
    assert rows[0][:3] == ("model", "formula", "term")
    assert rows[1][1] == "phq9 ~ 1 + (1 | patient)"


@pytest.mark.usefixtures("demo")
def test_r_script_download_names_the_models_and_the_export(client, auth):
    auth.login("coordinator", "demo-coordinator")
    text = client.get(
        "/results/download/rater-results.R?outcome=phq9&predictor=GHES_score&resolve=consensus"
    ).get_data(as_text=True)
    assert "rater export sessions --resolve consensus" in text
    assert (
        "interaction = `phq9` ~ 1 + `session_number` + `GHES_score` + "
        "`session_number`:`GHES_score` + (1 + session_number | patient)"
    ) in text
    assert client.get("/results/download/rater-results.R").status_code == 400
    bad = client.get("/results/download/rater-results.R?outcome=nope")
    assert bad.status_code == 400


@pytest.mark.usefixtures("demo")
def test_cli_json_and_text(runner, tmp_path):
    result = runner.invoke(args=["results", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["outcome"] == "GHES_score" and data["predictors"] == ["StHAR_total"]
    assert data["resolve"] == "mean" and "pair mean" in data["resolution"]
    assert set(data) >= {"descriptives", "omega", "frequencies", "fixed_effects", "lr_tests"}
    assert [t["comparison"] for t in data["lr_tests"]] == [
        "null vs growth", "growth vs predictors", "predictors vs interaction",
    ]  # fmt: skip
    script = tmp_path / "fit.R"
    text = runner.invoke(args=["results", "--outcome", "phq9", "--predictor", "GHES_score",
                               "--r-script", str(script)])  # fmt: skip
    assert text.exit_code == 0, text.output
    assert "Models of phq9 (REML;" in text.output
    assert "homework assigned  behavioural" in text.output
    assert "phq9 ~ 1 + session_number + GHES_score" in text.output
    assert "library(lme4)" in script.read_text()


@pytest.mark.usefixtures("demo")
def test_cli_refuses_a_bad_variable(runner):
    result = runner.invoke(args=["results", "--outcome", "GHES_1"])
    assert result.exit_code == 1
    assert "'GHES_1' is not a scale score or PHQ-9" in result.output


@pytest.mark.usefixtures("demo")
def test_csv_and_xlsx_quote_cells_a_spreadsheet_would_run(client, auth, monkeypatch):
    """Labels come from instrument files: a label starting with '=' is written quoted."""
    found = service.load_results()
    frames = found.to_frames()
    frames["descriptives"].loc[0, "label"] = '=HYPERLINK("http://x")'
    monkeypatch.setattr(type(found), "to_frames", lambda _self: frames)
    auth.login("coordinator", "demo-coordinator")
    text = client.get("/results/download/descriptives.csv").data.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    book = load_workbook(io.BytesIO(client.get("/results/download/results.xlsx").data))
    assert book["descriptives"]["D2"].value == '\'=HYPERLINK("http://x")'
