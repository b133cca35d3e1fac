"""Plots: SVG text for every case, drift numbers by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from rater.reliability import plots
from rater.reliability.results import Estimate, NotEnoughData, PairResult


def paired_rows(rows):
    """rows: (session, rater_1, rater_2, value_1, value_2, submitted month of both)."""
    return pd.DataFrame(
        [
            {"instrument": "I", "measure": "M", "kind": "score", "session_id": s,
             "session_number": 1, "patient": "P", "rater_1": r1, "rater_2": r2,
             "value_1": v1, "value_2": v2,
             "submitted_at_1": pd.Timestamp(f"2024-{m:02d}-10"),
             "submitted_at_2": pd.Timestamp(f"2024-{m:02d}-12")}
            for s, r1, r2, v1, v2, m in rows
        ]
    )  # fmt: skip


def test_drift_table_by_month_and_block():
    rows = [("S1", 3, 2, 1), ("S2", 4, 3, 1), ("S3", 3, 2, 1)]
    data = paired_rows([(s, "ann", "bob", a, b, m) for s, a, b, m in rows])
    data = pd.concat([data, paired_rows([("S4", "ann", "cid", 2, 2, 2)])])
    table = plots.drift_table(data).set_index(["rater", "period"])
    assert table.loc[("ann", "2024-01"), "mean_difference"] == pytest.approx(1.0)
    assert table.loc[("ann", "2024-01"), "n"] == 3
    assert bool(table.loc[("ann", "2024-01"), "flagged"])  # |1.0| > 0.5 over 3 sessions
    assert table.loc[("bob", "2024-01"), "mean_difference"] == pytest.approx(-1.0)
    assert not table.loc[("ann", "2024-02"), "flagged"]
    blocks = plots.drift_table(data, by="block")
    assert set(blocks["period"]) == {"001–010"}
    with pytest.raises(ValueError):
        plots.drift_table(data, by="week")


def test_svgs_render_and_handle_missing_data():
    data = paired_rows([(f"S{i}", "ann", "bob", i % 5, (i + 1) % 5, 1 + i % 3) for i in range(8)])
    pairs = [
        PairResult("I", "M", "score", "ann", "bob", 8, {"ICC(A,2)": Estimate(0.8, 0.5, 0.9)}),
        PairResult("I", "M", "score", "ann", "cid", 2, {"ICC(A,2)": NotEnoughData("2 sessions")}),
    ]
    for svg in (
        plots.heatmap_svg(pairs, ["ann", "bob", "cid"], "M score"),
        plots.bland_altman_svg(data, "ann", "bob", "M score"),
        plots.drift_svg(data, "M score"),
        plots.drift_svg(data, "M score", by="block"),
    ):
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert "M score" in svg
    assert "0.80" in plots.heatmap_svg(pairs, ["ann", "bob", "cid"], "t")
    assert "fewer than 2" in plots.bland_altman_svg(data.iloc[:1], "ann", "bob", "t")
    assert "No double-coded" in plots.drift_svg(data.iloc[0:0], "t")
    assert "No rater pairs" in plots.heatmap_svg([], ["ann"], "t")


def test_plots_without_pairs_show_the_reason_instead_of_an_empty_figure():
    reason = "No rater pair: no two raters both rated sessions t−1 and t."
    heatmap = plots.heatmap_svg([], ["ann", "bob", "cid"], "Total", no_pairs=reason)
    drift = plots.drift_svg(paired_rows([])[:0], "Total", no_pairs=reason)
    for svg in (heatmap, drift):
        assert svg.startswith("<svg") and "no two raters" in svg
        assert "ann" not in svg  # no axes, no grid: only the message


def test_bland_altman_plots_share_one_scale_and_skip_pairs_below_the_minimum():
    wide = [(f"S{i}", "ann", "bob", 0, 4, 1) for i in range(3)]
    wide += [(f"S{i}", "ann", "bob", 2, 2, 1) for i in range(3, 6)]
    narrow = [(f"T{i}", "ann", "cid", 2 + i % 2, 2, 1) for i in range(6)]
    few = [(f"U{i}", "bob", "cid", 0, 4, 1) for i in range(3)]  # 3 sessions: below 5
    data = paired_rows(wide + narrow + few)
    (x_low, x_high), (y_low, y_high) = plots.bland_altman_limits(data, min_n=5)
    # every difference of the pairs with 5+ sessions fits: ann-bob reaches -4
    assert y_low < -4 and y_high > 4 and y_low == -y_high
    assert x_low < 2 and x_high > 2.5  # the means run from 2 to 2.5
    # the pair with 3 sessions (differences of -4 at mean 2) is left out of the x range too
    only_narrow = plots.bland_altman_limits(paired_rows(narrow + few), min_n=5)
    assert only_narrow[1][1] < 4
    below = plots.bland_altman_svg(data, "bob", "cid", "t", min_n=5)
    assert "fewer than 5 shared sessions" in below
    assert plots.bland_altman_limits(paired_rows(few), min_n=5) is None


def test_heatmap_shows_each_pair_once():
    pairs = [
        PairResult("I", "M", "score", "ann", "bob", 8, {"ICC(A,2)": Estimate(0.81, 0.5, 0.9)}),
        PairResult("I", "M", "score", "ann", "cid", 9, {"ICC(A,2)": Estimate(0.42, 0.1, 0.7)}),
    ]
    svg = plots.heatmap_svg(pairs, ["ann", "bob", "cid"], "t")
    assert svg.count(">0.81<") == 1 and svg.count(">0.42<") == 1
