"""The coordinator downloads page: access and downloads."""

from __future__ import annotations

import io

import pandas as pd


def test_raters_get_403_and_anonymous_users_are_sent_to_login(study, client, auth) -> None:
    for url in ("/export/", "/export/download/long.csv", "/export/meta/long.csv.json"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    auth.login("ra")
    for url in ("/export/", "/export/download/sessions.csv", "/export/download/all.xlsx"):
        assert client.get(url).status_code == 403, url


def test_coordinator_page_lists_every_kind(study, client, auth) -> None:
    auth.login("coord")
    page = client.get("/export/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for kind in ("long", "wide", "sessions", "homework", "reliability", "codebook", "audit"):
        assert f"/export/download/{kind}.csv" in text
    options = client.get("/export/?resolve=consensus&include_calibration=1").get_data(as_text=True)
    assert "resolve=consensus" in options and "include_calibration=1" in options
    assert client.get("/export/?resolve=median").status_code == 400


def test_download_matches_the_command_line(study, client, auth, runner, tmp_path) -> None:
    auth.login("coord")
    response = client.get("/export/download/sessions.csv?resolve=main")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "rater-sessions.csv" in response.headers["Content-Disposition"]
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


def test_unavailable_reliability_is_marked_on_the_page(study, client, auth, monkeypatch) -> None:
    from rater.export import service

    monkeypatch.setattr(service, "reliability_available", lambda: False)
    auth.login("coord")
    assert "not available yet" in client.get("/export/").get_data(as_text=True)
    response = client.get("/export/download/reliability.csv")
    assert response.status_code == 404
    assert "not available yet" in response.get_data(as_text=True)


def _download_urls(app) -> list[str]:
    """Every download route of the export blueprint, for every kind and format it serves."""
    from rater.export.tables import KINDS
    from rater.export.views import MEDIA_TYPES

    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("export.")}
    assert endpoints == {"export.downloads", "export.download", "export.meta"}
    urls = []
    for endpoint in ("export.download", "export.meta"):
        for kind in KINDS:
            for fmt in MEDIA_TYPES:
                urls.append(url_for_kind(app, endpoint, kind, fmt))
        urls.append(url_for_kind(app, endpoint, "all", "xlsx"))
    return urls


def url_for_kind(app, endpoint: str, kind: str, fmt: str) -> str:
    from flask import url_for

    with app.test_request_context():
        return url_for(endpoint, kind=kind, fmt=fmt, resolve="main")


def test_every_download_has_one_content_type_with_at_most_one_charset(
    app, study, client, auth
) -> None:
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
