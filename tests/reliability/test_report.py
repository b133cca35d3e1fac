"""The reliability report against hand-computed cases, pingouin and the stats core."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.stats import ttest_rel
from sklearn.metrics import cohen_kappa_score

from rater.instruments import Instrument, load_instruments
from rater.reliability import stats
from rater.reliability.calibration import calibration_icc
from rater.reliability.report import report
from rater.reliability.results import MIN_SESSIONS, Estimate, NotEnoughData, band
from rater.reliability.values import (
    PART_COLUMNS,
    cross_session_parts,
    cross_session_values,
    measure_values,
    measures_of,
)
from rater.reliability.whole_design import cross_session_design
from tests.support.simulated import simulated_frame

ROOT = Path(__file__).resolve().parents[2]
INSTRUMENTS = load_instruments(ROOT / "instruments")

TINY = Instrument.model_validate(
    {
        "code": "TINY",
        "name": "Tiny scale",
        "items": [
            {"code": f"T{i}", "label": f"Item {i}", "description": "d", "reverse": i == 3,
             "anchors": {p: f"a{p}" for p in range(5)}}
            for i in (1, 2, 3)
        ],
        "scores": [{"code": "TINY_score", "label": "Tiny score", "rule": "mean",
                    "items": ["T1", "T2", "T3"]}],
    }
)  # fmt: skip


def tidy(rows: list[tuple[str, str, str, dict[str, int]]]) -> pd.DataFrame:
    """Ratings frame from (session, rater, purpose, {item: score}) rows of instrument TINY."""
    number = {s: i + 1 for i, s in enumerate(dict.fromkeys(r[0] for r in rows))}
    records = []
    for rating_id, (session, rater, purpose, scores) in enumerate(rows, start=1):
        for item, score in scores.items():
            records.append(
                {
                    "rating_id": rating_id,
                    "session_id": session,
                    "patient": "P1",
                    "therapist": "T1",
                    "session_number": number[session],
                    "phase": "I",
                    "rater": rater,
                    "purpose": purpose,
                    "instrument": "TINY",
                    "instrument_version": 1,
                    "item": item,
                    "subscale": None,
                    "score": score,
                    "rating_status": "submitted",
                    "submitted_at": pd.Timestamp("2024-03-01"),
                }
            )
    return pd.DataFrame.from_records(records)


def double_coded(a: list[int], b: list[int], item: str = "T1") -> pd.DataFrame:
    rows = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        rows.append((f"S{i}", "ann", "main", {item: x}))
        rows.append((f"S{i}", "bob", "double", {item: y}))
    return tidy(rows)


def pair(rep, measure: str = "T1"):
    (found,) = rep.pairs_of("TINY", measure)
    return found


# ----------------------------------------------------------------------- hand-computed cases


def test_pair_coefficients_by_hand():
    # ann 0 1 2 3 4, bob 1 1 3 3 4.  Grand mean 2.2; two-way ANOVA by hand:
    # row means .5 1 2.5 3 4: SS_rows = 2 (2.89 + 1.44 + .09 + .64 + 3.24) = 16.6, MSR = 4.15
    # SS_cols = 5 ((2 - 2.2)^2 + (2.4 - 2.2)^2) = 0.4 = MSC; SS_total = 10.2 + 7.4 = 17.6
    # SS_err = 17.6 - 16.6 - 0.4 = 0.6, MSE = 0.15
    # ICC(A,1) = (4.15 - .15) / (4.15 + .15 + 2 (.4 - .15) / 5) = 4 / 4.4
    # ICC(A,2) = (4.15 - .15) / (4.15 + (.4 - .15) / 5) = 4 / 4.2
    rep = report(double_coded([0, 1, 2, 3, 4], [1, 1, 3, 3, 4]), [TINY])
    p = pair(rep)
    assert (p.rater_1, p.rater_2, p.n) == ("ann", "bob", 5)
    assert p.coefficients["ICC(A,1)"].value == pytest.approx(4 / 4.4, abs=1e-12)
    assert p.coefficients["ICC(A,2)"].value == pytest.approx(4 / 4.2, abs=1e-12)
    assert p.coefficients["mean_difference"].value == pytest.approx(-0.4)
    # its CI is the paired t interval (t with n - 1 = 4 df), not mean +- 1.96 se
    ci = ttest_rel([0, 1, 2, 3, 4], [1, 1, 3, 3, 4]).confidence_interval(0.95)
    diff = p.coefficients["mean_difference"]
    assert (diff.ci_low, diff.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # quadratic kappa: observed disagreement sum (a-b)^2 = 2; expected from the margins
    a, b = [0, 1, 2, 3, 4], [1, 1, 3, 3, 4]
    expected = sum((i - j) ** 2 for i in a for j in b) / 5
    assert p.coefficients["kappa_quadratic"].value == pytest.approx(1 - 2 / expected)
    low, high = p.coefficients["ICC(A,2)"].ci_low, p.coefficients["ICC(A,2)"].ci_high
    assert low < p.coefficients["ICC(A,2)"].value < high


def test_fewer_than_minimum_sessions_is_not_enough_data():
    rep = report(double_coded([0, 1, 2, 3], [1, 1, 3, 3]), [TINY])
    for name in ("ICC(A,1)", "ICC(A,2)", "kappa_quadratic", "kappa_linear", "mean_difference"):
        assert isinstance(pair(rep).coefficients[name], NotEnoughData), name
    result = pair(rep).coefficients["ICC(A,2)"]
    assert result.reason == f"4 sessions rated by both (minimum {MIN_SESSIONS})"
    assert str(result).startswith("not enough data — ")
    summary = rep.summary("TINY", "T1")
    assert summary.n_pairs == 1 and summary.n_pairs_with_data == 0
    assert isinstance(summary.statistics["mean"], NotEnoughData)
    assert isinstance(rep.design_result("TINY", "T1").coefficients["ICC(Q,khat)"], NotEnoughData)


def test_no_variance_is_not_enough_data():
    rep = report(double_coded([2] * 6, [2] * 6), [TINY])
    for name in ("ICC(A,1)", "ICC(A,2)", "kappa_quadratic", "kappa_linear"):
        result = pair(rep).coefficients[name]
        assert isinstance(result, NotEnoughData), name
        assert "no variance" in result.reason
    design = rep.design_result("TINY", "T1").coefficients
    assert all(isinstance(v, NotEnoughData) for v in design.values())


def test_calibration_ratings_never_enter_pairs_or_design():
    frame = double_coded([0, 1, 2, 3, 4, 0], [1, 1, 3, 3, 4, 0])
    extra = tidy([("C1", "ann", "calibration", {"T1": 4}), ("C1", "bob", "calibration", {"T1": 0})])
    extra["rating_id"] += 100
    rep = report(pd.concat([frame, extra]), [TINY])
    assert pair(rep).n == 6
    assert rep.design_result("TINY", "T1").n_sessions == 6


def test_scores_use_reverse_keyed_items_and_summaries_by_hand():
    rows = []
    for i in range(6):
        rows.append((f"S{i}", "ann", "main", {"T1": i % 5, "T2": 2, "T3": 4}))
        rows.append((f"S{i}", "bob", "double", {"T1": (i + 1) % 5, "T2": 2, "T3": 0}))
    values = measure_values(tidy(rows), [TINY])
    score = values[values["measure"] == "TINY_score"].set_index(["session_id", "rater"])["value"]
    assert score[("S0", "ann")] == pytest.approx((0 + 2 + 0) / 3)  # T3 = 4 enters as 0
    assert score[("S0", "bob")] == pytest.approx((1 + 2 + 4) / 3)


def test_pair_summary_mean_median_range():
    rng = np.random.default_rng(3)
    rows = []
    for s in range(30):
        raters = [("ann", "bob"), ("ann", "cid"), ("bob", "cid")][s % 3]
        truth = rng.integers(0, 5)
        for r, purpose in zip(raters, ("main", "double"), strict=True):
            rows.append(
                (f"S{s}", r, purpose, {"T1": int(np.clip(truth + rng.integers(-1, 2), 0, 4))})
            )
    rep = report(tidy(rows), [TINY])
    values = [p.coefficients["ICC(A,2)"].value for p in rep.pairs_of("TINY", "T1")]
    stats_ = rep.summary("TINY", "T1").statistics
    assert stats_["mean"].value == pytest.approx(np.mean(values))
    assert stats_["median"].value == pytest.approx(np.median(values))
    assert (stats_["min"].value, stats_["max"].value) == (min(values), max(values))


def test_cross_session_score_uses_the_same_raters_previous_session():
    inst = INSTRUMENTS[1]  # StHAR
    assert inst.code == "StHAR"
    frame = simulated_frame([inst], n_sessions=18, n_raters=1, double_share=0, n_calibration=0)
    values = measure_values(frame, [inst])
    wide = values.pivot(index=["patient", "session_number"], columns="measure", values="value")
    first, second = wide.iloc[0], wide.iloc[1]  # sessions 1 and 2 of patient P000
    a_items = [f"StHAR_A{i}" for i in range(1, 6)]
    r_items = [f"StHAR_R{i}" for i in range(1, 4)]
    assert math.isnan(first["StHAR_total"])  # no session 0
    expected = (first[a_items].sum() + second[r_items].sum()) / 8
    assert second["StHAR_total"] == pytest.approx(expected)


def test_bands_of_koo_and_li():
    assert [band(v) for v in (0.2, 0.5, 0.74, 0.75, 0.9, 0.95)] == [
        "poor", "moderate", "moderate", "good", "excellent", "excellent"
    ]  # fmt: skip


# ------------------------------------------------------------- against pingouin (hypothesis)


def pingouin_pair(long: pd.DataFrame) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pg.intraclass_corr(long, "session_id", "rater", "value").set_index("Type")
    return table["ICC"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_sessions=st.integers(20, 70),
    n_raters=st.integers(2, 4),
)
@example(seed=1737, n_sessions=20, n_raters=2)  # no pair reaches the minimum n
@example(seed=11, n_sessions=70, n_raters=2)  # one pair, many sessions
def test_every_pair_matches_pingouin_and_kappas_match_sklearn(seed, n_sessions, n_raters):
    ghes = INSTRUMENTS[:1]  # one instrument keeps the pingouin loop short
    frame = simulated_frame(ghes, n_sessions=n_sessions, n_raters=n_raters, seed=seed)
    rep = report(frame, ghes, design="none")
    paired = rep.paired
    checked = 0
    for p in rep.pairs:
        rows = paired[
            (paired["measure"] == p.measure)
            & (paired["rater_1"] == p.rater_1)
            & (paired["rater_2"] == p.rater_2)
        ]
        assert len(rows) == p.n
        if p.n < 3:
            continue
        cols = ["session_id", "rater", "value"]
        long = pd.concat(
            [
                rows[["session_id", "rater_1", "value_1"]].set_axis(cols, axis=1),
                rows[["session_id", "rater_2", "value_2"]].set_axis(cols, axis=1),
            ]
        )
        theirs = pingouin_pair(long)
        for ours, key in (("ICC(A,1)", "ICC(A,1)"), ("ICC(A,2)", "ICC(A,k)")):
            result = p.coefficients[ours]
            if isinstance(result, Estimate):
                if ours == "ICC(A,2)" and theirs["ICC(A,1)"] <= -1 + 1e-9:
                    assert result.value == -np.inf  # pingouin wraps round the pole there
                else:
                    assert result.value == pytest.approx(theirs[key], abs=1e-9)
                checked += 1
            else:
                assert p.n < MIN_SESSIONS or not np.isfinite(theirs[key])
        if p.kind == "item" and isinstance(p.coefficients["kappa_quadratic"], Estimate):
            a, b = rows["value_1"].astype(int), rows["value_2"].astype(int)
            for w in ("quadratic", "linear"):
                expected = cohen_kappa_score(a, b, weights=w, labels=list(range(5)))
                assert p.coefficients[f"kappa_{w}"].value == pytest.approx(expected, abs=1e-9)
        diff = p.coefficients["mean_difference"]
        if p.n < MIN_SESSIONS:
            assert isinstance(diff, NotEnoughData)
            continue
        a, b = rows["value_1"].to_numpy(float), rows["value_2"].to_numpy(float)
        assert diff.value == pytest.approx((a - b).mean())
        if np.ptp(a - b) > 0:
            ci = ttest_rel(a, b).confidence_interval(0.95)
            assert (diff.ci_low, diff.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-10)
    assert checked > 0 or all(p.n < MIN_SESSIONS for p in rep.pairs)


def test_design_wide_and_alpha_come_from_the_stats_core():
    frame = simulated_frame(INSTRUMENTS[:1], n_sessions=60, n_raters=4, seed=5)
    rep = report(frame, INSTRUMENTS[:1])
    values = measure_values(frame, INSTRUMENTS[:1])
    data = values[(values["purpose"] != "calibration") & (values["measure"] == "GHES_score")]
    fit = stats.icc_incomplete(data, target="session_id", rater="rater", score="value")
    design = rep.design_result("GHES", "GHES_score")
    assert design.coefficients["ICC(Q,khat)"].value == pytest.approx(fit["ICC(Q,khat)"])
    q = design.coefficients["ICC(Q,khat)"]
    assert (q.ci_low, q.ci_high) == pytest.approx(fit["ICC(Q,khat)_ci"])
    table = data.pivot(index="rater", columns="session_id", values="value").to_numpy()
    assert design.coefficients["alpha_interval"].value == pytest.approx(
        stats.krippendorff_alpha(table, "interval")
    )
    main = values[(values["purpose"] == "main") & (values["kind"] == "item")]
    items = main.pivot(index="rating_id", columns="measure", values="value")
    items["GHES_5"] = 4 - items["GHES_5"]
    alpha = pg.cronbach_alpha(items[[f"GHES_{i}" for i in range(1, 8)]])[0]
    consistency = rep.consistency_of("GHES", "GHES_score").coefficients
    assert consistency["cronbach_alpha"].value == pytest.approx(alpha)


# --------------------------------------------------------------------------- calibration


def calibration_frame(scores: dict[str, list[int]], instrument: str = "TINY") -> pd.DataFrame:
    """Every rater scores T1..T3 of sessions C0, C1, ... (scores listed session by session)."""
    rows = []
    for rater, values in scores.items():
        for s in range(len(values) // 3):
            rows.append(
                (
                    f"C{s}",
                    rater,
                    "calibration",
                    dict(zip(["T1", "T2", "T3"], values[3 * s : 3 * s + 3], strict=True)),
                )
            )
    frame = tidy(rows)
    frame["instrument"] = instrument
    return frame


def test_calibration_icc_is_the_panel_icc_over_session_by_item():
    scores = {"ann": [0, 1, 2, 3, 4, 2], "bob": [1, 1, 2, 4, 4, 1], "cid": [0, 2, 3, 3, 3, 2]}
    frame = calibration_frame(scores)
    value, reason = calibration_icc(frame)
    wide = pd.DataFrame(scores)
    expected = stats.icc(wide).loc["ICC(A,1)", "ICC"]
    assert value == pytest.approx(expected, abs=1e-12)
    assert "6 session x item targets" in reason and "3 raters" in reason


def test_calibration_icc_lowest_across_instruments_and_not_enough_data():
    good = calibration_frame({"ann": [0, 1, 2, 3, 4, 2], "bob": [0, 1, 2, 3, 4, 1]}, "AAA")
    poor = calibration_frame({"ann": [0, 1, 2, 3, 4, 2], "bob": [4, 1, 0, 3, 1, 2]}, "BBB")
    poor["rating_id"] += 100
    value, reason = calibration_icc(pd.concat([good, poor]))
    poor_table = pd.DataFrame({"a": [0, 1, 2, 3, 4, 2], "b": [4, 1, 0, 3, 1, 2]})
    assert value == pytest.approx(stats.icc(poor_table).loc["ICC(A,1)", "ICC"])
    assert "BBB" in reason
    assert calibration_icc(good.iloc[0:0]) == (None, "no calibration ratings submitted yet")
    value, reason = calibration_icc(calibration_frame({"ann": [0, 1, 2], "bob": [0, 1, 2]}))
    assert value is None and "3 session x item targets" in reason


def test_incomplete_calibration_targets_are_left_out():
    frame = calibration_frame({"ann": [0, 1, 2, 3, 4, 2], "bob": [1, 1, 2, 4, 4, 1]})
    frame = frame[
        ~((frame["rater"] == "bob") & (frame["item"] == "T1") & (frame["session_id"] == "C0"))
    ]
    value, _ = calibration_icc(frame)
    expected = stats.icc(pd.DataFrame({"a": [1, 2, 3, 4, 2], "b": [1, 2, 4, 4, 1]})).loc[
        "ICC(A,1)", "ICC"
    ]
    assert value == pytest.approx(expected)


def test_rater_agreement_flags_the_outlier():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, 12)
    scores = {r: list(truth) for r in ("ann", "bob", "cid")}
    scores["dan"] = list(4 - truth)
    rep = report(calibration_frame(scores), [TINY])
    flags = {r.rater: r.needs_training for r in rep.calibration_raters}
    assert flags == {"ann": False, "bob": False, "cid": False, "dan": True}


# --------------------------------------------------------------------------- tables and JSON


def test_frames_and_dict_are_tidy_and_json_able():
    frame = simulated_frame(INSTRUMENTS, n_sessions=40, n_raters=3, seed=2)
    rep = report(frame, INSTRUMENTS)
    frames = rep.to_frames()
    assert set(frames) == {"pairs", "pair_summary", "design", "calibration", "consistency"}
    for table in frames.values():
        assert {"coefficient", "value", "ci_low", "ci_high", "note"} <= set(table.columns)
        missing = table["value"].isna()
        assert (table.loc[missing, "note"].str.startswith("not enough data — ")).all()
    data = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert data["min_sessions"] == MIN_SESSIONS
    assert len(data["pairs"]) == len(frames["pairs"])
    assert {"code": "GHES", "name": INSTRUMENTS[0].name} in data["instruments"]
    assert "GHES_score" in rep.to_text()


def test_empty_frame_gives_an_empty_report():
    empty = simulated_frame(INSTRUMENTS, n_sessions=5, n_raters=2).iloc[0:0]
    rep = report(empty, INSTRUMENTS)
    assert rep.pairs == [] and rep.counts["ratings"] == 0
    assert all(isinstance(s.statistics["mean"], NotEnoughData) for s in rep.summaries)
    json.dumps(rep.to_dict(), allow_nan=False)


# ------------------------------------------------- unbounded and undefined numbers, everywhere


def refuse_constant(name: str) -> float:
    raise ValueError(f"not strict JSON: {name}")


def strict_json(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity (Python's json accepts them)."""
    return json.loads(text, parse_constant=refuse_constant)


