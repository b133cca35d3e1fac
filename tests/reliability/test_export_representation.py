"""The reliability export writes unbounded limits as -inf and never a negative zero (CSV, xlsx)."""

from __future__ import annotations

import dataclasses
import io
import math
import shutil
import subprocess

import pandas as pd
import pytest
from openpyxl import load_workbook

from rater.export import tables
from rater.export.writer import write_csv, write_xlsx
from rater.reliability.report import report
from rater.reliability.results import Estimate
from tests.reliability.test_report import TINY, every_case_frame


def reliability_table() -> pd.DataFrame:
    rep = report(every_case_frame(), [TINY])
    coefficients = rep.pairs[0].coefficients | {"mean_difference": Estimate(-0.0, -0.0, 0.5)}
    rep.pairs[0] = dataclasses.replace(rep.pairs[0], coefficients=coefficients)
    return tables.reliability_table(rep.to_frames())


def rows_of(frame: pd.DataFrame, measure: str, coefficient: str) -> pd.DataFrame:
    return frame[(frame["measure"] == measure) & (frame["coefficient"] == coefficient)]


def csv_text(table: pd.DataFrame) -> str:
    buffer = io.BytesIO()
    write_csv(table, buffer)
    return buffer.getvalue().decode("utf-8")


def test_csv_writes_minus_inf_that_pandas_reads_back_and_no_negative_zero():
    text = csv_text(reliability_table())
    back = pd.read_csv(io.StringIO(text))
    assert back["value"].dtype == float and back["ci_low"].dtype == float
    opposed = rows_of(back, "T1", "ICC(A,2)").iloc[0]
    assert [opposed[k] for k in ("value", "ci_low", "ci_high")] == [-math.inf] * 3
    assert rows_of(back, "T2", "ICC(A,2)").iloc[0]["ci_low"] == -math.inf
    assert math.isnan(rows_of(back, "T3", "ICC(A,2)").iloc[0]["value"])  # undefined: empty
    assert ",-inf,-inf,-inf," in text
    assert "-0.0," not in text and ",-0," not in text
    diff = rows_of(back, "T1", "mean_difference").iloc[0]
    assert (diff["value"], diff["ci_low"]) == (0.0, 0.0)


def test_xlsx_writes_minus_inf_as_text_and_no_negative_zero():
    buffer = io.BytesIO()
    write_xlsx({"reliability": reliability_table()}, buffer)
    sheet = load_workbook(io.BytesIO(buffer.getvalue()))["reliability"]
    rows = list(sheet.values)
    head = rows[0]
    cells = [dict(zip(head, r, strict=True)) for r in rows[1:]]
    (opposed,) = [c for c in cells if (c["measure"], c["coefficient"]) == ("T1", "ICC(A,2)")]
    assert [opposed[k] for k in ("value", "ci_low", "ci_high")] == ["-inf"] * 3
    (diff,) = [c for c in cells if (c["measure"], c["coefficient"]) == ("T1", "mean_difference")]
    assert (diff["value"], diff["ci_low"]) == (0, 0)
    assert math.copysign(1, diff["value"]) == 1
    back = pd.read_excel(io.BytesIO(buffer.getvalue()), sheet_name="reliability")
    assert pd.to_numeric(back["ci_low"]).min() == -math.inf


@pytest.mark.r
def test_r_reads_the_csv_minus_inf_as_a_number(tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    path = tmp_path / "reliability.csv"
    path.write_text(csv_text(reliability_table()), encoding="utf-8")
    script = (
        f'd <- read.csv("{path}"); r <- readr::read_csv("{path}", show_col_types = FALSE); '
        "x <- d[d$measure == 'T1' & d$coefficient == 'ICC(A,2)', ]; "
        "y <- r[r$measure == 'T1' & r$coefficient == 'ICC(A,2)', ]; "
        "cat(class(d$ci_low), x$value, x$ci_low, class(r$ci_low), y$ci_low)"
    )
    done = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["numeric", "-Inf", "-Inf", "numeric", "-Inf"]
