"""Tests of rater.reliability.stats against independent implementations and by hand."""

from __future__ import annotations

import itertools
import warnings

import hypothesis.extra.numpy as hnp
import krippendorff
import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from rater.reliability.stats import (
    ICC_TYPES,
    InsufficientDataError,
    batched_kappa,
    composite_icc,
    cronbach_alpha,
    icc,
    icc_incomplete,
    icc_two_raters,
    item_total_correlations,
    krippendorff_alpha,
    mcdonald_omega,
    variance_components,
)

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- generators


def latent_table(seed: int, n: int, k: int, kind: str) -> np.ndarray:
    """targets x raters: target effect + rater bias + noise; continuous, 0-4 integers or flat."""
    rng = np.random.default_rng(seed)
    sd_t, sd_r, sd_e = rng.uniform(0, 1.5, 3)
    y = 2 + sd_t * rng.normal(size=(n, 1)) + sd_r * rng.normal(size=(1, k))
    y = y + sd_e * rng.normal(size=(n, k))
    if kind == "integer":
        return np.clip(np.round(y), 0, 4)
    if kind == "constant":
        return np.full((n, k), float(rng.integers(0, 5)))
    return y


tables = st.one_of(
    hnp.arrays(
        float,
        st.tuples(st.integers(2, 12), st.integers(2, 6)),
        elements=st.integers(0, 4).map(float),
    ),
    st.builds(
        latent_table,
        st.integers(0, 2**32 - 1),
        st.integers(2, 60),
        st.integers(2, 8),
        st.sampled_from(["continuous", "integer", "constant"]),
    ),
)


def to_long(values: np.ndarray, target: str = "session") -> pd.DataFrame:
    wide = pd.DataFrame(values, columns=[f"r{j}" for j in range(values.shape[1])])
    wide.index.name = target
    return wide.reset_index().melt(id_vars=target, var_name="rater", value_name="score")


def pingouin_icc(values: np.ndarray) -> pd.DataFrame:
    saved = pg.options.get("round.column.CI95")
    pg.options["round.column.CI95"] = None  # full precision, as the brief asks
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pg.intraclass_corr(to_long(values), "session", "rater", "score")
    finally:
        pg.options["round.column.CI95"] = saved
    out = out.set_index("Type")
    ci = np.vstack(out["CI95"].to_numpy())
    out["ci_low"], out["ci_high"] = ci[:, 0], ci[:, 1]
    return out


# --------------------------------------------------------------------------- icc()


@SETTINGS
@given(tables)
def test_icc_equals_pingouin(values):
    assume(values.size >= 5)  # pingouin's ANOVA refuses fewer than 5 values
    # Where a sum of squares is 0 in exact arithmetic, pingouin divides round-off by
    # round-off; we return the exact (often NaN) value instead, tested separately below.
    ss = sums_of_squares(values)
    assume(all(part > 1e-8 * ss["total"] for part in ss.values()) or ss["total"] == 0)
    ours = icc(pd.DataFrame(values))
    ref = pingouin_icc(values)
    assert list(ours.index) == list(ICC_TYPES) == list(ref.index)
    np.testing.assert_allclose(ours["df1"], ref["df1"].astype(float))
    np.testing.assert_allclose(ours["df2"], ref["df2"].astype(float))
    cols = ["ICC", "F", "pval", "ci_low", "ci_high"]
    expected = _stepped_up_bounds_at_or_below_pole(ref[cols].copy(), values.shape[1])
    np.testing.assert_allclose(ours[cols], expected, rtol=1e-9, atol=1e-9)


def _stepped_up_bounds_at_or_below_pole(ref: pd.DataFrame, k: int) -> pd.DataFrame:
    """Where ICC(A,1) or its bound is at or below −1/(k−1), ICC(A,k) or its bound is −∞.

    pingouin steps such a value up anyway and returns round-off at the pole or, below it, a
    value above 1 (a "lower" bound above the upper one); we return −∞ there (tests below).
    """
    pole = -1 / (k - 1) + 1e-9
    for column in ("ICC", "ci_low", "ci_high"):
        if ref.loc["ICC(A,1)", column] <= pole:
            ref.loc["ICC(A,k)", column] = -np.inf
    return ref


