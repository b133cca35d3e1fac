"""Disagreements of every kind of item: ordinal scores past the threshold, counts past theirs
(half the larger count, or the file's ``disagreement``), different categories of a
single-choice nominal item, and "not applicable" against an answer."""

from __future__ import annotations

import pandas as pd
import pytest

from rater.instruments import parse_instrument
from rater.rating.frame import RATINGS_COLUMNS
from rater.reliability import consensus

SHEET = """
code = "D"
name = "Kinds"
scale = {{ min = 1, max = 5 }}
{extra}
[[items]]
code = "D_ord"
label = "Ordinal"
not_applicable = true
[[items]]
code = "D_type"
label = "Nominal"
kind = "nominal"
categories = {{ a = "A", b = "B", c = "C" }}
[[items]]
code = "D_many"
label = "Several"
kind = "nominal"
multiple = true
categories = {{ a = "A", b = "B" }}
[[items]]
code = "D_n"
label = "Count"
kind = "count"
"""


def _instrument(extra: str = ""):
    return parse_instrument(SHEET.format(extra=extra).encode(), "d.toml")


def _frame(sessions: dict[str, dict[str, tuple]]) -> pd.DataFrame:
    """session -> item -> (answer of r1, answer of r2); "na" is not applicable."""
    rows = []
    for s, (session, items) in enumerate(sessions.items()):
        for r, rater in enumerate(("r1", "r2")):
            for item, answers in items.items():
                answer = answers[r]
                text = isinstance(answer, str) and answer != "na"
                rows.append(
                    {
                        "rating_id": 2 * s + r + 1,
                        "session_id": session,
                        "patient": "P01",
                        "therapist": "T1",
                        "session_number": s + 1,
                        "phase": "I",
                        "rater": rater,
                        "purpose": "main" if r == 0 else "double",
                        "instrument": "D",
                        "instrument_version": 1,
                        "item": item,
                        "subscale": None,
                        "score": answer if isinstance(answer, int) else pd.NA,
                        "value": answer if text else None,
                        "not_applicable": int(answer == "na"),
                        "rating_status": "submitted",
                        "submitted_at": pd.Timestamp("2026-01-01"),
                    }
                )
    frame = pd.DataFrame(rows, columns=RATINGS_COLUMNS)
    frame["score"] = frame["score"].astype("Int64")
    return frame


SESSIONS = {
    "S1": {"D_ord": (1, 3), "D_type": ("a", "a"), "D_n": (4, 4)},  # ordinal: 2 points
    "S2": {"D_ord": (2, 3), "D_type": ("a", "c"), "D_n": (4, 5)},  # categories differ
    "S3": {"D_ord": ("na", 4), "D_type": ("b", "b"), "D_n": (4, 4)},  # N/A against a score
    "S4": {"D_ord": (2, 2), "D_type": ("b", "b"), "D_n": (10, 20)},  # count: 10 >= 20 / 2
    "S5": {"D_ord": (2, 2), "D_type": ("b", "b"), "D_n": (10, 14)},  # 4 < 7: no
    "S6": {"D_ord": (2, 2), "D_many": ("a;b", "a"), "D_n": (0, 1)},  # multiple: never; 1 >= 1
    "S7": {"D_ord": ("na", "na"), "D_type": ("na", "c"), "D_n": (3, 3)},  # N/A vs category
    "S8": {"D_many": ("na", "a;b")},  # N/A against an answer of a multiple-choice item
}


@pytest.mark.usefixtures("app")
def test_every_kind_can_disagree():
    found = {d.session_id: d for d in consensus.disagreements(_frame(SESSIONS), [_instrument()])}
    assert sorted(found) == ["S1", "S2", "S3", "S4", "S6", "S7", "S8"]
    assert found["S1"].items == (("D_ord", 2),) and found["S1"].mismatches == ()
    assert found["S2"].items == () and found["S2"].mismatches == (("D_type", "a ≠ c"),)
    assert found["S3"].mismatches == (("D_ord", "N/A ≠ 4"),)
    assert found["S4"].items == (("D_n", 10),)
    assert found["S6"].items == (("D_n", 1),) and found["S6"].mismatches == ()
    assert found["S7"].mismatches == (("D_type", "N/A ≠ c"),)
    assert found["S8"].mismatches == (("D_many", "N/A ≠ a;b"),)
    order = [d.session_id for d in consensus.disagreements(_frame(SESSIONS), [_instrument()])]
    assert order[:2] == ["S4", "S1"]  # largest difference first


@pytest.mark.parametrize(("limit", "expected"), [(3, ["S4", "S5"]), (11, [])])
@pytest.mark.usefixtures("app")
def test_the_files_disagreement_sets_the_count_threshold(limit, expected):
    sessions = {k: {"D_n": v["D_n"]} for k, v in SESSIONS.items() if "D_n" in v}
    found = consensus.disagreements(_frame(sessions), [_instrument(f"disagreement = {limit}")])
    assert sorted(d.session_id for d in found) == expected


def test_disagreements_page_names_categories_and_not_applicable(client, auth, factory, monkeypatch):
    factory.user("coord", "coordinator")
    found = consensus.disagreements(_frame(SESSIONS), [_instrument()])
    monkeypatch.setattr("rater.reliability.cache.disagreements", lambda: found)
    assert auth.login("coord").status_code == 302
    page = client.get("/reliability/disagreements").get_data(as_text=True)
    assert "D_type (a ≠ c)" in page and "D_ord (N/A ≠ 4)" in page and "D_n (10)" in page