def every_case_frame() -> pd.DataFrame:
    """Two raters, 5 sessions: T1 opposed (ICC(A,1) = −5/3, so ICC(A,2) and both bounds −∞),
    T2 with ICC(A,2) 0.43 whose lower bound is −∞, T3 constant (undefined: no variance)."""
    t1 = ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0])
    t2 = ([3, 1, 1, 2, 4], [4, 0, 2, 3, 1])
    rows = []
    for s in range(5):
        for r, (rater, purpose) in enumerate((("ann", "main"), ("bob", "double"))):
            scores = {"T1": t1[r][s], "T2": t2[r][s], "T3": 2}
            rows.append((f"S{s}", rater, purpose, scores))
    return tidy(rows)


def record(data, table: str, measure: str, coefficient: str) -> dict:
    (found,) = [
        r for r in data[table] if (r["measure"], r["coefficient"]) == (measure, coefficient)
    ]
    return found


def test_json_of_every_non_finite_case_is_strict_and_flags_infinities():
    rep = report(every_case_frame(), [TINY])
    data = strict_json(rep.to_json())
    opposed = record(data, "pairs", "T1", "ICC(A,2)")
    assert [opposed[k] for k in ("value", "ci_low", "ci_high", "note")] == [None] * 3 + [""]
    assert [opposed[f"{k}_infinite"] for k in ("value", "ci_low", "ci_high")] == ["-inf"] * 3
    assert record(data, "pairs", "T1", "ICC(A,1)")["value"] == pytest.approx(-5 / 3)
    unbounded = record(data, "pairs", "T2", "ICC(A,2)")
    assert unbounded["value"] == pytest.approx(0.4347826086956522)
    assert (unbounded["ci_low"], unbounded["ci_low_infinite"]) == (None, "-inf")
    assert 0 < unbounded["ci_high"] < 1 and unbounded["ci_high_infinite"] is None
    undefined = record(data, "pairs", "T3", "ICC(A,2)")
    assert undefined["value"] is None and undefined["value_infinite"] is None
    assert undefined["note"] == "not enough data — no variance in the scores"
    for table in ("pairs", "pair_summary", "design", "calibration", "consistency"):
        for row in data[table]:
            assert {f"{k}_infinite" for k in ("value", "ci_low", "ci_high")} <= set(row)
            for k in ("value", "ci_low", "ci_high"):
                assert row[f"{k}_infinite"] is None or row[k] is None
    text = rep.to_text()
    assert "ICC(A,2) −∞ [−∞, −∞] (poor)" in text and "[−∞, 0.95]" in text
    assert "−∞ as a lower limit: the interval has no lower bound" in text


