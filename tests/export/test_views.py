"""The coordinator downloads page: access and downloads."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pandas as pd
import pytest


@pytest.mark.usefixtures("study")
def test_raters_get_403_and_anonymous_users_are_sent_to_login(client, auth) -> None:
    for url in ("/export/", "/export/download/long.csv", "/export/meta/long.csv.json"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    auth.login("ra")
    for url in ("/export/", "/export/download/sessions.csv", "/export/download/all.xlsx"):
        assert client.get(url).status_code == 403, url


@pytest.mark.usefixtures("study")
def test_coordinator_page_lists_every_kind(client, auth) -> None:
    auth.login("coord")
    page = client.get("/export/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for kind in ("long", "wide", "sessions", "homework", "reliability", "codebook", "audit"):
        assert f"/export/download/{kind}.csv" in text
    options = client.get("/export/?resolve=consensus&include_calibration=1").get_data(as_text=True)
    assert "resolve=consensus" in options and "include_calibration=1" in options
    assert client.get("/export/?resolve=median").status_code == 400


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def attachment_name(client, url: str) -> str:
    """The file name a download is saved under, checked to carry today's date (UTC)."""
    before = today()
    response = client.get(url)
    after = today()
    assert response.status_code == 200, url
    found = re.fullmatch(r'attachment; filename="(.+)"', response.headers["Content-Disposition"])
    assert found, response.headers["Content-Disposition"]
    name = found.group(1)
    stamp = re.search(r"\d{4}-\d{2}-\d{2}", name)
    assert stamp and stamp.group(0) in (before, after), name
    return name.replace(stamp.group(0), "DATE")


@pytest.mark.usefixtures("study")
def test_download_matches_the_command_line(client, auth, runner, tmp_path) -> None:
    auth.login("coord")
    response = client.get("/export/download/sessions.csv?resolve=main")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert attachment_name(client, "/export/download/sessions.csv?resolve=main") == (
        "rater-sessions-main-DATE.csv"
    )
    path = tmp_path / "s.csv"
    result = runner.invoke(args=["export", "sessions", "-o", str(path), "--resolve", "main"])
    assert result.exit_code == 0
    assert response.data == path.read_bytes()
    meta = client.get("/export/meta/sessions.csv.json?resolve=main").get_json()
    assert meta["options"]["resolve"] == "main" and meta["rows"] == 6
    workbook = client.get("/export/download/all.xlsx")
    assert "codebook" in pd.read_excel(io.BytesIO(workbook.data), sheet_name=None)
    assert client.get("/export/download/nothing.csv").status_code == 404
    assert client.get("/export/download/all.csv").status_code == 400


def _download_urls(app) -> list[str]:
    """Every download route of the export blueprint, for every kind and format it serves."""
    from rater.export.statistics import STATS_FORMATS, STATS_KINDS
    from rater.export.tables import KINDS
    from rater.export.views import MEDIA_TYPES

    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("export.")}
    assert endpoints == {"export.downloads", "export.download", "export.meta"}
    urls = []
    for endpoint in ("export.download", "export.meta"):
        for kind in KINDS:
            for fmt in MEDIA_TYPES:
                if fmt not in STATS_FORMATS or kind in STATS_KINDS:  # .sav/.dta: two kinds
                    urls.append(url_for_kind(app, endpoint, kind, fmt))
        urls.append(url_for_kind(app, endpoint, "all", "xlsx"))
    return urls


def url_for_kind(app, endpoint: str, kind: str, fmt: str) -> str:
    from flask import url_for

    with app.test_request_context():
        return url_for(endpoint, kind=kind, fmt=fmt, resolve="main")


@pytest.mark.usefixtures("study")
def test_every_download_has_one_content_type_with_at_most_one_charset(app, client, auth) -> None:
    auth.login("coord")
    for url in _download_urls(app):
        response = client.get(url)
        assert response.status_code == 200, url
        header = response.headers["Content-Type"]
        assert len(response.headers.getlist("Content-Type")) == 1, url
        parameters = [p.strip().lower() for p in header.split(";")[1:]]
        charsets = [p for p in parameters if p.startswith("charset=")]
        if response.mimetype == "text/csv":
            assert charsets == ["charset=utf-8"], (url, header)
        else:
            assert charsets == [], (url, header)  # binary files and JSON carry no charset
        assert response.headers["Content-Disposition"].startswith("attachment; filename="), url


@pytest.mark.usefixtures("study")
def test_file_names_carry_kind_resolution_options_and_date(client, auth) -> None:
    auth.login("coord")
    names = {
        "/export/download/sessions.csv": "rater-sessions-consensus-DATE.csv",
        "/export/download/sessions.parquet?resolve=mean": "rater-sessions-mean-DATE.parquet",
        "/export/download/all.xlsx": "rater-all-consensus-DATE.xlsx",
        "/export/download/wide.csv?resolve=main": "rater-wide-DATE.csv",  # never resolved
        "/export/download/long.csv?include_drafts=1": "rater-long-with-drafts-DATE.csv",
        "/export/download/sessions.csv?include_calibration=1&include_drafts=1": (
            "rater-sessions-consensus-with-drafts-with-calibration-DATE.csv"
        ),
        "/export/download/codebook.csv?include_drafts=1": "rater-codebook-DATE.csv",
        "/export/meta/sessions.csv.json": "rater-sessions-consensus-DATE.csv.meta.json",
    }
    for url, name in names.items():
        assert attachment_name(client, url) == name, url


@pytest.mark.usefixtures("study")
def test_meta_and_page_say_which_resolution_was_applied(client, auth) -> None:
    auth.login("coord")
    default = client.get("/export/meta/sessions.csv.json").get_json()
    assert default["options"]["resolve"] == "consensus"
    assert default["resolution"]["mode"] == "consensus" and default["resolution"]["default"]
    meaning = default["resolution"]["meaning"]
    assert "consensus score" in meaning and "else the mean" in meaning
    chosen = client.get("/export/meta/sessions.csv.json?resolve=consensus").get_json()
    assert chosen["resolution"]["default"] is False
    assert chosen["rows_sha256"] == default["rows_sha256"]  # the default is consensus
    mean = client.get("/export/meta/sessions.csv.json?resolve=mean").get_json()
    assert mean["resolution"]["mode"] == "mean" and mean["rows_sha256"] != default["rows_sha256"]
    wide = client.get("/export/meta/wide.csv.json?resolve=mean").get_json()
    assert wide["options"]["resolve"] is None and wide["resolution"]["mode"] is None
    assert "own scores" in wide["resolution"]["meaning"]
    assert client.get("/export/meta/audit.csv.json").get_json()["resolution"] is None
    page = client.get("/export/").get_data(as_text=True)
    assert "the default, no resolution was chosen" in page and meaning in page
    assert "rater-sessions-consensus-" in page and "rater-wide-" in page
    chosen_page = client.get("/export/?resolve=main").get_data(as_text=True)
    assert "main — chosen" in chosen_page and "rater-sessions-main-" in chosen_page