def test_stepped_up_lower_bound_at_or_below_its_pole_is_minus_infinity():
    """ICC(A,1)'s lower bound at −1/(k−1) = −0.5 (two cases) and below it (third case)."""
    for values in (
        [[0, 0, 4], [1, 1, 1]],
        [[0, 0, 2], [1, 1, 1]],
        [[0, 0, 0], [0, 1, 0], [0, 0, 1]],
    ):
        table = icc(pd.DataFrame(np.array(values, dtype=float)))
        assert table.loc["ICC(A,1)", "ci_low"] <= -0.5 + 1e-9
        assert table.loc["ICC(A,k)", "ci_low"] == -np.inf
        assert table.loc["ICC(A,k)", "ci_high"] < 1


def residual_share(values: np.ndarray) -> float:
    """The residual mean square relative to the total variance of the table."""
    n, k = values.shape
    resid = values - values.mean(1, keepdims=True) - values.mean(0) + values.mean()
    mse = (resid**2).sum() / ((n - 1) * (k - 1))
    total = values.var(ddof=1)
    return float(mse / total) if total > 0 else 0.0


def sums_of_squares(values: np.ndarray) -> dict[str, float]:
    grand = values.mean()
    rows, cols = values.mean(1, keepdims=True), values.mean(0, keepdims=True)
    return {
        "total": float(((values - grand) ** 2).sum()),
        "rows": float(((rows - grand) ** 2).sum() * values.shape[1]),
        "cols": float(((cols - grand) ** 2).sum() * values.shape[0]),
        "err": float(((values - rows - cols + grand) ** 2).sum()),
    }


@pytest.mark.parametrize("shift", [0.0, 0.1, 1e6 / 3])
def test_icc_degenerate_tables_are_exact(shift):
    identical_rows = np.array([[0.0, 1, 2], [0, 1, 2], [0, 1, 2]]) + shift
    got = icc(pd.DataFrame(identical_rows))["ICC"]
    assert got["ICC(C,1)"] == 0 or np.isnan(got["ICC(C,1)"])  # MSB = MSE = 0 -> 0/0
    assert np.isnan(got["ICC(C,k)"])
    assert (got[["ICC(1,1)", "ICC(A,1)"]] <= 0).all()
    perfect = np.array([[0.0, 0, 0], [1, 1, 1], [3, 3, 3]]) + shift
    assert icc(pd.DataFrame(perfect))["ICC"].tolist() == [1.0] * 6
    offset = np.array([[0.0, 1], [2, 3], [3, 4]]) + shift  # consistent, not in agreement
    got = icc(pd.DataFrame(offset))["ICC"]
    assert got["ICC(C,1)"] == 1.0 and got["ICC(A,1)"] < 1.0
    assert icc(pd.DataFrame(np.full((4, 3), shift)))["ICC"].isna().all()


PERFECT_TABLES = (
    np.array([[0.0, 0], [1, 1], [3, 3], [2, 2]]),
    np.array([[0.0, 0, 0], [1, 1, 1], [4, 4, 4]]),
    np.array([[0.25, 0.25], [3.5, 3.5]]),
)


@pytest.mark.parametrize("shift", [0.0, 0.1, 1e6 / 3])
@pytest.mark.parametrize("values", PERFECT_TABLES, ids=["4x2", "3x3", "2x2"])
def test_an_icc_of_exactly_one_has_the_interval_one_to_one(values, shift):
    """Every type, through icc() and the batched two-rater path: [1, 1], never NaN."""
    table = icc(pd.DataFrame(values + shift))
    assert table["ICC"].tolist() == [1.0] * 6
    assert table["ci_low"].tolist() == [1.0] * 6
    assert table["ci_high"].tolist() == [1.0] * 6
    if values.shape[1] == 2:
        types = list(ICC_TYPES)
        got = icc_two_raters(values[:, 0] + shift, values[:, 1] + shift, [0] * len(values), types)
        for t in types:
            assert got.loc[0, [t, f"{t} ci_low", f"{t} ci_high"]].tolist() == [1.0, 1.0, 1.0], t