def test_json_flags_plus_infinity_and_leaves_an_undefined_bound_null():
    """+∞ does not occur in the report (every ICC and bound is at most 1, everything else is
    finite), but the representation covers it."""
    rep = report(every_case_frame(), [TINY])
    head = rep.pairs[0]
    coefficients = head.coefficients | {"ICC(A,2)": Estimate(0.5, None, math.inf)}
    rep.pairs[0] = dataclasses.replace(head, coefficients=coefficients)
    (row,) = [r for r in strict_json(rep.to_json())["pairs"][:6] if r["coefficient"] == "ICC(A,2)"]
    assert (row["value"], row["ci_low"], row["ci_high"]) == (0.5, None, None)
    assert (row["ci_low_infinite"], row["ci_high_infinite"]) == (None, "inf")
    assert "0.50 [–, +∞]" in rep.to_text()


def test_negative_zero_is_zero_in_tables_and_json():
    rep = report(every_case_frame(), [TINY])
    coefficients = rep.pairs[0].coefficients | {"mean_difference": Estimate(-0.0, -0.0, 0.5)}
    rep.pairs[0] = dataclasses.replace(rep.pairs[0], coefficients=coefficients)
    table = rep.to_frames()["pairs"]
    row = table[table["coefficient"] == "mean_difference"].iloc[0]
    assert math.copysign(1, row["value"]) == 1 and math.copysign(1, row["ci_low"]) == 1
    assert '"value": -0.0' not in rep.to_json() and '"ci_low": -0.0' not in rep.to_json()


