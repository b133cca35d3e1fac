"""``rater export wide --format sav|dta``: SPSS and Stata files with variable and value labels,
read back with pyreadstat; N/A is missing; nominal items are numbered categories."""

from __future__ import annotations

import pyreadstat
import pytest

from rater.extensions import db
from rater.rating.importer import import_ratings
from rater.study.instrument_store import current_versions

ROWS = [
    ("TCS_1", "4", "", "0"),
    ("HWS_rationale", "", "", "1"),
    ("HWS_type", "", "behavioural", "0"),
    ("HWS_tasks", "2", "", "0"),
    ("HWS_comment", "", "short, clear", "0"),
]


@pytest.fixture
def imported(factory):
    factory.user("r1")
    factory.session("P01-S01")
    current_versions()
    text = "session_id,rater,instrument,item,score,value,not_applicable\n" + "".join(
        f'P01-S01,r1,{"TCS" if item.startswith("TCS") else "HWS"},{item},{score},"{value}",{na}\n'
        for item, score, value, na in ROWS
    )
    import_ratings(text.encode(), "in.csv", allow_incomplete=True)
    db.session.commit()


@pytest.mark.parametrize("fmt", ["sav", "dta"])
@pytest.mark.usefixtures("imported")
def test_wide_as_sav_and_dta_with_labels(runner, tmp_path, fmt):
    path = tmp_path / f"wide.{fmt}"
    result = runner.invoke(args=["export", "wide", "-o", str(path)])
    assert result.exit_code == 0, result.output
    read = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    frame, meta = read(str(path))
    row = frame.iloc[0]
    assert row["TCS_1"] == 4 and row["HWS_tasks"] == 2
    assert row["HWS_type"] == 2  # behavioural: the second category in the file
    assert row["HWS_rationale"] != row["HWS_rationale"]  # N/A: missing (NaN)
    assert row["HWS_comment"] == "short, clear"
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["TCS_1"] == "Agenda"
    assert labels["HWS_type"] == "Main type of homework"
    values = meta.variable_value_labels
    assert values["HWS_type"][2] == "Behavioural (activity, exposure)"
    assert values["TCS_1"][0] == "No agenda" and 3 not in values["TCS_1"]
    assert "TCS-G" not in meta.column_names  # names SPSS/Stata accept


@pytest.mark.usefixtures("imported")
def test_default_name_by_format_and_refused_kinds(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(args=["export", "wide", "--format", "dta"])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.glob("rater-wide-*.dta"))
    result = runner.invoke(args=["export", "long", "-o", str(tmp_path / "x.sav")])
    assert result.exit_code != 0 and "wide and sessions only" in result.output


@pytest.mark.parametrize("fmt", ["sav", "dta"])
@pytest.mark.usefixtures("imported")
def test_downloads_page_offers_sav_and_dta(client, auth, factory, tmp_path, fmt):
    factory.user("coord", "coordinator")
    assert auth.login("coord").status_code == 302
    page = client.get("/export/").get_data(as_text=True)
    assert f"/export/download/wide.{fmt}" in page and f"/export/download/sessions.{fmt}" in page
    assert f"/export/download/long.{fmt}" not in page
    response = client.get(f"/export/download/sessions.{fmt}")
    assert response.status_code == 200
    assert f'.{fmt}"' in response.headers["Content-Disposition"]
    path = tmp_path / f"sessions.{fmt}"
    path.write_bytes(response.data)
    read = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    frame, meta = read(str(path))
    assert frame.loc[0, "HWS_type"] == 2 and frame.loc[0, "TCS_1"] == 4
    assert meta.variable_value_labels["HWS_type"][5] == "Relapse prevention"
    assert client.get(f"/export/download/long.{fmt}").status_code == 400