@pytest.mark.parametrize("shift", [0.0, 1e6 / 3])
def test_raters_offset_by_a_constant_get_finite_intervals_the_limit_of_pingouin(shift):
    """MSE = 0 < MSJ: ICC(C,·) = 1 with [1, 1]; ICC(A,·) < 1 with the CI pingouin approaches
    as the residual noise vanishes (pingouin itself gives NaN at MSE = 0)."""
    offset = np.array([[0.0, 1], [1, 2], [3, 4], [2, 3]])
    table = icc(pd.DataFrame(offset + shift))
    for t in ("ICC(C,1)", "ICC(C,k)"):
        assert table.loc[t, ["ICC", "ci_low", "ci_high"]].tolist() == [1.0, 1.0, 1.0]
    noise = 1e-6 * np.array([[1.0, -1], [0, 0], [-1, 1], [0.5, 0]])
    near = pingouin_icc(offset + noise)
    for t in ("ICC(A,1)", "ICC(A,k)"):
        assert table.loc[t, "ICC"] < 1
        np.testing.assert_allclose(
            table.loc[t, ["ICC", "ci_low", "ci_high"]].astype(float),
            near.loc[t, ["ICC", "ci_low", "ci_high"]].astype(float),
            atol=1e-5,
        )
    got = icc_two_raters(offset[:, 0], offset[:, 1], [0] * 4, ("ICC(A,1)", "ICC(A,k)"))
    for t in ("ICC(A,1)", "ICC(A,k)"):
        np.testing.assert_allclose(
            got.loc[0, [t, f"{t} ci_low", f"{t} ci_high"]].astype(float),
            table.loc[t, ["ICC", "ci_low", "ci_high"]].astype(float),
            rtol=1e-9,
        )


def test_opposed_raters_give_icc_a_k_minus_infinity_not_a_value_above_one():
    """ICC(A,1) = −5/3 lies below the pole −1/(k−1) = −1: pingouin's ICC(A,k) is 5 there,
    with the CI [−∞, −∞]; the Spearman-Brown step-up's limit is −∞."""
    opposed = np.array([[0.0, 4], [1, 3], [2, 2], [3, 1], [4, 0]])
    assert pingouin_icc(opposed).loc["ICC(A,k)", "ICC"] == pytest.approx(5.0)
    table = icc(pd.DataFrame(opposed))
    assert table.loc["ICC(A,1)", "ICC"] == pytest.approx(-5 / 3)
    assert table.loc["ICC(A,k)", ["ICC", "ci_low", "ci_high"]].tolist() == [-np.inf] * 3
    got = icc_two_raters(opposed[:, 0], opposed[:, 1], [0] * 5, ("ICC(A,k)",))
    assert got.loc[0, ["ICC(A,k)", "ICC(A,k) ci_low", "ICC(A,k) ci_high"]].tolist() == [-np.inf] * 3


@SETTINGS
@given(tables)
@example(np.array([[0.0, 4], [1, 3], [2, 2], [3, 1], [4, 0]]))
@example(np.array([[0.0, 2], [2, 1], [1, 0]]))
def test_every_icc_is_at_most_one_and_every_bound_too(values):
    table = icc(pd.DataFrame(values))
    for column in ("ICC", "ci_low", "ci_high"):
        finite_or_nan = table[column].dropna()
        assert (finite_or_nan <= 1 + 1e-12).all(), (column, table)


def test_icc_shrout_fleiss_1979_table():
    """The worked example of Shrout & Fleiss (1979), Table 2 and their published ICCs."""
    wide = pd.DataFrame(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    )
    got = icc(wide)["ICC"].round(2)
    expected = {"ICC(1,1)": 0.17, "ICC(A,1)": 0.29, "ICC(C,1)": 0.71}
    expected |= {"ICC(1,k)": 0.44, "ICC(A,k)": 0.62, "ICC(C,k)": 0.91}
    assert got.to_dict() == expected