# ------------------------------------------------------------- cross-session scores (StHAR total)

STHAR = INSTRUMENTS[1]
STHAR_TOTAL = next(m for m in measures_of(STHAR) if m.code == "StHAR_total")
A_ITEMS = [f"StHAR_A{i}" for i in range(1, 6)]
R_ITEMS = [f"StHAR_R{i}" for i in range(1, 4)]


def sthar_frame(rows: list[tuple[str, int, str, str, int]]) -> pd.DataFrame:
    """Ratings frame of StHAR from (patient, session number, rater, purpose, score) rows; every
    item of a rating gets ``score`` (rotated by item, so items differ)."""
    records = []
    for rating_id, (patient, number, rater, purpose, score) in enumerate(rows, start=1):
        for j, item in enumerate(STHAR.items):
            records.append(
                {
                    "rating_id": rating_id,
                    "session_id": f"{patient}-S{number:02d}",
                    "patient": patient,
                    "therapist": "T1",
                    "session_number": number,
                    "phase": "I",
                    "rater": rater,
                    "purpose": purpose,
                    "instrument": STHAR.code,
                    "instrument_version": 1,
                    "item": item.code,
                    "subscale": item.subscale,
                    "score": (score + j) % 5,
                    "rating_status": "submitted",
                    "submitted_at": pd.Timestamp("2024-03-01"),
                }
            )
    return pd.DataFrame.from_records(records)


