"""Exports from a database through ``rater export``: every kind read back, the round trip."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from sqlalchemy import event

from rater import __version__
from rater.export import tables
from rater.extensions import db

NUMERIC = {"integer", "number"}


def export(runner, kind: str, path, *options: str):
    result = runner.invoke(args=["export", kind, "-o", str(path), *options])
    assert result.exit_code == 0, result.output
    return path


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], encoding="utf-8-sig")


def codebook_types(runner, tmp_path) -> dict[tuple[str, str], str]:
    book = read(export(runner, "codebook", tmp_path / "codebook.csv"))
    return {(k, c): t for k, c, t in zip(book["export"], book["column"], book["type"], strict=True)}


def test_long_export_holds_submitted_scores(study, runner, tmp_path) -> None:
    path = export(runner, "long", tmp_path / "long.csv")
    frame = read(path)
    assert list(frame.columns) == [c.name for c in tables.LONG]
    assert len(frame) == 7 * 15  # the draft is left out
    assert set(frame["rating_status"]) == {"submitted"}
    row = frame[(frame["session_id"] == "P01-S02") & (frame["item"] == "GHES_3")].iloc[0]
    assert row["score"] == study.ratings[("P01-S02", "ra")].scores[2].score
    assert row["submitted_at"] == "2024-03-01T09:30:15.123456Z" and row["instrument_version"] == 1
    with_drafts = read(export(runner, "long", tmp_path / "all.csv", "--include-drafts"))
    assert (with_drafts["rating_status"] == "draft").sum() == 7  # half of the draft's items


@pytest.mark.usefixtures("study")
def test_meta_file_names_version_options_rows_and_hash(runner, tmp_path) -> None:
    import hashlib

    path = export(runner, "sessions", tmp_path / "s.csv", "--resolve", "consensus", "--excel")
    meta = json.loads((tmp_path / "s.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["tool_version"] == __version__ and meta["kind"] == "sessions"
    assert meta["options"] == {
        "include_drafts": False,
        "include_calibration": False,
        "resolve": "consensus",
        "excel": True,
    }
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert meta["rows"] == 6 and meta["file_sha256"] == hashlib.sha256(data).hexdigest()
    body = data[3:].split(b"\r\n", 1)[1]
    assert meta["rows_sha256"] == hashlib.sha256(body).hexdigest()
    assert meta["exported_at"].endswith("Z")


@pytest.mark.usefixtures("study")
def test_default_resolution_is_recorded_in_the_meta_file(runner, tmp_path) -> None:
    export(runner, "sessions", tmp_path / "s.csv")
    meta = json.loads((tmp_path / "s.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["options"]["resolve"] == "consensus"
    assert meta["resolution"]["mode"] == "consensus" and meta["resolution"]["default"] is True
    export(runner, "long", tmp_path / "l.csv", "--resolve", "main")
    meta = json.loads((tmp_path / "l.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["options"]["resolve"] is None and meta["resolution"]["mode"] is None


@pytest.mark.usefixtures("study")
def test_without_output_the_file_is_named_by_kind_resolution_and_date(
    runner, tmp_path, monkeypatch
) -> None:
    from datetime import UTC, datetime

    monkeypatch.chdir(tmp_path)
    before = datetime.now(UTC).date().isoformat()
    results = {
        kind: runner.invoke(args=["export", kind, *options])
        for kind, options in [("sessions", []), ("wide", ["--resolve", "main"]), ("all", [])]
    }
    after = datetime.now(UTC).date().isoformat()
    for result in results.values():
        assert result.exit_code == 0, result.output
    assert "Resolution: consensus (the default)" in results["sessions"].output
    assert "Resolution" not in results["wide"].output
    written = sorted(p.name for p in tmp_path.iterdir())
    dates = {found for name in written for found in re.findall(r"\d{4}-\d{2}-\d{2}", name)}
    assert dates <= {before, after}, written
    assert sorted({re.sub(r"\d{4}-\d{2}-\d{2}", "DATE", name) for name in written}) == [
        "rater-all-consensus-DATE.xlsx",
        "rater-all-consensus-DATE.xlsx.meta.json",
        "rater-sessions-consensus-DATE.csv",
        "rater-sessions-consensus-DATE.csv.meta.json",
        "rater-wide-DATE.csv",
        "rater-wide-DATE.csv.meta.json",
    ]
    assert len(written) == 6


def test_sessions_export_resolves_and_scores(study, runner, tmp_path) -> None:
    frame = read(export(runner, "sessions", tmp_path / "s.csv")).set_index("session_id")
    assert list(frame.index) == ["P01-S01", "P01-S02", "P01-S04", "P02-S01", "P02-S02", "P03-S01"]
    first = frame.loc["P01-S01"]
    a, b = study.ratings[("P01-S01", "ra")], study.ratings[("P01-S01", "rb")]
    ga = {s.item_code: s.score for s in a.scores}
    gb = {s.item_code: s.score for s in b.scores}
    # by default the recorded consensus (GHES_1 = 4), the pair mean elsewhere
    assert first["GHES_1"] == 4 and first["GHES_2"] == (ga["GHES_2"] + gb["GHES_2"]) / 2
    assert first["n_raters"] == 2 and first["resolution"] == "consensus+mean"
    assert first["n_consensus_items"] == 1
    pair_mean_1 = (ga["GHES_1"] + gb["GHES_1"]) / 2
    ga["GHES_1"] = gb["GHES_1"] = 4  # the score uses the resolved items
    keyed = [(4 - v if c == "GHES_5" else v) for c, v in ga.items() if c.startswith("GHES")]
    keyed += [(4 - v if c == "GHES_5" else v) for c, v in gb.items() if c.startswith("GHES")]
    assert first["GHES_score"] == pytest.approx(sum(keyed) / 14)
    assert first["phq9"] == 21 and first["difficulty_lack_of_time"] == 1
    assert first["hw_reported_behavioural"] == 1 and first["hw_assigned_self_monitoring"] == 1
    assert math.isnan(frame.loc["P01-S04", "StHAR_total"])  # session 3 is missing
    mean_a = [(ga[c] + gb[c]) / 2 for c in tables_items("StH-A")]
    r2 = {s.item_code: s.score for s in study.ratings[("P01-S02", "ra")].scores}
    expected = (sum(mean_a) + sum(r2[c] for c in tables_items("StH-R"))) / 8
    assert frame.loc["P01-S02", "StHAR_total"] == pytest.approx(expected)
    assert frame.loc["P03-S01", "n_raters"] == 0  # calibration left out
    assert math.isnan(frame.loc["P02-S02", "GHES_1"])  # its only rating is a draft
    calibration = read(export(runner, "sessions", tmp_path / "c.csv", "--include-calibration"))
    assert calibration.set_index("session_id").loc["P03-S01", "n_raters"] == 2
    pair = read(export(runner, "sessions", tmp_path / "k.csv", "--resolve", "mean"))
    pair = pair.set_index("session_id").loc["P01-S01"]
    assert pair["GHES_1"] == pair_mean_1 != 4
    assert pair["resolution"] == "mean" and pair["n_consensus_items"] == 0
    main = read(export(runner, "sessions", tmp_path / "m.csv", "--resolve", "main"))
    assert main.set_index("session_id").loc["P01-S01", "n_raters"] == 1


def tables_items(subscale: str) -> list[str]:
    prefix = "StHAR_A" if subscale == "StH-A" else "StHAR_R"
    count = 5 if subscale == "StH-A" else 3
    return [f"{prefix}{i}" for i in range(1, count + 1)]


@pytest.mark.usefixtures("study")
def test_homework_export_keeps_umlauts_and_neutralises_formulas(
    runner, tmp_path, umlauts, read_r
) -> None:
    path = export(runner, "homework", tmp_path / "hw.csv")
    frame = read(path)
    assert len(frame) == 4  # the draft's entry is left out
    assert umlauts in frame["description"].tolist()
    assert '\'=HYPERLINK("x")' in frame["description"].tolist()
    assert "Stimmungstagebuch führen" in frame["description"].tolist()
    assert umlauts in path.read_text(encoding="utf-8")
    _, from_r = read_r(path)
    assert umlauts in from_r["description"].tolist()
    assert len(read(export(runner, "homework", tmp_path / "d.csv", "--include-drafts"))) == 5


@pytest.mark.usefixtures("study")
def test_audit_export_lists_events(runner, tmp_path) -> None:
    frame = read(export(runner, "audit", tmp_path / "audit.csv"))
    assert "instrument.version" in set(frame["action"])
    assert json.loads(frame["after"][0])["code"] in ("GHES", "StHAR")


@pytest.mark.parametrize(
    "kind", ["long", "wide", "sessions", "homework", "audit", "codebook", "reliability"]
)
@pytest.mark.usefixtures("study")
def test_every_kind_reads_back_with_pandas_and_r(runner, tmp_path, kind, read_r) -> None:
    types = codebook_types(runner, tmp_path)
    path = export(runner, kind, tmp_path / f"{kind}.csv")
    frame = read(path)
    assert list(frame.columns) == [c for k, c in types if k == kind]
    classes, from_r = read_r(path)
    assert list(classes) == list(frame.columns)
    for column in frame.columns:
        kind_type = types[(kind, column)]
        empty = frame[column].isna().all()
        if kind_type in NUMERIC and not empty:
            assert pd.api.types.is_numeric_dtype(frame[column]), column
            assert classes[column] in ("integer", "numeric"), column
            back = pd.to_numeric(from_r[column])
            assert back.to_numpy() == pytest.approx(frame[column].to_numpy(), nan_ok=True)
        elif not empty and kind_type not in NUMERIC and classes[column] == "character":
            assert (
                from_r[column].fillna("").tolist() == frame[column].fillna("").astype(str).tolist()
            ), column
        if kind_type == "integer" and not empty:
            assert classes[column] == "integer", column


@pytest.mark.usefixtures("study")
def test_exports_are_deterministic(runner, tmp_path) -> None:
    for kind in ("long", "wide", "sessions", "homework", "codebook", "audit"):
        first = export(runner, kind, tmp_path / f"{kind}-1.csv").read_bytes()
        assert export(runner, kind, tmp_path / f"{kind}-2.csv").read_bytes() == first, kind


@pytest.mark.usefixtures("study")
def test_each_export_is_one_query_per_source(runner, tmp_path) -> None:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        export(runner, "sessions", tmp_path / "s.csv")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # ratings, item layout, sessions, instruments, consensus, homework, difficulties
    assert len(statements) <= 7, statements


@pytest.mark.usefixtures("study")
def test_round_trip_of_the_long_export(runner, tmp_path, restart) -> None:
    """Import a long export into an empty study: exporting again gives the same bytes."""
    first = export(runner, "long", tmp_path / "first.csv").read_bytes()
    restart(runner, tmp_path)
    imported = runner.invoke(args=["ratings", "import", str(tmp_path / "first.csv")])
    assert imported.exit_code == 0, imported.output
    assert "7 ratings with 105 scores" in imported.output
    second = export(runner, "long", tmp_path / "second.csv").read_bytes()
    assert second == first


def test_round_trip_of_codes_a_spreadsheet_would_run(factory, runner, tmp_path, restart) -> None:
    """Session and patient codes starting with = - + @ ＝ (or a quote before =) are written
    with a leading quote; importing the export gives the same study and the same bytes."""
    from tests.export.conftest import FORMULA_NAMES, build_study

    build_study(factory, names=FORMULA_NAMES)
    first_path = export(runner, "long", tmp_path / "first.csv")
    first = read(first_path)
    assert "''=P03-S01" in set(first["session_id"]) and "'=P01" in set(first["patient"])
    assert "'\uff1dP01-S04" in set(first["session_id"])
    restart(runner, tmp_path, FORMULA_NAMES)
    imported = runner.invoke(args=["ratings", "import", str(first_path)])
    assert imported.exit_code == 0, imported.output
    assert "7 ratings with 105 scores" in imported.output
    assert export(runner, "long", tmp_path / "second.csv").read_bytes() == first_path.read_bytes()


@pytest.mark.usefixtures("study")
def test_reliability_export_from_the_report(runner, tmp_path) -> None:
    frame = read(export(runner, "reliability", tmp_path / "rel.csv"))
    assert {"pairs", "pair_summary", "calibration"} <= set(frame["table"])
    assert list(frame.columns[-5:]) == ["coefficient", "value", "ci_low", "ci_high", "note"]


@pytest.mark.usefixtures("study")
def test_workbook_with_every_kind_and_parquet(runner, tmp_path, umlauts) -> None:
    export(runner, "all", tmp_path / "study.xlsx")
    sheets = pd.read_excel(tmp_path / "study.xlsx", sheet_name=None)
    assert list(sheets) == list(tables.KINDS)
    long = read(export(runner, "long", tmp_path / "long.csv"))
    assert sheets["long"]["score"].tolist() == long["score"].tolist()
    assert umlauts in sheets["homework"]["description"].tolist()
    export(runner, "sessions", tmp_path / "s.parquet")
    parquet = pd.read_parquet(tmp_path / "s.parquet")
    csv = read(export(runner, "sessions", tmp_path / "s.csv"))
    assert list(parquet.columns) == list(csv.columns)
    assert parquet["GHES_score"].to_numpy() == pytest.approx(
        csv["GHES_score"].to_numpy(), nan_ok=True
    )
    meta = json.loads((tmp_path / "s.parquet.meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == "parquet" and meta["rows"] == 6


@pytest.mark.usefixtures("study")
def test_all_needs_a_workbook(runner, tmp_path) -> None:
    result = runner.invoke(args=["export", "all", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and ".xlsx" in result.output