def test_icc_two_by_two_by_hand():
    # rows mean 0.5, 2.5 (grand 1.5): MSB = 2 * (1 + 1) / 1 = 4; column means 1, 2:
    # MSJ = 2 * (0.25 + 0.25) / 1 = 1; MSE = 0 -> ICC(C,1) = 1,
    # ICC(A,1) = (MSB - MSE) / (MSB + (k-1) MSE + k (MSJ - MSE) / n) = 4 / (4 + 1) = 0.8
    got = icc(pd.DataFrame([[0.0, 1.0], [2.0, 3.0]]))["ICC"]
    assert got["ICC(C,1)"] == pytest.approx(1.0)
    assert got["ICC(A,1)"] == pytest.approx(0.8)


@SETTINGS
@given(tables, st.floats(-10, 10), st.randoms(use_true_random=False))
def test_icc_invariances(values, shift, rnd):
    base = icc(pd.DataFrame(values))
    rows = list(range(values.shape[0]))
    cols = list(range(values.shape[1]))
    rnd.shuffle(rows)
    rnd.shuffle(cols)
    # ICC(A,k) has a pole where MSB + (MSJ - MSE)/n = 0; there only the sign of round-off
    # decides between +-1e16 and +-inf, so such tables are compared off the pole only.
    regular = ~(np.abs(base["ICC"]) > 1e6)
    for other in (values + shift, values[rows][:, cols]):
        got = icc(pd.DataFrame(other))
        np.testing.assert_allclose(got["ICC"][regular], base["ICC"][regular], rtol=1e-7, atol=1e-7)