def test_no_pair_reason_says_what_the_data_lack():
    # six patients, sessions 1 and 2 double-coded by different pairs of raters: no rater
    # rated both sessions of a patient, so no rater has an own StHAR total to compare
    rows = []
    for p in range(6):
        rows += [(f"P{p}", 1, "ann", "main", p), (f"P{p}", 1, "bob", "double", p + 1)]
        rows += [(f"P{p}", 2, "cid", "main", p + 2), (f"P{p}", 2, "dan", "double", p)]
    rep = report(sthar_frame(rows), [STHAR])
    total = rep.summary("StHAR", "StHAR_total")
    assert total.n_pairs == 0
    assert total.statistics["mean"].reason == (
        "12 double-coded sessions, but no two raters both rated sessions t−1 and t of a patient "
        "(a rater's value at session t needs their own rating of session t−1)"
    )
    single = report(sthar_frame([r for r in rows if r[3] == "main"]), [STHAR])
    assert single.summary("StHAR", "StHAR_total").statistics["mean"].reason == (
        "no double-coded sessions yet"
    )
    # an item nobody scored twice (N/A in every double rating): no pair, and why
    frame = double_coded([0, 1, 2, 3, 4], [1, 1, 3, 3, 4])
    frame.loc[(frame["rater"] == "bob"), "item"] = "T2"
    rep = report(frame, [TINY])
    assert rep.summary("TINY", "T1").statistics["mean"].reason == (
        "5 double-coded sessions, but none has two scores of T1"
    )


