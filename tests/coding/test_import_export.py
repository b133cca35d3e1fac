"""``rater events import`` and ``rater export events``: all-or-nothing with line/column/value,
the same checks as the page, a round trip that gives the same file back, and the event
measures in the wide and sessions exports."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rater.extensions import db
from rater.rating import service
from rater.rating.models import CodedEvent
from rater.timeutil import utcnow

HEADER = "session_id,rater,code,time_s,end_s,note\n"


@pytest.fixture
def study(factory):
    """Two sessions (68.3 s each), both coded by r1 and r2, ratings submitted."""
    r1, r2 = factory.user("r1"), factory.user("r2")
    ratings = []
    for n in (1, 2):
        session = factory.session(f"P01-S0{n}", number=n)
        for rater, purpose in ((r1, "main"), (r2, "double")):
            rating = service.start_rating(factory.assignment(session, rater, purpose))
            rating.status, rating.submitted_at = "submitted", utcnow()
            rating.assignment.status = "submitted"
            ratings.append(rating)
    db.session.commit()
    return ratings


def generated(seed: int, n: int = 40) -> str:
    rng = random.Random(seed)
    lines = [HEADER]
    for _ in range(n):
        session, rater = rng.choice(["P01-S01", "P01-S02"]), rng.choice(["r1", "r2"])
        start = round(rng.uniform(0, 60), 2)
        if rng.random() < 0.2:
            code, end = "HWTALK", f"{round(start + rng.uniform(0, 8), 2)}"
        else:
            code, end = rng.choice(["ASSIGN", "RATIONALE", "TAILOR", "REVIEW", "EFFICACY"]), ""
        note = rng.choice(["", "clear", 'says "maybe", then yes'])
        lines.append(
            f'{session},{rater},{code},{start},{end},"{note.replace(chr(34), 2 * chr(34))}"\n'
        )
    return "".join(lines)


def run_import(runner, tmp_path: Path, text: str, name: str = "events.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return runner.invoke(args=["events", "import", str(path)])


def run_export(runner, tmp_path: Path, kind: str, name: str) -> list[dict[str, str]]:
    path = tmp_path / name
    result = runner.invoke(args=["export", kind, "-o", str(path)])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(CodedEvent))


@pytest.mark.usefixtures("study")
def test_round_trip_gives_the_same_events_and_the_same_file(runner, tmp_path):
    text = generated(7)
    result = run_import(runner, tmp_path, text)
    assert result.exit_code == 0, result.output
    first = run_export(runner, tmp_path, "events", "first.csv")
    wanted = sorted(
        (r["session_id"], r["rater"], r["code"], float(r["time_s"]),
         float(r["end_s"]) if r["end_s"] else None, r["note"])
        for r in csv.DictReader(io.StringIO(text))
    )  # fmt: skip
    got = sorted(
        (r["session_id"], r["rater"], r["code"], float(r["time_s"]),
         float(r["end_s"]) if r["end_s"] else None, r["note"])
        for r in first
    )  # fmt: skip
    assert got == wanted
    again = run_import(runner, tmp_path, (tmp_path / "first.csv").read_text("utf-8-sig"), "b.csv")
    assert again.exit_code == 0, again.output
    assert event_count() == 40  # replaced, not doubled
    assert (tmp_path / "first.csv").read_bytes() == _export_bytes(runner, tmp_path, "second.csv")


def _export_bytes(runner, tmp_path: Path, name: str) -> bytes:
    run_export(runner, tmp_path, "events", name)
    return (tmp_path / name).read_bytes()


@pytest.mark.parametrize(
    "row, column, value",
    [
        ("P01-S01,r1,NOPE,3,,", "code", "NOPE"),
        ("P01-S01,r1,ASSIGN,abc,,", "time_s", "abc"),
        ("P01-S01,r1,ASSIGN,nan,,", "time_s", "nan"),
        ("P01-S01,r1,ASSIGN,500,,", "time_s", "500"),  # beyond the 68.3 s recording
        ("P01-S01,r1,ASSIGN,3,9,", "end_s", "9"),  # a point code has no end
        ("P01-S01,r1,HWTALK,9,3,", "end_s", "3"),
        ("P01-S01,nobody,ASSIGN,3,,", "rater", "nobody"),
        ("P09-S09,r1,ASSIGN,3,,", "rater", "r1"),
    ],
)
@pytest.mark.usefixtures("study")
def test_a_bad_row_names_line_column_value_and_nothing_is_imported(
    runner, tmp_path, row, column, value
):
    text = HEADER + "P01-S01,r1,ASSIGN,1.5,,fine\n" + row + "\n"
    result = run_import(runner, tmp_path, text)
    assert result.exit_code == 1
    assert f"events.csv, line 3, column '{column}'" in result.output
    assert f"(value '{value}')" in result.output
    assert event_count() == 0


@pytest.mark.usefixtures("study")
def test_summary_measures_in_wide_and_sessions(runner, tmp_path):
    text = HEADER + "".join(
        [
            "P01-S01,r1,ASSIGN,1,,\n", "P01-S01,r1,ASSIGN,5,,\n", "P01-S01,r1,RATIONALE,6,,\n",
            "P01-S01,r1,HWTALK,10,40,\n",
            "P01-S01,r2,ASSIGN,2,,\n", "P01-S01,r2,RATIONALE,3,,\n", "P01-S01,r2,TAILOR,4,,\n",
        ]
    )  # fmt: skip
    assert run_import(runner, tmp_path, text).exit_code == 0
    wide = {(r["session_id"], r["rater"]): r for r in run_export(runner, tmp_path, "wide", "w.csv")}
    r1, r2 = wide["P01-S01", "r1"], wide["P01-S01", "r2"]
    assert float(r1["HWC_ASSIGN_n"]) == 2 and float(r2["HWC_ASSIGN_n"]) == 1
    assert float(r1["HWC_assigning_n"]) == 3 and float(r2["HWC_assigning_n"]) == 3
    assert float(r1["HWC_rationale_ratio"]) == 0.5 and float(r2["HWC_rationale_ratio"]) == 1
    assert float(r1["HWC_homework_seconds"]) == 30 and float(r2["HWC_homework_seconds"]) == 0
    assert float(r1["HWC_assigning_rate"]) == pytest.approx(3 / (68.3 / 60))
    assert float(wide["P01-S02", "r1"]["HWC_ASSIGN_n"]) == 0  # coded, no events: 0
    assert wide["P01-S02", "r1"]["HWC_rationale_ratio"] == ""  # 0 / 0: missing
    sessions = {r["session_id"]: r for r in run_export(runner, tmp_path, "sessions", "s.csv")}
    assert float(sessions["P01-S01"]["HWC_ASSIGN_n"]) == 1.5  # the pair mean
    assert float(sessions["P01-S01"]["HWC_rationale_ratio"]) == 0.75
    book = run_export(runner, tmp_path, "codebook", "c.csv")
    rules = {r["column"]: r["scoring_rule"] for r in book if r["export"] == "rule"}
    assert (
        "(number of events coded RATIONALE) / (number of events coded ASSIGN)"
        in rules["HWC_rationale_ratio"]
    )
    codes = next(r for r in book if r["export"] == "events" and r["column"] == "code")
    assert "ASSIGN = Homework assigned" in codes["anchors"]


@pytest.mark.parametrize("fmt", ["sav", "dta"])
@pytest.mark.parametrize("kind", ["wide", "sessions"])
@pytest.mark.usefixtures("study")
def test_event_measures_reach_spss_and_stata_files_with_labels(runner, tmp_path, fmt, kind):
    import pyreadstat

    text = HEADER + "".join(
        [
            "P01-S01,r1,ASSIGN,1,,\n", "P01-S01,r1,ASSIGN,5,,\n", "P01-S01,r1,RATIONALE,6,,\n",
            "P01-S01,r1,HWTALK,10,40,\n",
            "P01-S01,r2,ASSIGN,2,,\n", "P01-S01,r2,RATIONALE,3,,\n", "P01-S01,r2,TAILOR,4,,\n",
        ]
    )  # fmt: skip
    assert run_import(runner, tmp_path, text).exit_code == 0
    path = tmp_path / f"{kind}.{fmt}"
    result = runner.invoke(args=["export", kind, "-o", str(path)])
    assert result.exit_code == 0, result.output
    read = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    frame, meta = read(str(path))
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["HWC_ASSIGN_n"] == "Number of 'Homework assigned' events"
    assert labels["HWC_assigning_n"] == "Number of assigning events"
    assert labels["HWC_rationale_ratio"] == "Rationales per assigned homework"
    assert labels["HWC_assigning_rate"] == "Assigning behaviours per minute"
    assert labels["HWC_homework_seconds"] == "Time spent on homework (seconds)"
    if kind == "wide":
        rows = frame.set_index(["session_id", "rater"])
        r1, r2 = rows.loc[("P01-S01", "r1")], rows.loc[("P01-S01", "r2")]
        assert (r1["HWC_ASSIGN_n"], r2["HWC_ASSIGN_n"]) == (2, 1)
        assert r1["HWC_rationale_ratio"] == 0.5 and r1["HWC_homework_seconds"] == 30
        assert r1["HWC_assigning_rate"] == pytest.approx(3 / (68.3 / 60))
        assert (
            rows.loc[("P01-S02", "r1"), "HWC_rationale_ratio"]
            != rows.loc[("P01-S02", "r1"), "HWC_rationale_ratio"]
        )  # 0 / 0: missing (NaN)
    else:
        row = frame.set_index("session_id").loc["P01-S01"]
        assert row["HWC_ASSIGN_n"] == 1.5 and row["HWC_rationale_ratio"] == 0.75
        assert row["HWC_assigning_rate"] == pytest.approx(3 / (68.3 / 60))