def test_icc_rejects_gaps_and_tiny_tables():
    with pytest.raises(ValueError, match="complete"):
        icc(pd.DataFrame([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(InsufficientDataError):
        icc(pd.DataFrame([[1.0, 2.0]]))


# --------------------------------------------------------------------------- batched pairs


@st.composite
def paired_groups(draw):
    sizes = draw(st.lists(st.integers(1, 15), min_size=1, max_size=8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["integer", "continuous"]))
    parts = [latent_table(int(rng.integers(2**32)), size, 2, kind) for size in sizes]
    return parts


@settings(max_examples=40, deadline=None)
@given(paired_groups())
def test_icc_two_raters_equals_icc_per_group(parts):
    ab = np.vstack(parts)
    groups = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    types = list(ICC_TYPES)
    got = icc_two_raters(ab[:, 0], ab[:, 1], groups, types=types)
    for g, part in enumerate(parts):
        assert got.loc[g, "n"] == len(part)
        if len(part) < 2:
            assert got.loc[g, types].isna().all()
            continue
        ref = icc(pd.DataFrame(part))
        for t in types:
            np.testing.assert_allclose(got.loc[g, t], ref.loc[t, "ICC"], rtol=1e-9, atol=1e-9)
            if np.isfinite(ref.loc[t, "ci_low"]) and ref.loc[t, "F"] < 1e8:
                np.testing.assert_allclose(
                    got.loc[g, [f"{t} ci_low", f"{t} ci_high", f"{t} pval"]].astype(float),
                    ref.loc[t, ["ci_low", "ci_high", "pval"]].astype(float),
                    rtol=1e-7,
                    atol=1e-9,
                )


def anova_components_nonnegative(values: np.ndarray) -> bool:
    f_targets = icc(pd.DataFrame(values)).loc["ICC(A,1)", "F"]
    return bool(np.isfinite(f_targets) and f_targets > 1.0 + 1e-6)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(5, 80),
    st.integers(2, 6),
    st.sampled_from(["continuous", "integer"]),
)
def test_icc_incomplete_on_complete_design_equals_anova(seed, n, k, kind):
    values = latent_table(seed, n, k, kind)
    ref = icc(pd.DataFrame(values))["ICC"]
    # REML equals ANOVA only when both ANOVA components are non-negative: MSB, MSJ >= MSE
    assume(anova_components_nonnegative(values))
    rater_f = (
        n
        * values.mean(0).var(ddof=1)
        / (
            ((values - values.mean(1, keepdims=True) - values.mean(0) + values.mean()) ** 2).sum()
            / ((n - 1) * (k - 1))
        )
    )
    assume(rater_f > 1.0 + 1e-6)
    # With (almost) no residual variance the REML surface is flat along the variance ratios
    # the optimiser works on (ratio ~ 1e6); rating data never look like that.
    assume(residual_share(values) > 1e-4)
    got = icc_incomplete(to_long(values))
    assert got["khat"] == pytest.approx(k)
    assert got["q"] == pytest.approx(0.0, abs=1e-12)
    for ours, theirs in [
        ("ICC(A,1)", "ICC(A,1)"),
        ("ICC(C,1)", "ICC(C,1)"),
        ("ICC(A,khat)", "ICC(A,k)"),
        ("ICC(Q,khat)", "ICC(C,k)"),
    ]:
        assert got[ours] == pytest.approx(ref[theirs], abs=2e-6)
        low, high = got[f"{ours}_ci"]
        assert low <= got[ours] + 1e-9 and got[ours] <= high + 1e-9


def incomplete_long(seed: int, n: int, m: int, share_double: float) -> pd.DataFrame:
    """A partially double-coded design: every target one rater, some a second one."""
    rng = np.random.default_rng(seed)
    t_eff = rng.normal(size=n)
    r_eff = rng.normal(scale=0.6, size=m)
    rows = []
    for t in range(n):
        k = 2 if rng.random() < share_double else 1
        for r in rng.choice(m, size=k, replace=False):
            rows.append((f"s{t}", f"R{r}", 2 + t_eff[t] + r_eff[r] + rng.normal(scale=0.7)))
    return pd.DataFrame(rows, columns=["session", "rater", "score"])


@pytest.mark.parametrize("seed", [3, 4])
def test_composite_of_one_part_is_icc_incomplete(seed):
    """Weights (1, 0): the composite is the part itself, intervals included."""
    long = to_long(latent_table(seed, 40, 3, "continuous")).sample(frac=0.7, random_state=seed)
    fit = variance_components(long)
    assert fit.n_obs == len(long)
    ours = composite_icc([(1.0, fit), (0.0, variance_components(long))], 0.0, 0.0)
    theirs = icc_incomplete(long)
    for name in ("ICC(A,1)", "ICC(A,khat)", "ICC(C,1)", "ICC(Q,khat)"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-12)
        assert ours[f"{name}_ci"] == pytest.approx(theirs[f"{name}_ci"], abs=1e-12)
    assert ours["var_target"] == pytest.approx(theirs["var_target"], abs=1e-12)


def test_composite_by_hand():
    """Two parts, weights 5/8 and 3/8, covariance of the target effects 0.3."""
    long_1 = to_long(latent_table(5, 30, 2, "continuous"))
    long_2 = to_long(latent_table(6, 30, 3, "continuous"))
    f1, f2 = variance_components(long_1), variance_components(long_2)
    got = composite_icc([(5 / 8, f1), (3 / 8, f2)], 0.3, 0.05)
    w1, w2 = 25 / 64, 9 / 64
    target = w1 * f1.var[0] + w2 * f2.var[0] + 2 * 15 / 64 * 0.3
    rater, residual = w1 * f1.var[1] + w2 * f2.var[1], w1 * f1.var[2] + w2 * f2.var[2]
    mean_error = w1 * (f1.var[1] + f1.var[2]) / f1.khat + w2 * (f2.var[1] + f2.var[2]) / f2.khat
    putka = w1 * (f1.q * f1.var[1] + f1.var[2] / f1.khat)
    putka += w2 * (f2.q * f2.var[1] + f2.var[2] / f2.khat)
    assert got["ICC(A,1)"] == pytest.approx(target / (target + rater + residual), abs=1e-12)
    assert got["ICC(C,1)"] == pytest.approx(target / (target + residual), abs=1e-12)
    assert got["ICC(A,khat)"] == pytest.approx(target / (target + mean_error), abs=1e-12)
    assert got["ICC(Q,khat)"] == pytest.approx(target / (target + putka), abs=1e-12)
    for name in ("ICC(A,1)", "ICC(C,1)"):
        low, high = got[f"{name}_ci"]
        assert low < got[name] < high


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-5, 5), st.randoms(use_true_random=False))
def test_icc_incomplete_invariances(seed, shift, rnd):
    long = incomplete_long(seed, 40, 4, 0.5)
    assume(long.groupby("session").size().max() == 2)
    base = icc_incomplete(long)
    shuffled = long.sample(frac=1.0, random_state=rnd.randint(0, 1000))
    relabel = {r: f"X{rnd.randint(0, 10**6)}_{r}" for r in long["rater"].unique()}
    shuffled = shuffled.assign(
        rater=shuffled["rater"].map(relabel), score=shuffled["score"] + shift
    )
    got = icc_incomplete(shuffled)
    for key in ("ICC(A,1)", "ICC(C,1)", "ICC(A,khat)", "ICC(Q,khat)", "var_target", "khat", "q"):
        assert got[key] == pytest.approx(base[key], rel=1e-5, abs=1e-7)