def parts_table(rows: list[tuple[str, int, str, str, float]]) -> pd.DataFrame:
    """Parts (PART_COLUMNS) from (patient, session number, rater, part, value) rows."""
    weight = {"previous": 5 / 8, "current": 3 / 8}
    return pd.DataFrame(
        [
            {"instrument": "StHAR", "measure": "StHAR_total", "kind": "score", "part": part,
             "weight": weight[part], "session_id": f"{patient}-S{number:02d}",
             "patient": patient, "session_number": number, "rater": rater, "value": value}
            for patient, number, rater, part, value in rows
        ],
        columns=PART_COLUMNS,
    )  # fmt: skip


def matched_by_hand(parts: pd.DataFrame) -> set[tuple[str, str, str, float]]:
    """The matching rule of cross_session_values, written out with loops."""
    found = set()
    current = parts[parts["part"] == "current"]
    previous = parts[parts["part"] == "previous"]
    for (patient, number), later in current.groupby(["patient", "session_number"]):
        earlier = previous[
            (previous["patient"] == patient) & (previous["session_number"] == number - 1)
        ]
        now = dict(zip(later["rater"], later["value"], strict=True))
        before = dict(zip(earlier["rater"], earlier["value"], strict=True))
        matches = [(r, r) for r in sorted(now) if r in before]
        used_now = {r for r, _ in matches}
        rest_now = sorted(set(now) - used_now)
        rest_before = sorted(set(before) - used_now)
        matches += list(zip(rest_now, rest_before, strict=False))
        session = later["session_id"].iloc[0]
        for r_now, r_before in matches:
            value = 5 / 8 * before[r_before] + 3 / 8 * now[r_now]
            found.add((session, r_now, r_before, round(value, 12)))
    return found


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["P1", "P2"]),
            st.integers(1, 4),
            st.sampled_from(["ann", "bob", "cid", "dan"]),
            st.sampled_from(["previous", "current"]),
            st.integers(0, 4).map(float),
        ),
        max_size=40,
        unique_by=lambda r: r[:4],
    )
)
def test_cross_session_values_match_ratings_once_same_rater_first(rows):
    parts = parts_table(rows)
    values = cross_session_values(parts)
    got = {
        (s, r, pr, round(v, 12))
        for s, r, pr, v in values[["session_id", "rater", "previous_rater", "value"]].itertuples(
            index=False
        )
    }
    assert got == matched_by_hand(parts)
    # independence: within a session no rating of t−1 or of t enters two values
    for _, session in values.groupby("session_id"):
        assert session["rater"].is_unique and session["previous_rater"].is_unique


