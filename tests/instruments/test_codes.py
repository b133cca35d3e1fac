"""Behaviour codes and summary measures of events (the pure core)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rater.instruments import InstrumentError, MeasureKind, load_instrument, parse_instrument

EXAMPLE = Path(__file__).resolve().parents[2] / "instruments" / "examples" / "homework_coding.toml"

SHEET = """
code = "MI"
name = "Reflections and questions"
[[codes]]
code = "Q"
label = "Question"
key = "q"
group = "therapist"
[[codes]]
code = "RS"
label = "Simple reflection"
key = "s"
group = "therapist"
[[codes]]
code = "RC"
label = "Complex reflection"
key = "c"
group = "therapist"
[[codes]]
code = "CT"
label = "Change talk"
key = "t"
group = "patient"
[[summaries]]
code = "R_Q"
label = "Reflections per question"
rule = "ratio"
numerator = ["RS", "RC"]
denominator = ["Q"]
[[summaries]]
code = "pct_CR"
label = "Complex reflections (%)"
rule = "percent"
numerator = ["RC"]
denominator = ["RS", "RC"]
[[summaries]]
code = "R_n"
label = "Reflections"
rule = "count"
of = ["RS", "RC"]
[[summaries]]
code = "T_rate"
label = "Therapist behaviours per minute"
rule = "rate"
of = ["therapist"]
"""


def _events(rows):
    return pd.DataFrame(rows, columns=["rating_id", "code", "time_s", "end_s"]).astype(
        {"time_s": "float64", "end_s": "float64"}
    )


def test_counts_ratios_percentages_and_rates_per_rating():
    sheet = parse_instrument(SHEET.encode(), "mi.toml")
    events = _events(
        [
            (1, "Q", 1, None),
            (1, "Q", 5, None),
            (1, "RS", 7, None),
            (1, "RC", 9, None),
            (1, "RC", 12, None),
            (1, "CT", 13, None),
            (2, "RS", 3, None),
            (9, "Q", 3, None),  # a rating not asked for
            (1, "ELSE", 3, None),  # another sheet's code
        ]
    )
    ratings = pd.Index([1, 2, 3], name="rating_id")
    minutes = pd.Series([10.0, 20.0, 30.0], index=ratings)
    out = sheet.event_summaries(events, ratings, minutes)
    assert out.loc[1, "MI_Q_n"] == 2 and out.loc[1, "MI_RC_n"] == 2
    assert out.loc[1, "MI_therapist_n"] == 5 and out.loc[1, "MI_patient_n"] == 1
    assert out.loc[1, "R_Q"] == 1.5
    assert out.loc[1, "pct_CR"] == pytest.approx(100 * 2 / 3)
    assert out.loc[1, "R_n"] == 3
    assert out.loc[1, "T_rate"] == 0.5
    assert math.isnan(out.loc[2, "R_Q"])  # no question: no ratio
    assert out.loc[2, "pct_CR"] == 0
    assert out.loc[3].drop(["R_Q", "pct_CR"]).tolist() == [0] * (len(out.columns) - 2)
    assert list(out.index) == [1, 2, 3]
    kinds = {m.code: m.kind for m in sheet.measures()}
    assert kinds["MI_Q_n"] == MeasureKind.CODE_COUNT and kinds["R_Q"] == MeasureKind.SUMMARY


def test_segments_give_durations_and_example_sheet_loads():
    sheet = load_instrument(EXAMPLE)
    assert {c.code for c in sheet.codes if c.segment} == {"HWTALK"}
    events = _events([(1, "HWTALK", 60, 90.5), (1, "HWTALK", 200, 230), (1, "ASSIGN", 70, np.nan)])
    out = sheet.event_summaries(events, pd.Index([1]), pd.Series([40.0], index=[1]))
    assert out.loc[1, "HWC_homework_seconds"] == pytest.approx(60.5)
    assert out.loc[1, "HWC_assigning_rate"] == pytest.approx(1 / 40)
    assert sheet.items == [] and sheet.tolerance == 2.0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.replace('key = "s"', 'key = "q"'), "key 'q' used by more than one code"),
        (lambda s: s.replace('key = "s"', 'key = "j"'), "code RS: field key: Value error, key "
         "'j' is kept by the rating page"),
        (lambda s: s.replace('denominator = ["Q"]', 'denominator = ["QQ"]'),
         "summary R_Q: unknown code or group 'QQ'"),
        (lambda s: s.replace('rule = "count"', 'rule = "duration"'),
         "summary R_n: duration needs segment codes, RS marks a point in time"),
        (lambda s: s.replace('of = ["RS", "RC"]', 'numerator = ["RS"]'),
         "summary R_n: Value error, rule 'count' needs 'of'"),
        (lambda s: s.split("[[codes]]")[0], "an instrument needs items or behaviour codes"),
    ],
)  # fmt: skip
def test_bad_coding_sheets_name_the_code_or_summary(change, expected):
    with pytest.raises(InstrumentError) as info:
        parse_instrument(change(SHEET).encode(), "mi.toml")
    assert expected in str(info.value)