def test_icc_incomplete_missing_cells_are_dropped_and_deterministic():
    long = incomplete_long(3, 50, 5, 0.4)
    with_gaps = pd.concat([long, long.head(5).assign(rater="R-missing", score=np.nan)])
    a, b = icc_incomplete(long), icc_incomplete(with_gaps)
    assert a == b
    assert a["n_obs"] == len(long) and a["n_raters"] == 5 and a["n_targets"] == 50


def test_khat_and_q_by_hand():
    # targets: t1 rated by A,B; t2 by A; t3 by B,C.  k = (2,1,2), khat = 3/(1/2+1+1/2) = 1.5
    # c(t1,t2)=1, c(t1,t3)=1, c(t2,t3)=0; sum_{i!=i'} c/(k k') = 2*(1/2 + 1/4 + 0) = 1.5
    # q = 1/1.5 - 1.5/(3*2) = 2/3 - 1/4
    long = pd.DataFrame(
        {
            "session": ["t1", "t1", "t2", "t3", "t3"],
            "rater": ["A", "B", "A", "B", "C"],
            "score": [1.0, 2.0, 0.0, 4.0, 3.0],
        }
    )
    got = icc_incomplete(long)
    assert got["khat"] == pytest.approx(1.5)
    assert got["q"] == pytest.approx(2 / 3 - 1 / 4)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"session": [1, 1], "rater": ["a", "b"], "score": [1.0, 2.0]}, "2 targets"),
        ({"session": [1, 2], "rater": ["a", "a"], "score": [1.0, 2.0]}, "2 raters"),
        ({"session": [1, 2], "rater": ["a", "b"], "score": [1.0, 2.0]}, "confounded"),
        ({"session": [1, 1, 2, 2], "rater": ["a", "b"] * 2, "score": [3.0] * 4}, "equal"),
    ],
)
def test_icc_incomplete_edge_cases(frame, message):
    with pytest.raises(InsufficientDataError, match=message):
        icc_incomplete(pd.DataFrame(frame))


def test_icc_incomplete_duplicate_cells_rejected():
    long = pd.DataFrame(
        {"session": [1, 1, 2, 2], "rater": ["a", "a", "a", "b"], "score": [1.0] * 4}
    )
    with pytest.raises(ValueError, match="more than one score"):
        icc_incomplete(long)


def test_icc_incomplete_zero_rater_variance_is_a_boundary_fit():
    # raters without any bias: REML puts sigma2_r at (or very near) 0; CIs stay finite
    rng = np.random.default_rng(0)
    values = rng.normal(size=(60, 1)) + 0.5 * rng.normal(size=(60, 3))
    values -= values.mean(0) - values.mean()  # identical rater means -> MSJ = 0
    got = icc_incomplete(to_long(values))
    assert got["var_rater"] == 0.0
    assert all(np.isfinite(got[f"{key}_ci"]).all() for key in ("ICC(A,1)", "ICC(Q,khat)"))


