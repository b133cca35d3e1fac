"""Exports of any scale: long with an N/A marker R and pandas read without guessing, wide and
sessions by the rules (N/A missing, prorated sums), the codebook with categories, anchors and
the N/A code."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rater.export.service import Options, build, export_to
from rater.extensions import db
from rater.rating.importer import import_ratings
from rater.study.instrument_store import current_versions

# r1 answers every TCS item (3) but TCS_4 is missing; r2 all 2s. HWS: r1 N/A, r2 a score.
R1 = {f"TCS_{i}": 3 for i in range(1, 12) if i != 4}
R2 = {f"TCS_{i}": 2 for i in range(1, 12)}
HWS1 = {"HWS_rationale": "na", "HWS_type": "behavioural;x", "HWS_tasks": 0, "HWS_comment": "a"}
HWS2 = {"HWS_rationale": 4, "HWS_type": "behavioural", "HWS_tasks": 7}


def _cells(answer) -> str:
    """The score, value and not_applicable cells of a row."""
    if answer == "na":
        return ",,1"
    if isinstance(answer, str):
        return f',"{answer.split(";")[0]}",0'
    return f"{answer},,0"


@pytest.fixture
def exported(factory):
    for name in ("r1", "r2"):
        factory.user(name)
    factory.session("P01-S01")
    current_versions()
    rows = ["session_id,rater,instrument,item,score,value,not_applicable,purpose"]
    for rater, purpose, answers in (
        ("r1", "main", {**R1, **HWS1}),
        ("r2", "double", {**R2, **HWS2}),
    ):
        for item, answer in answers.items():
            head = f"P01-S01,{rater},{item.split('_')[0]},{item}"
            rows.append(f"{head},{_cells(answer)},{purpose}")
    import_ratings(("\n".join(rows) + "\n").encode(), "in.csv", allow_incomplete=True)
    db.session.commit()


def _long_csv() -> bytes:
    target = io.BytesIO()
    export_to("long", "csv", target, Options())
    return target.getvalue()


@pytest.mark.usefixtures("exported")
def test_long_reads_in_pandas_without_guessing():
    long = pd.read_csv(io.BytesIO(_long_csv()))
    assert long["score"].dtype == "float64" and long["not_applicable"].dtype == "int64"
    na = long[long["item"] == "HWS_rationale"].set_index("rater")
    assert np.isnan(na.loc["r1", "score"]) and na.loc["r1", "not_applicable"] == 1
    assert na.loc["r2", "score"] == 4 and na.loc["r2", "not_applicable"] == 0
    kinds = long.set_index(["rater", "item"])
    assert kinds.loc[("r2", "HWS_type"), "value"] == "behavioural"
    assert np.isnan(kinds.loc[("r2", "HWS_type"), "score"])
    assert kinds.loc[("r1", "HWS_comment"), "value"] == "a"


@pytest.mark.r
@pytest.mark.usefixtures("exported")
def test_long_reads_in_r_with_na(tmp_path: Path):
    path = tmp_path / "long.csv"
    path.write_bytes(_long_csv())
    script = (
        "d <- read.csv(commandArgs(TRUE)[1], stringsAsFactors = FALSE)\n"
        "r <- d[d$item == 'HWS_rationale' & d$rater == 'r1', ]\n"
        "cat(class(d$score), class(d$not_applicable), is.na(r$score), r$not_applicable,"
        " sum(is.na(d$score)), sep = ' ')\n"
    )
    done = subprocess.run(
        ["Rscript", "--vanilla", "-e", script, str(path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    # integer scores, integer marker; N/A and the nominal/text rows are R's NA in score
    assert done.stdout.split() == ["integer", "integer", "TRUE", "1", "4"]


@pytest.mark.usefixtures("exported")
def test_wide_and_sessions_follow_the_rules():
    wide = build("wide", Options()).set_index("rater")
    assert pd.isna(wide.loc["r1", "HWS_rationale"]) and wide.loc["r2", "HWS_rationale"] == 4
    assert wide.loc["r1", "HWS_type"] == "behavioural" and wide.loc["r1", "HWS_comment"] == "a"
    # TCS_total: a sum prorated when one item is missing (max_missing = 1)
    assert wide.loc["r1", "TCS_total"] == pytest.approx(3 * 11)
    assert wide.loc["r2", "TCS_total"] == pytest.approx(2 * 11)
    sessions = build("sessions", Options()).iloc[0]
    assert sessions["TCS_1"] == 2.5 and sessions["TCS_4"] == 2  # mean of the ratings used
    assert sessions["HWS_rationale"] == 4  # N/A is missing: the other rating's score
    assert sessions["HWS_type"] == "behavioural"  # both ratings agree
    assert pd.isna(sessions["HWS_tasks"]) is False and sessions["HWS_tasks"] == 3.5


@pytest.mark.usefixtures("exported")
def test_codebook_has_categories_anchors_and_the_na_code():
    book = build("codebook", Options())
    rows = book[book["export"] == "wide"].set_index("column")
    assert rows.loc["TCS_1", "allowed_values"] == "0-6"
    assert rows.loc["TCS_1", "anchors"].startswith("0 = No agenda; 2 = ")
    assert rows.loc["HWS_type", "type"] == "string"
    assert "behavioural = Behavioural (activity, exposure)" in rows.loc["HWS_type", "anchors"]
    assert (
        "not applicable ('No homework assigned'): long not_applicable = 1"
        in (rows.loc["HWS_rationale", "allowed_values"])
    )
    assert rows.loc["HWS_tasks", "allowed_values"] == ">=0"
    long = book[book["export"] == "long"].set_index("column")
    assert long.loc["not_applicable", "allowed_values"] == "0|1"
    rule = book[(book["export"] == "rule") & (book["column"] == "TCS_total")].iloc[0]
    assert "when up to 1 of them are missing or not applicable" in rule["scoring_rule"]
