"""``rater reliability``: text and JSON from the same report."""

from __future__ import annotations

import json
import re

import pytest


@pytest.mark.usefixtures("demo")
def test_text_report(runner):
    result = runner.invoke(args=["reliability", "--instrument", "GHES"])
    assert result.exit_code == 0, result.output
    assert "GHES — Global Homework Engagement Scale" in result.output
    assert "ICC(Q,khat)" in result.output and "Calibration round" in result.output
    assert "StHAR" not in result.output.split("Calibration round")[0]
    # pairs named as on the pages: a hyphen could be part of a user name
    assert re.search(r"^    rater\d – rater\d n=\d+: ICC\(A,2\)", result.output, re.M)


@pytest.mark.usefixtures("demo")
def test_json_report_has_the_documented_shape(runner):
    result = runner.invoke(args=["reliability", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {
        "min_sessions", "bands", "counts", "instruments",
        "pairs", "pair_summary", "design", "calibration", "consistency",
    }  # fmt: skip
    # the demo codes a share of its sessions with the homework coding sheet (HWC)
    assert [i["code"] for i in data["instruments"]] == ["GHES", "HWC", "StHAR"]
    row = next(r for r in data["pairs"] if r["coefficient"] == "ICC(A,2)")
    assert set(row) >= {"instrument", "measure", "rater_1", "rater_2", "n", "value", "note"}
    assert all(r["value"] is not None or r["note"] for r in data["design"])


@pytest.mark.usefixtures("demo")
def test_unknown_instrument_fails(runner):
    result = runner.invoke(args=["reliability", "--instrument", "NOPE"])
    assert result.exit_code == 1
    assert "Unknown instrument" in result.output


def refuse_constant(name: str) -> float:
    raise ValueError(f"not strict JSON: {name}")


@pytest.mark.usefixtures("shipped_demo")
def test_json_of_the_shipped_demo_is_strict_json(runner):
    """The default demo has ICC(A,2) intervals without a lower bound (it exited 1 on −inf)."""
    result = runner.invoke(args=["reliability", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output, parse_constant=refuse_constant)
    unbounded = [r for r in data["pairs"] if r["ci_low_infinite"] == "-inf"]
    assert unbounded and all(r["ci_low"] is None for r in unbounded)
    assert all(r["coefficient"] == "ICC(A,2)" for r in unbounded)
    text = runner.invoke(args=["reliability"]).output
    assert "[−∞, " in text and "-0.00" not in text