# --------------------------------------------------------------------------- Krippendorff


@st.composite
def reliability_tables(draw):
    raters = draw(st.integers(2, 6))
    units = draw(st.integers(1, 25))
    values = draw(hnp.arrays(float, (raters, units), elements=st.integers(0, 4).map(float)))
    missing = draw(hnp.arrays(bool, (raters, units), elements=st.booleans()))
    values[missing] = np.nan
    return values


@settings(max_examples=150, deadline=None)
@given(reliability_tables(), st.sampled_from(["nominal", "ordinal", "interval", "ratio"]))
def test_krippendorff_alpha_equals_package(data, level):
    ours = krippendorff_alpha(data, level)
    try:
        with np.errstate(all="ignore"):
            ref = krippendorff.alpha(data, level_of_measurement=level)
    except ValueError:  # the package refuses a one-value domain or no pairable unit
        assert np.isnan(ours)
        return
    if np.isfinite(ref):
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
    else:
        assert np.isnan(ours)


def test_krippendorff_alpha_by_hand_and_frames():
    # Krippendorff (2011) example: 3 units, nominal, perfect agreement except one unit
    data = pd.DataFrame([[1, 2, 3, np.nan], [1, 2, 4, 3]])
    # coincidences: (1,1)x2, (2,2)x2, (3,4),(4,3), unit4 unpairable; n = 6
    # D_o = 2/ (n) ... alpha = 1 - (n-1) * 2 / (n^2 - sum n_c^2) = 1 - 5*2/(36-4-4-1-1)
    assert krippendorff_alpha(data, "nominal") == pytest.approx(1 - 10 / 26)
    assert krippendorff_alpha(np.full((3, 4), 2.0), "interval") != krippendorff_alpha(
        np.full((3, 4), 2.0), "interval"
    )  # NaN: no variation at all
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(data, "cardinal")


# --------------------------------------------------------------------------- kappa


@st.composite
def scored_pairs(draw):
    """Two raters' integer scores on a random scale (2 to 11 points, any offset)."""
    low = draw(st.integers(-3, 5))
    high = low + draw(st.integers(1, 10))
    n = draw(st.integers(1, 60))
    score = st.integers(low, high)
    a = draw(hnp.arrays(int, n, elements=score))
    b = draw(hnp.arrays(int, n, elements=score))
    return a, b, list(range(low, high + 1))


@settings(max_examples=150, deadline=None)
@given(scored_pairs(), st.sampled_from([None, "linear", "quadratic"]))
def test_kappa_equals_sklearn_on_any_scale(case, weights):
    a, b, scale = case
    ours = batched_kappa(a, b, np.zeros(len(a), dtype=int), weights)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cohen_kappa_score(a, b, labels=scale, weights=weights)
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(scored_pairs(), min_size=1, max_size=5), st.sampled_from(["linear", "quadratic"]))
def test_batched_kappa_gives_each_group_the_kappa_of_its_own_scale(cases, weights):
    """Groups of different ranges (0-4 beside 0-6 and 1-7) in one batch: each as on its own."""
    a = np.concatenate([c[0] for c in cases])
    b = np.concatenate([c[1] for c in cases])
    groups = np.concatenate([np.full(len(c[0]), g) for g, c in enumerate(cases)])
    batched = batched_kappa(a, b, groups, weights)
    for g, (x, y, scale) in enumerate(cases):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = cohen_kappa_score(x, y, labels=scale, weights=weights)
        assert (np.isnan(ref) and np.isnan(batched[g])) or batched[g] == pytest.approx(ref)