def test_own_values_of_raters_who_rated_both_sessions_are_their_pair_values():
    rows = [("P1", 1, "ann", "main", 1), ("P1", 2, "ann", "main", 3), ("P1", 2, "bob", "double", 2)]
    rows += [("P1", 1, "cid", "double", 4)]
    frame = sthar_frame(rows)
    own = measure_values(frame, [STHAR])
    own = own[(own["measure"] == "StHAR_total") & own["value"].notna()]
    values = cross_session_values(cross_session_parts(frame, [STHAR]))
    by_rater = values.set_index("rater")
    assert by_rater.loc["ann", "previous_rater"] == "ann"  # her own, not cid's
    assert by_rater.loc["ann", "value"] == pytest.approx(own.set_index("rater").loc["ann", "value"])
    assert by_rater.loc["bob", "previous_rater"] == "cid"  # the rating of t−1 left over


def composite_study(seed: int, n_raters: int = 40) -> tuple[pd.DataFrame, dict[str, float]]:
    """Parts of a StHAR-like total from a known model, and the true coefficients.

    Part scores of a rating of session s of patient p: previous (StH-A) = 2 + 1.0 (u_p + v_ps)
    + a_r + e, current (StH-R) = 1.5 + 0.8 (u_p + v_ps) + b_r + e', with patient, session,
    rater and residual effects independent (rater biases of the two parts independent too).
    """
    rng = np.random.default_rng(seed)
    sd_p, sd_s, sd_a, sd_b, sd_e, sd_f = 0.7, 0.5, 0.3, 0.25, 0.4, 0.5
    lam_a, lam_r, w_a, w_r = 1.0, 0.8, 5 / 8, 3 / 8
    bias_a, bias_r = rng.normal(0, sd_a, n_raters), rng.normal(0, sd_b, n_raters)
    rows = []
    for p in range(150):
        u = rng.normal(0, sd_p)
        for s in range(1, 11):
            v = rng.normal(0, sd_s)
            for r in rng.choice(n_raters, 2 if rng.random() < 0.4 else 1, replace=False):
                a = 2 + lam_a * (u + v) + bias_a[r] + rng.normal(0, sd_e)
                c = 1.5 + lam_r * (u + v) + bias_r[r] + rng.normal(0, sd_f)
                rows += [(f"P{p:03d}", s, f"r{r:02d}", "previous", a)]
                rows += [(f"P{p:03d}", s, f"r{r:02d}", "current", c)]
    true_var = (w_a * lam_a) ** 2 * (sd_p**2 + sd_s**2) + (w_r * lam_r) ** 2 * (sd_p**2 + sd_s**2)
    true_var += 2 * w_a * w_r * lam_a * lam_r * sd_p**2
    rater = w_a**2 * sd_a**2 + w_r**2 * sd_b**2
    residual = w_a**2 * sd_e**2 + w_r**2 * sd_f**2
    truth = {
        "ICC(A,1)": true_var / (true_var + rater + residual),
        "ICC(C,1)": true_var / (true_var + residual),
    }
    return parts_table(rows), truth


