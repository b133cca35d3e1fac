"""Reliability chosen by the kind of item, on generated 0-6 and 1-7 data, against independent
implementations: scikit-learn (Cohen's kappa), pingouin (ICC), the krippendorff package and
statsmodels (Fleiss' kappa). "Not applicable" never enters a coefficient and is counted."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats import inter_rater

from rater.instruments import parse_instrument
from rater.rating.frame import RATINGS_COLUMNS
from rater.reliability.report import report
from rater.reliability.stats import batched_agreement, fleiss_kappa

SHEET = """
code = "K"
name = "Kinds"
scale = { min = 0, max = 6 }
[[items]]
code = "K_zero_six"
label = "Ordinal 0-6"
not_applicable = "Not observed"
[[items]]
code = "K_one_seven"
label = "Ordinal 1-7"
scale = { min = 1, max = 7 }
[[items]]
code = "K_type"
label = "Nominal"
kind = "nominal"
categories = { a = "A", b = "B", c = "C", d = "D" }
[[items]]
code = "K_count"
label = "Count"
kind = "count"
"""
INSTRUMENT = parse_instrument(SHEET.encode(), "k.toml")
RATERS = ("r1", "r2", "r3")
CATEGORIES = ("a", "b", "c", "d")


def _frame(seed: int, n_sessions: int = 40, n_calibration: int = 12) -> pd.DataFrame:
    """Every session rated by all three raters (the first ``n_calibration`` as calibration):
    each item a noisy copy of a true value per session; some 0-6 answers N/A."""
    rng = np.random.default_rng(seed)
    rows = []
    rating_id = 0
    for s in range(n_sessions):
        purpose = "calibration" if s < n_calibration else None
        truth = rng.integers(0, 7), rng.integers(1, 8), rng.integers(0, 4), rng.poisson(6)
        for r, rater in enumerate(RATERS):
            rating_id += 1
            if purpose is None and r == 2:
                continue  # main sessions: two raters
            noise = rng.integers(-1, 2, size=4)
            answers = {
                "K_zero_six": int(np.clip(truth[0] + noise[0], 0, 6)),
                "K_one_seven": int(np.clip(truth[1] + noise[1], 1, 7)),
                "K_type": CATEGORIES[(truth[2] + (noise[2] if rng.random() < 0.3 else 0)) % 4],
                "K_count": int(max(0, truth[3] + noise[3])),
            }
            for item, answer in answers.items():
                na = item == "K_zero_six" and rng.random() < 0.1
                rows.append(
                    {
                        "rating_id": rating_id,
                        "session_id": f"S{s:03d}",
                        "patient": f"P{s:03d}",
                        "therapist": "T1",
                        "session_number": 1,
                        "phase": "I",
                        "rater": rater,
                        "purpose": purpose or ("main" if r == 0 else "double"),
                        "instrument": "K",
                        "instrument_version": 1,
                        "item": item,
                        "subscale": None,
                        "score": pd.NA if na or isinstance(answer, str) else answer,
                        "value": answer if isinstance(answer, str) else None,
                        "not_applicable": int(na),
                        "rating_status": "submitted",
                        "submitted_at": pd.Timestamp("2026-01-01"),
                    }
                )
    frame = pd.DataFrame(rows, columns=RATINGS_COLUMNS)
    frame["score"] = frame["score"].astype("Int64")
    return frame


def _pairs(frame: pd.DataFrame, item: str) -> pd.DataFrame:
    """Main sessions x (r1, r2) answers of one item, N/A rows out."""
    main = frame[(frame["purpose"] != "calibration") & (frame["item"] == item)]
    main = main[main["not_applicable"] == 0]
    column = "value" if item == "K_type" else "score"
    wide = main.pivot(index="session_id", columns="rater", values=column).dropna()
    return wide


@pytest.mark.parametrize("seed", range(6))
def test_coefficients_by_kind_equal_independent_implementations(seed):
    frame = _frame(seed)
    rep = report(frame, [INSTRUMENT], design="all")
    [pair_06] = rep.pairs_of("K", "K_zero_six")
    wide = _pairs(frame, "K_zero_six").astype(int)
    assert pair_06.n == len(wide)  # N/A left out
    for weights in ("linear", "quadratic"):
        expected = cohen_kappa_score(wide["r1"], wide["r2"], weights=weights, labels=range(7))
        assert pair_06.coefficients[f"kappa_{weights}"].value == pytest.approx(expected)
    [pair_17] = rep.pairs_of("K", "K_one_seven")
    wide17 = _pairs(frame, "K_one_seven").astype(int)
    long = wide17.reset_index().melt(id_vars="session_id", var_name="rater", value_name="score")
    icc = pg.intraclass_corr(long, targets="session_id", raters="rater", ratings="score")
    icc = icc.set_index("Type")["ICC"]
    assert pair_17.coefficients["ICC(A,2)"].value == pytest.approx(icc["ICC(A,k)"])
    assert pair_17.coefficients["ICC(A,1)"].value == pytest.approx(icc["ICC(A,1)"])
    expected = cohen_kappa_score(
        wide17["r1"], wide17["r2"], weights="quadratic", labels=range(1, 8)
    )
    assert pair_17.coefficients["kappa_quadratic"].value == pytest.approx(expected)

    [nominal] = rep.pairs_of("K", "K_type")
    types = _pairs(frame, "K_type")
    assert nominal.coefficients["kappa"].value == pytest.approx(
        cohen_kappa_score(types["r1"], types["r2"])
    )
    agreement = 100 * (types["r1"] == types["r2"]).mean()
    assert nominal.coefficients["percent_agreement"].value == pytest.approx(agreement)
    assert "ICC(A,2)" not in {k for k, v in nominal.coefficients.items() if hasattr(v, "value")}
    numbers = types.apply(lambda c: c.map(CATEGORIES.index)).astype(float)
    design = rep.design_result("K", "K_type")
    expected = krippendorff.alpha(numbers.T.to_numpy(), level_of_measurement="nominal")
    assert design.coefficients["alpha_nominal"].value == pytest.approx(expected)

    counts = _pairs(frame, "K_count").astype(float)
    design = rep.design_result("K", "K_count")
    for level in ("ratio", "interval"):
        expected = krippendorff.alpha(counts.T.to_numpy(), level_of_measurement=level)
        assert design.coefficients[f"alpha_{level}"].value == pytest.approx(expected)
    [pair_count] = rep.pairs_of("K", "K_count")
    assert "kappa_quadratic" not in pair_count.coefficients

    main = frame[(frame["purpose"] != "calibration") & (frame["item"] == "K_zero_six")]
    na = int(main["not_applicable"].sum())
    assert na > 0 and rep.design_result("K", "K_zero_six").n_not_applicable == na
    design06 = rep.design_result("K", "K_zero_six")
    expected = krippendorff.alpha(
        _pairs(frame, "K_zero_six").astype(float).T.to_numpy(), level_of_measurement="ordinal"
    )
    assert design06.coefficients["alpha_ordinal"].value == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(6))
def test_fleiss_kappa_of_the_calibration_panel_equals_statsmodels(seed):
    frame = _frame(seed)
    rep = report(frame, [INSTRUMENT], design="none")
    [panel] = [p for p in rep.calibration_panel if p.measure == "K_type"]
    cal = frame[(frame["purpose"] == "calibration") & (frame["item"] == "K_type")]
    wide = cal.pivot(index="session_id", columns="rater", values="value")
    table, _ = inter_rater.aggregate_raters(wide.to_numpy())
    assert panel.coefficients["fleiss_kappa"].value == pytest.approx(
        inter_rater.fleiss_kappa(table, method="fleiss")
    )
    assert panel.n_targets == len(wide) and panel.raters == RATERS


def test_fleiss_kappa_and_agreement_by_hand():
    # Fleiss (1971)-style small table: 3 raters, 4 units
    table = np.array([[1, 1, 1], [1, 2, 2], [2, 2, 2], [3, 3, 1]], dtype=float)
    # p_j = (4/12, 5/12, 3/12 ... ) computed by hand:
    counts = np.array([[3, 0, 0], [1, 2, 0], [0, 3, 0], [1, 0, 2]])
    p_j = counts.sum(axis=0) / 12
    p_i = ((counts**2).sum(axis=1) - 3) / 6
    expected = (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())
    assert fleiss_kappa(table) == pytest.approx(expected)
    assert np.isnan(fleiss_kappa(np.ones((4, 3))))
    a, b = np.array([1, 2, 3, 4, 1]), np.array([1, 2, 0, 4, 2])
    groups = np.array([0, 0, 0, 1, 1])
    assert batched_agreement(a, b, groups).tolist() == [pytest.approx(200 / 3), 50.0]


def test_nominal_items_get_no_icc_and_say_why():
    rep = report(_frame(1), [INSTRUMENT], design="all")
    design = rep.design_result("K", "K_type")
    for name in ("ICC(A,1)", "alpha_interval", "alpha_ordinal"):
        assert "nominal" in str(design.coefficients[name])
    design = rep.to_frames()["design"]
    per_item = design.groupby("measure")["n_not_applicable"].first()
    assert per_item["K_zero_six"] == rep.design_result("K", "K_zero_six").n_not_applicable > 0
    assert per_item["K_type"] == 0


def test_text_report_says_what_each_kind_gets():
    frame = _frame(2)
    rep = report(frame, [INSTRUMENT], design="all")
    text = rep.to_text()
    na = rep.design_result("K", "K_zero_six").n_not_applicable
    assert f"{na} answers 'not applicable' left out" in text
    kappa = rep.pairs_of("K", "K_type")[0].coefficients["kappa"].value
    assert f"Cohen's kappa {kappa:.2f}" in text and "alpha nominal" in text
    assert ", ratio " in text  # the count's alpha ratio
    assert "not computed for a nominal item" not in text