def test_kappa_by_hand_and_empty_groups():
    # a = (0, 1, 4), b = (0, 2, 4): observed linear disagreement 1/3 over 3 pairs
    a, b = np.array([0, 1, 4]), np.array([0, 2, 4])
    obs = (0 + 1 + 0) / 3
    marg_a, marg_b = np.bincount(a, minlength=5) / 3, np.bincount(b, minlength=5) / 3
    exp = sum(marg_a[i] * marg_b[j] * abs(i - j) for i, j in itertools.product(range(5), range(5)))
    one = batched_kappa(a, b, np.zeros(3, dtype=int), "linear", n_groups=2)
    assert one[0] == pytest.approx(1 - obs / exp) and np.isnan(one[1])  # group 1 has no rows
    assert np.isnan(batched_kappa(np.array([2, 2]), np.array([2, 2]), np.zeros(2, int), None)[0])
    with pytest.raises(ValueError, match="weights"):
        batched_kappa(a, b, np.zeros(3, dtype=int), "cubic")


# --------------------------------------------------------------------------- consistency


def item_table(seed: int, n: int, k: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    trait = rng.normal(size=(n, 1))
    loadings = rng.uniform(0.2, 1.0, size=(1, k))
    y = np.clip(np.round(2 + trait * loadings + rng.normal(size=(n, k))), 0, 4)
    return pd.DataFrame(y, columns=[f"item{j}" for j in range(k)])


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(5, 80), st.integers(2, 9))
def test_cronbach_alpha_and_item_total(seed, n, k):
    items = item_table(seed, n, k)
    assume((items.var() > 0).all() and items.sum(axis=1).var() > 0)
    assert cronbach_alpha(items) == pytest.approx(pg.cronbach_alpha(items)[0], rel=1e-9)
    got = item_total_correlations(items)
    for col in items:
        rest = items.drop(columns=col).sum(axis=1)
        assert got[col] == pytest.approx(np.corrcoef(items[col], rest)[0, 1], rel=1e-9, abs=1e-12)


def exact_correlation_data(corr: np.ndarray, n: int = 50) -> pd.DataFrame:
    """Data whose sample correlation matrix is exactly ``corr``."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(n, len(corr)))
    z -= z.mean(0)
    q, _ = np.linalg.qr(z)
    return pd.DataFrame(q @ np.linalg.cholesky(corr).T)


@pytest.mark.parametrize("loadings", [[0.7, 0.7, 0.7, 0.7], [0.9, 0.6, 0.5, 0.3, 0.8]])
def test_mcdonald_omega_recovers_exact_one_factor_structure(loadings):
    lam = np.array(loadings)
    corr = np.outer(lam, lam)
    np.fill_diagonal(corr, 1.0)
    omega = mcdonald_omega(exact_correlation_data(corr))
    expected = lam.sum() ** 2 / (lam.sum() ** 2 + (1 - lam**2).sum())
    assert omega == pytest.approx(expected, abs=1e-6)


def test_mcdonald_omega_equals_standardised_alpha_for_equal_loadings():
    lam = 0.6
    corr = np.full((5, 5), lam**2)
    np.fill_diagonal(corr, 1.0)
    r = lam**2
    assert mcdonald_omega(exact_correlation_data(corr)) == pytest.approx(
        5 * r / (1 + 4 * r), abs=1e-6
    )


@pytest.mark.parametrize(
    "items",
    [
        {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2, 3, 4], "c": [0, 1, 2, 3, 4]},  # always agree
        {"a": [0, 1, 2, 3, 1], "b": [4, 0, 1, 2, 2], "c": [4, 1, 3, 5, 3]},  # c = a + b
    ],
)
def test_mcdonald_omega_of_linearly_dependent_items_is_undefined(items):
    """A singular correlation matrix has no ML one-factor fit (R's factanal stops too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(mcdonald_omega(pd.DataFrame(items)))


def test_consistency_edge_cases():
    with pytest.raises(InsufficientDataError):
        mcdonald_omega(pd.DataFrame({"a": [1, 2, 3], "b": [2, 3, 1]}))
    with pytest.raises(InsufficientDataError):
        cronbach_alpha(pd.DataFrame({"a": [1.0, np.nan], "b": [2.0, 3.0]}))
    assert np.isnan(cronbach_alpha(pd.DataFrame({"a": [1, 1, 1], "b": [2, 2, 2]})))