@pytest.mark.parametrize("seed", [1, 2])
def test_cross_session_design_recovers_the_true_composite_reliability(seed):
    parts, truth = composite_study(seed)
    result = cross_session_design(STHAR_TOTAL, parts)
    for name, value in truth.items():
        got = result.coefficients[name]
        assert got.value == pytest.approx(value, abs=0.04), name
        assert got.ci_low < value < got.ci_high, name
    # alpha uses independent values only: sessions t with t−1 and t both double-coded
    assert result.n_double == cross_session_values(parts).groupby("session_id").size().ge(2).sum()
    assert isinstance(result.coefficients["alpha_interval"], Estimate)


def test_an_estimate_without_any_session_whose_t_minus_1_and_t_are_both_double_coded():
    """As in the demo: many double-coded sessions, never two in a row.  Alpha of the total
    has no independent values, the composite ICCs still use every rating."""
    parts, truth = composite_study(4)
    raters = parts[parts["part"] == "current"].groupby("session_id")["rater"].unique()
    drop = []
    for session_id, who in raters.items():
        patient, number = session_id.rsplit("-S", 1)
        before = f"{patient}-S{int(number) - 1:02d}"
        if len(who) == 2 and before in raters and len(raters[before]) == 2:
            drop.append((before, raters[before][1]))  # the second rater of t−1 goes
    keep = ~pd.Series(list(zip(parts["session_id"], parts["rater"], strict=True))).isin(drop)
    result = cross_session_design(STHAR_TOTAL, parts[keep.to_numpy()])
    assert result.n_double == 0
    assert result.coefficients["alpha_interval"].reason == (
        "0 sessions with both t−1 and t double-coded (minimum 5)"
    )
    for name, value in truth.items():
        assert result.coefficients[name].value == pytest.approx(value, abs=0.05), name
    assert set(result.details) == {"var_target", "var_rater", "var_residual"}


def test_too_few_double_coded_parts_is_not_enough_data_with_the_reason():
    rows = [("P1", s, r, part, float(s % 5)) for s in range(1, 4) for r in ("ann", "bob")
            for part in ("previous", "current")]  # fmt: skip
    result = cross_session_design(STHAR_TOTAL, parts_table(rows))
    assert result.coefficients["ICC(A,1)"].reason == (
        "3 sessions with the items of session t−1 double-coded (minimum 5)"
    )
    assert result.coefficients["alpha_interval"].reason == (
        "2 sessions with both t−1 and t double-coded (minimum 5)"
    )
