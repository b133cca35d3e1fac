"""Pure statistics for inter-rater reliability and internal consistency.

Everything here takes plain arrays or pandas frames and returns plain numbers or frames;
no Flask, no database.  Every coefficient is cross-checked in the tests against an
independent implementation (pingouin, the ``krippendorff`` package, scikit-learn, R's lme4
and psych).

Contents
--------
``icc``                   the six Shrout & Fleiss / McGraw & Wong ICCs of a complete design
``icc_two_raters``        batched two-rater ICCs for many groups at once (numpy, no loop)
``icc_incomplete``        one coefficient set for an incomplete design by REML
``composite_icc``         the same coefficients for a weighted sum of two separately rated parts
``paired_mean_difference`` batched mean difference of two raters with its paired-t 95 % CI
``krippendorff_alpha``    nominal / ordinal / interval / ratio alpha via the coincidence matrix
``batched_kappa``         Cohen's kappa (unweighted, linear, quadratic) of many pairs at once
``batched_agreement``     percent agreement of many pairs at once
``fleiss_kappa``          Fleiss' kappa of a panel of raters (nominal categories)
``cronbach_alpha``, ``mcdonald_omega``, ``item_total_correlations``  internal consistency
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize
from scipy.stats import f as f_dist
from scipy.stats import t as t_dist

__all__ = [
    "ICC_TYPES",
    "InsufficientDataError",
    "VarianceComponents",
    "batched_agreement",
    "batched_kappa",
    "composite_icc",
    "cronbach_alpha",
    "fleiss_kappa",
    "icc",
    "icc_incomplete",
    "icc_two_raters",
    "item_total_correlations",
    "krippendorff_alpha",
    "mcdonald_omega",
    "paired_mean_difference",
    "variance_components",
]

#: Row order of :func:`icc` (McGraw & Wong names; ``ICC(A,k)`` with k = 2 is the
#: reference study's ICC(2,2)).  pingouin's ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k.
ICC_TYPES: tuple[str, ...] = (
    "ICC(1,1)",
    "ICC(A,1)",
    "ICC(C,1)",
    "ICC(1,k)",
    "ICC(A,k)",
    "ICC(C,k)",
)
ICC_COLUMNS: tuple[str, ...] = ("ICC", "F", "df1", "df2", "pval", "ci_low", "ci_high")
_ALPHA = 0.05  # two-sided level of every confidence interval here (95 %)


class InsufficientDataError(ValueError):
    """The data do not identify the requested coefficient (too few targets/raters, no variance).

    A subclass of ``ValueError`` so callers that compute reliability while rating is still
    going on can catch exactly this and show "not enough data yet".
    """


# --------------------------------------------------------------------------------------
# ICC for complete designs: two-way ANOVA mean squares -> six coefficients
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MeanSquares:
    """Two-way ANOVA mean squares (arrays broadcast over a batch of designs)."""

    msb: np.ndarray  # between targets
    msj: np.ndarray  # between raters (judges)
    mse: np.ndarray  # residual
    msw: np.ndarray  # within targets (raters + residual pooled), one-way model
    n: np.ndarray  # number of targets
    k: int  # number of raters


# A fit's coefficients: point values (and counts) by name, 95 % intervals as ``<name>_ci``.
IccFit = dict[str, float | tuple[float, float]]


def _mean_squares(values: np.ndarray) -> _MeanSquares:
    """Mean squares of ``values`` shaped ``(..., n_targets, k_raters)``, no missing cells."""
    n, k = values.shape[-2], values.shape[-1]
    grand = values.mean(axis=(-2, -1), keepdims=True)
    dev = values - grand
    row = dev.mean(axis=-1, keepdims=True)
    col = dev.mean(axis=-2, keepdims=True)
    ss_total = np.square(dev).sum(axis=(-2, -1))
    ss_rows = k * np.square(row).sum(axis=(-2, -1))
    ss_cols = n * np.square(col).sum(axis=(-2, -1))
    ss_err = np.square(dev - row - col).sum(axis=(-2, -1))
    ss_rows, ss_cols, ss_err, ss_within = _snap_round_off(
        (ss_rows, ss_cols, ss_err, ss_total - ss_rows),
        ss_total,
        np.abs(values).max(axis=(-2, -1)),
        n * k,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return _MeanSquares(
            msb=ss_rows / (n - 1),
            msj=ss_cols / (k - 1),
            mse=ss_err / ((n - 1) * (k - 1)),
            msw=ss_within / (n * (k - 1)),
            n=np.full(np.shape(ss_total), n, dtype=float),
            k=k,
        )


def _snap_round_off(parts, ss_total, max_abs, cells):
    """Set sums of squares that are zero up to floating-point round-off to exactly zero.

    A sum of squares that is 0 in exact arithmetic (identical rows, identical rater means,
    constant table) comes out as ~1e-30 after centring; left alone it turns an undefined
    coefficient (0/0, reported as NaN) into an arbitrary number.  A component below 1e-12
    of the total, or a total below the round-off of the centring, is treated as 0.
    """
    floor = np.maximum(1e-12 * ss_total, cells * (1e-10 * max_abs) ** 2)
    return tuple(np.where(part <= floor, 0.0, part) for part in parts)


def _icc_table(ms: _MeanSquares) -> dict[str, dict[str, np.ndarray]]:
    """The six ICCs with F test and 95 % CI, as pingouin.intraclass_corr computes them.

    Returns ``{type: {column: array}}``; arrays broadcast over the batch of ``ms``.  Three
    places differ from pingouin, each where its formula divides by zero or crosses a pole:

    * an F ratio of +inf (no residual variance: ICC = 1) gives the bounds their limit 1 instead
      of inf/inf = NaN, so an ICC of exactly 1 has the CI [1, 1];
    * ICC(A,1)'s Satterthwaite degrees of freedom are computed without dividing by MSE, so
      raters that agree up to a constant offset (MSE = 0, MSJ > 0) get a finite CI;
    * ICC(A,k) is the Spearman-Brown step-up of ICC(A,1) (algebraically pingouin's formula),
      which is −inf at or below ICC(A,1) = −1/(k−1); pingouin wraps round the pole there
      (perfectly opposed raters get ICC(A,k) = 5 with the CI [−inf, −inf]).
    """
    msb, msj, mse, msw, n, k = ms.msb, ms.msj, ms.mse, ms.msw, ms.n, ms.k
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        icc1 = (msb - msw) / (msb + (k - 1) * msw)
        icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
        icc3 = (msb - mse) / (msb + (k - 1) * mse)
        icc1k = (msb - msw) / msb
        icc3k = (msb - mse) / msb

        df1 = n - 1
        df2_one = n * (k - 1)
        df2_two = (n - 1) * (k - 1)
        f1 = msb / msw
        f3 = msb / mse
        p1 = f_dist.sf(f1, df1, df2_one)
        p3 = f_dist.sf(f3, df1, df2_two)

        q = 1 - _ALPHA / 2
        f1l = f1 / f_dist.ppf(q, df1, df2_one)
        f1u = f1 * f_dist.ppf(q, df2_one, df1)
        f3l = f3 / f_dist.ppf(q, df1, df2_two)
        f3u = f3 * f_dist.ppf(q, df2_two, df1)
        l1, u1 = _single_rater_bound(f1l, k), _single_rater_bound(f1u, k)
        l3, u3 = _single_rater_bound(f3l, k), _single_rater_bound(f3u, k)
        # ICC(A,1): Satterthwaite-type approximation (McGraw & Wong 1996, case 2A), with
        # numerator and denominator of v multiplied by MSE^2 so that MSE = 0 is no 0/0
        share = n * (1 + (k - 1) * icc2) - k * icc2
        vn = df2_two * (k * icc2 * msj + share * mse) ** 2
        vd = df1 * k**2 * icc2**2 * msj**2 + (share * mse) ** 2
        # vd = 0 only where MSJ = MSE = 0 (ICC(A,1) = 1): the bounds are 1 for any finite v
        v = np.divide(vn, vd, out=np.asarray(df2_two * np.ones_like(vn)), where=vd > 0)
        f2u = f_dist.ppf(q, n - 1, v)
        f2l = f_dist.ppf(q, v, n - 1)
        l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
        u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
        icc2k, l2k, u2k = (_spearman_brown(x, k) for x in (icc2, l2, u2))
        ci1k, ci3k = (1 - 1 / f1l, 1 - 1 / f1u), (1 - 1 / f3l, 1 - 1 / f3u)

    def row(value, f, df2, p, low, high) -> dict[str, np.ndarray]:
        cols = (value, f, df1, df2, p, low, high)
        return dict(zip(ICC_COLUMNS, (np.asarray(c, dtype=float) for c in cols), strict=True))

    return {
        "ICC(1,1)": row(icc1, f1, df2_one, p1, l1, u1),
        "ICC(A,1)": row(icc2, f3, df2_two, p3, l2, u2),
        "ICC(C,1)": row(icc3, f3, df2_two, p3, l3, u3),
        "ICC(1,k)": row(icc1k, f1, df2_one, p1, *ci1k),
        "ICC(A,k)": row(icc2k, f3, df2_two, p3, l2k, u2k),
        "ICC(C,k)": row(icc3k, f3, df2_two, p3, *ci3k),
    }


def _single_rater_bound(f_bound, k):
    """(F − 1) / (F + k − 1): a single-rater ICC bound from a bound of the F ratio.

    An F bound of +inf (no residual variance) gives the limit 1, not inf/inf.
    """
    f_bound = np.asarray(f_bound, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isposinf(f_bound), 1.0, (f_bound - 1) / (f_bound + (k - 1)))


def _spearman_brown(x, k):
    """k·x / (1 + (k−1)·x): a single-rater ICC (or bound) stepped up to the mean of k raters.

    At x = −1/(k−1), the pole, the stepped-up value is −∞, and so is it below the pole (the
    limit from above; the formula itself would wrap round to values above 1 there).  Near the
    pole the denominator is round-off, so −∞ is returned instead of a huge number of either
    sign (pingouin returns whatever the round-off gives).  NaN stays NaN.
    """
    x = np.asarray(x, dtype=float)
    denominator = 1 + (k - 1) * x
    with np.errstate(divide="ignore", invalid="ignore"):
        stepped = k * x / denominator
    return np.where(denominator <= 1e-9, -np.inf, stepped)


def icc(wide: pd.DataFrame) -> pd.DataFrame:
    """Six intraclass correlations of a complete targets x raters table.

    ``wide`` has one row per target and one column per rater, no missing cells.  Returns a
    frame indexed by :data:`ICC_TYPES` with columns ``ICC, F, df1, df2, pval, ci_low,
    ci_high`` (95 % F-based CIs), numerically identical to ``pingouin.intraclass_corr`` except
    where pingouin divides by zero or wraps round a pole (see :func:`_icc_table`): an ICC of
    exactly 1 has the CI [1, 1], and ICC(A,k) and its bounds are −inf where ICC(A,1) (or its
    bound) is at or below −1/(k−1).  Undefined coefficients (e.g. all ratings equal) are NaN,
    as in pingouin.
    """
    values = np.asarray(wide, dtype=float)
    if values.ndim != 2:
        raise ValueError("icc() expects a 2-D targets x raters table")
    if np.isnan(values).any():
        raise ValueError("icc() needs a complete table; use icc_incomplete() for missing cells")
    n, k = values.shape
    if n < 2 or k < 2:
        raise InsufficientDataError(f"icc() needs >= 2 targets and >= 2 raters, got {n} x {k}")
    table = _icc_table(_mean_squares(values))
    frame = pd.DataFrame(
        [[float(table[t][c]) for c in ICC_COLUMNS] for t in ICC_TYPES],
        index=pd.Index(ICC_TYPES, name="type"),
        columns=list(ICC_COLUMNS),
    )
    return frame


def icc_two_raters(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    groups: Sequence | np.ndarray,
    types: Iterable[str] = ("ICC(A,k)",),
) -> pd.DataFrame:
    """Two-rater ICCs of many small designs at once, without a Python loop.

    Each row ``i`` is one target rated by two raters (``a[i]``, ``b[i]``) and belongs to the
    design ``groups[i]`` (e.g. a (rater pair, item) label).  For every group this computes the
    same numbers as :func:`icc` on the group's ``n x 2`` table, using grouped sums
    (``np.bincount``) over the whole input.  Returns one row per group (sorted group labels)
    with column ``n`` (targets) and, for every requested type in ``types``, the columns
    ``"<type>"``, ``"<type> ci_low"``, ``"<type> ci_high"``, ``"<type> pval"``.
    Groups with fewer than two targets get NaN.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    labels, code = np.unique(np.asarray(groups), return_inverse=True)
    m = len(labels)
    n = np.bincount(code, minlength=m).astype(float)

    def gsum(x: np.ndarray) -> np.ndarray:
        return np.bincount(code, weights=x, minlength=m)

    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a, mean_b = gsum(a) / n, gsum(b) / n
        grand = (mean_a + mean_b) / 2
        da, db = a - grand[code], b - grand[code]  # two-pass: centred before squaring
        row_dev = (da + db) / 2
        ss_rows = 2 * gsum(row_dev**2)
        ss_cols = n * ((mean_a - grand) ** 2 + (mean_b - grand) ** 2)
        ss_total = gsum(da**2 + db**2)
        # residual of a 2-column table: e_i1 = -e_i2 = ((a_i - b_i) - (mean_a - mean_b)) / 2
        ss_err = gsum(((a - b) - (mean_a - mean_b)[code]) ** 2) / 2
        max_abs = np.zeros(m)
        np.maximum.at(max_abs, code, np.maximum(np.abs(a), np.abs(b)))
        ss_rows, ss_cols, ss_err, ss_within = _snap_round_off(
            (ss_rows, ss_cols, ss_err, ss_total - ss_rows), ss_total, max_abs, 2 * n
        )
        ms = _MeanSquares(
            msb=ss_rows / (n - 1),
            msj=ss_cols,
            mse=ss_err / (n - 1),
            msw=ss_within / n,
            n=n,
            k=2,
        )
    table = _icc_table(ms)
    out = pd.DataFrame({"n": n.astype(int)}, index=pd.Index(labels, name="group"))
    for t in types:
        out[t] = table[t]["ICC"]
        out[f"{t} ci_low"] = table[t]["ci_low"]
        out[f"{t} ci_high"] = table[t]["ci_high"]
        out[f"{t} pval"] = table[t]["pval"]
    too_small = n < 2
    out.loc[too_small, out.columns[1:]] = np.nan
    return out


def paired_mean_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    groups: Sequence | np.ndarray,
) -> pd.DataFrame:
    """Mean of ``a − b`` per group with the 95 % CI of the paired t-test, for many groups at once.

    Row ``i`` is one target scored ``a[i]`` and ``b[i]`` by two raters, in design
    ``groups[i]``.  Per group: ``n``, ``mean``, ``ci_low``, ``ci_high`` with
    mean ± t(0.975, n − 1) · sd / √n — the interval of R's ``t.test(a, b, paired = TRUE)``
    (with 5 targets the normal quantile 1.96 instead of t(4) = 2.78 gives an interval 1.4 times
    too narrow).  One row per group (sorted labels); the CI is NaN for fewer than 2 targets,
    and [mean, mean] when every difference is the same (R refuses such data).
    """
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    labels, code = np.unique(np.asarray(groups), return_inverse=True)
    m = len(labels)
    n = np.bincount(code, minlength=m).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(code, weights=diff, minlength=m) / n
        centred = diff - mean[code]  # two-pass: centred before squaring
        var = np.bincount(code, weights=centred**2, minlength=m) / (n - 1)
        half = t_dist.ppf(1 - _ALPHA / 2, n - 1) * np.sqrt(var / n)
    half = np.where(n >= 2, half, np.nan)
    return pd.DataFrame(
        {"n": n.astype(int), "mean": mean, "ci_low": mean - half, "ci_high": mean + half},
        index=pd.Index(labels, name="group"),
    )


# --------------------------------------------------------------------------------------
# ICC for incomplete designs: crossed random effects by REML
# --------------------------------------------------------------------------------------

_MC_DRAWS = 10_000
_MC_SEED = 20_240_601
_BOUNDARY = 1e-14  # variance ratio below which a variance component counts as zero
_RATIO_MAX = 1e8  # variance ratio cap: beyond it the residual variance is 0 for all purposes


@dataclass(frozen=True)
class _Design:
    """Sufficient statistics of y = mu + target + rater + e on the observed cells."""

    y_sum_t: np.ndarray  # per-target sum of y            (n,)
    k_t: np.ndarray  # raters per target                   (n,)
    incidence: np.ndarray  # targets x raters 0/1          (n, m)
    w_y: np.ndarray  # W'y with W = [1, Z_r]               (1+m,)
    yy: float  # y'y
    n_obs: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.incidence.shape


def _design(long: pd.DataFrame, target: str, rater: str, score: str) -> _Design:
    frame = long[[target, rater, score]].dropna()
    if frame.duplicated([target, rater]).any():
        raise ValueError(f"more than one score per ({target}, {rater}); aggregate first")
    t_code, _ = pd.factorize(frame[target], sort=True)
    r_code, _ = pd.factorize(frame[rater], sort=True)
    y = frame[score].to_numpy(dtype=float)
    n, m = (t_code.max() + 1, r_code.max() + 1) if len(y) else (0, 0)
    if n < 2:
        raise InsufficientDataError("icc_incomplete() needs at least 2 targets")
    if m < 2:
        raise InsufficientDataError("icc_incomplete() needs at least 2 raters")
    y = y - y.mean()  # centring changes only mu; keeps y'y well conditioned
    incidence = np.zeros((n, m))
    incidence[t_code, r_code] = 1.0
    k_t = incidence.sum(axis=1)
    if k_t.max() < 2:
        raise InsufficientDataError(
            "no target is rated by 2 raters: target and residual variance are confounded"
        )
    if np.ptp(y) == 0:
        raise InsufficientDataError("all scores are equal: no variance to partition")
    w_y = np.concatenate([[y.sum()], np.bincount(r_code, weights=y, minlength=m)])
    return _Design(
        y_sum_t=np.bincount(t_code, weights=y, minlength=n),
        k_t=k_t,
        incidence=incidence,
        w_y=w_y,
        yy=float(y @ y),
        n_obs=len(y),
    )


def _logdet_and_pwrss(d: _Design, theta_t: float, theta_r: float) -> tuple[float, float]:
    """log|C| and the penalised residual sum of squares of the scaled mixed-model equations.

    With u = Lambda v (Lambda = diag(theta_t, theta_r)), the mixed-model matrix is
    C = [[Lambda Z'Z Lambda + I, Lambda Z'X], [X'Z Lambda, X'X]], whose log determinant equals
    log|H| + log|X'H^-1 X| for H = I + theta_t^2 Z_t Z_t' + theta_r^2 Z_r Z_r'.  The target
    block is diagonal (1 + theta_t^2 k_i), so it is absorbed analytically and only a
    (1 + raters)-sized Schur complement is factorised.
    """
    m = d.shape[1]
    tt = theta_t**2
    w = 1.0 / (1.0 + tt * d.k_t)  # inverse of the (diagonal) target block
    # Schur complement, written so that nothing cancels when theta_t is large
    raters = -tt * (d.incidence.T * w) @ d.incidence
    np.fill_diagonal(raters, (1.0 + tt * (d.k_t - 1.0)) * w @ d.incidence)
    schur = np.empty((m + 1, m + 1))
    schur[0, 0] = d.k_t @ w
    schur[0, 1:] = schur[1:, 0] = theta_r * (w @ d.incidence)
    schur[1:, 1:] = theta_r**2 * raters + np.eye(m)
    y_w = d.y_sum_t * w
    rhs = np.concatenate([[y_w.sum()], theta_r * (d.w_y[1:] - tt * (y_w @ d.incidence))])
    chol = linalg.cho_factor(schur, lower=True)
    logdet = float(-np.log(w).sum() + 2 * np.log(np.diag(chol[0])).sum())
    pwrss = d.yy - tt * float(d.y_sum_t @ y_w) - float(rhs @ linalg.cho_solve(chol, rhs))
    return logdet, pwrss


def _reml_profiled(ratio: np.ndarray, d: _Design) -> float:
    """REML deviance with mu and sigma_e^2 profiled out (up to a constant), as in lme4.

    ``ratio`` holds the variance ratios sigma2_t / sigma2_e and sigma2_r / sigma2_e.
    """
    logdet, pwrss = _logdet_and_pwrss(d, np.sqrt(ratio[0]), np.sqrt(ratio[1]))
    return logdet + (d.n_obs - 1) * np.log(pwrss / (d.n_obs - 1))


def _reml_full(var: np.ndarray, d: _Design) -> float:
    """REML deviance -2 l_R(sigma2_t, sigma2_r, sigma2_e) (up to a constant); var > 0."""
    s_t, s_r, s_e = var
    logdet, pwrss = _logdet_and_pwrss(d, np.sqrt(s_t / s_e), np.sqrt(s_r / s_e))
    return logdet + (d.n_obs - 1) * np.log(s_e) + pwrss / s_e


def _numeric_derivatives(func, x: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of ``func`` at ``x`` by central differences with step ``h``."""
    p = len(x)
    steps = np.eye(p) * h
    f0 = func(x)
    plus = np.array([func(x + s) for s in steps])
    minus = np.array([func(x - s) for s in steps])
    grad = (plus - minus) / (2 * h)
    hess = np.diag((plus - 2 * f0 + minus) / h**2)
    for i in range(p):
        for j in range(i + 1, p):
            hess[i, j] = hess[j, i] = (
                func(x + steps[i] + steps[j])
                - func(x + steps[i] - steps[j])
                - func(x - steps[i] + steps[j])
                + func(x - steps[i] - steps[j])
            ) / (4 * h * h)
    return grad, hess


def _fit_reml(d: _Design) -> np.ndarray:
    """(sigma2_t, sigma2_r, sigma2_e) maximising the REML likelihood (ratios bounded at 0).

    SLSQP over the variance ratios (not lme4's relative SDs theta: the deviance is even
    in theta, so theta = 0 is a stationary point where a gradient method can stall), then
    Newton steps on the log ratios of the interior components with central-difference
    derivatives, because forward-difference gradients stop early on large designs (about
    1e-5 relative on 20,000 cells).
    """
    best = optimize.minimize(
        _reml_profiled,
        np.ones(2),  # lme4's start
        args=(d,),
        method="SLSQP",  # as accurate as L-BFGS-B here and several times faster
        jac="3-point",
        bounds=[(0.0, _RATIO_MAX)] * 2,
        options={"ftol": 1e-14, "maxiter": 500},
    )
    ratio = np.where(best.x < _BOUNDARY, 0.0, best.x)
    free = np.flatnonzero(ratio > 0)

    def on_log(z: np.ndarray) -> float:
        full = ratio.copy()
        full[free] = np.exp(z)
        return _reml_profiled(full, d)

    z = np.log(ratio[free])
    for _ in range(6 if len(free) else 0):
        grad, hess = _numeric_derivatives(on_log, z, 1e-4)
        if np.abs(grad).max() < 1e-9 or np.linalg.eigvalsh(hess).min() <= 0:
            break
        step = np.linalg.solve(hess, grad)
        while on_log(z - step) > on_log(z) and np.abs(step).max() > 1e-12:
            step = step / 2
        z = z - step
    ratio[free] = np.exp(z)
    _, pwrss = _logdet_and_pwrss(d, *np.sqrt(ratio))
    s_e = pwrss / (d.n_obs - 1)
    return np.array([ratio[0] * s_e, ratio[1] * s_e, s_e])


def _reml_covariance(var: np.ndarray, d: _Design) -> np.ndarray:
    """Asymptotic covariance of the variance components: inverse observed REML information.

    The Hessian is taken by central differences on the log scale (relative steps) and mapped
    back to the natural scale (at the optimum the gradient vanishes, so this equals the
    natural-scale inverse Hessian).  Components estimated at 0 sit on the boundary of the
    parameter space; they are held fixed (zero rows/columns in the covariance).
    """
    free = np.flatnonzero(var > 0)

    def on_log(z: np.ndarray) -> float:
        full = var.copy()
        full[free] = np.exp(z)
        return _reml_full(full, d)

    _, hess = _numeric_derivatives(on_log, np.log(var[free]), 1e-4)
    cov_log = 2 * np.linalg.pinv(hess)  # information = Hessian(-2 l_R) / 2
    cov = np.zeros((3, 3))
    cov[np.ix_(free, free)] = cov_log * np.outer(var[free], var[free])
    return cov


def _incomplete_iccs(var: np.ndarray, khat: float, q: float) -> dict[str, np.ndarray]:
    """The four coefficients from variance components; ``var`` is (..., 3)."""
    s_t, s_r, s_e = var[..., 0], var[..., 1], var[..., 2]
    return _iccs_of(s_t, s_r, s_e, (s_r + s_e) / khat, q * s_r + s_e / khat)


def _iccs_of(target, rater, residual, error_of_mean, error_q) -> dict[str, np.ndarray]:
    """ICC(A,1), ICC(A,khat), ICC(C,1), ICC(Q,khat) from the target variance, the rater and
    residual variance of one rating, and the error variances of the mean of khat ratings
    (absolute: (s_r + s_e)/khat; Putka's: q s_r + s_e/khat)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "ICC(A,1)": target / (target + rater + residual),
            "ICC(A,khat)": target / (target + error_of_mean),
            "ICC(C,1)": target / (target + residual),
            "ICC(Q,khat)": target / (target + error_q),
        }


def _khat_and_q(incidence: np.ndarray) -> tuple[float, float]:
    """Harmonic mean raters per target and Putka's q.

    q = 1/khat - sum_{i != i'} c_ii' / (k_i k_i') / (n (n - 1)), with c_ii' the number of
    raters targets i and i' share.  sum_{i, i'} c_ii'/(k_i k_i') = sum_r (sum_i M_ir/k_i)^2,
    and the diagonal terms are c_ii/k_i^2 = 1/k_i, so no n x n matrix is needed.
    """
    n = incidence.shape[0]
    k = incidence.sum(axis=1)
    inv_k = 1.0 / k
    khat = n / inv_k.sum()
    shared = float(np.square(inv_k @ incidence).sum() - inv_k.sum())
    return float(khat), float(1.0 / khat - shared / (n * (n - 1)))


def icc_incomplete(
    long: pd.DataFrame,
    target: str = "session",
    rater: str = "rater",
    score: str = "score",
    *,
    n_draws: int = _MC_DRAWS,
    seed: int = _MC_SEED,
) -> IccFit:
    """ICCs of an incomplete (e.g. partially double-coded) design from REML variance components.

    Fits y = mu + target + rater + e with crossed random target and rater effects on the
    observed cells by REML (the same criterion as lme4's
    ``lmer(y ~ 1 + (1|target) + (1|rater), REML = TRUE)``), then returns

    * ``ICC(A,1)``    = s_t / (s_t + s_r + s_e)              absolute agreement, one rater
    * ``ICC(A,khat)`` = s_t / (s_t + (s_r + s_e) / khat)     absolute agreement, khat raters
    * ``ICC(C,1)``    = s_t / (s_t + s_e)                    consistency, one rater
    * ``ICC(Q,khat)`` = s_t / (s_t + q s_r + s_e / khat)     Putka et al. (2008) G(q,k) for
      ill-structured designs; ten Hove, Jorgensen & van der Ark (2022)

    with khat the harmonic mean number of raters per target and q the share of rater
    variance that does not cancel in target comparisons.  Also ``khat``, ``q``,
    ``var_target``, ``var_rater``, ``var_residual``, ``n_targets``, ``n_raters``, ``n_obs``.

    ``<coef>_ci`` holds a 95 % Monte-Carlo interval: ``n_draws`` draws of the three variance
    components from a normal distribution with the inverse observed REML information as
    covariance, **on the natural scale, truncated at 0** (negative draws set to 0), and the
    2.5/97.5 percentiles of the coefficient.  A component estimated at 0 (boundary) is held
    at 0.  The generator is seeded (``seed``) so results are deterministic.

    On a complete design the coefficients equal :func:`icc`'s ICC(A,1), ICC(C,1), ICC(A,k)
    and ICC(C,k) (= ICC(Q,khat), since q = 0) whenever the ANOVA estimates are non-negative.

    Missing scores (NaN) are dropped.  Raises :class:`InsufficientDataError` (a ValueError)
    for fewer than 2 targets or raters, no target rated twice, or no variance at all;
    ``ValueError`` when a rater scored a target more than once.
    """
    fit = variance_components(long, target, rater, score)
    draws = _draw_components(fit, n_draws, np.random.default_rng(seed))
    result = _with_intervals(
        _incomplete_iccs(fit.var, fit.khat, fit.q), _incomplete_iccs(draws, fit.khat, fit.q)
    )
    result.update(
        khat=fit.khat,
        q=fit.q,
        var_target=float(fit.var[0]),
        var_rater=float(fit.var[1]),
        var_residual=float(fit.var[2]),
        n_targets=fit.n_targets,
        n_raters=fit.n_raters,
        n_obs=fit.n_obs,
    )
    return result


@dataclass(frozen=True)
class VarianceComponents:
    """A REML fit of y = mu + target + rater + e (see :func:`icc_incomplete`)."""

    var: np.ndarray  # (sigma2_target, sigma2_rater, sigma2_residual)
    cov: np.ndarray  # their asymptotic covariance (inverse observed REML information), 3 x 3
    khat: float  # harmonic mean number of raters per target
    q: float  # Putka's share of rater variance that does not cancel between targets
    n_targets: int
    n_raters: int
    n_obs: int


def variance_components(
    long: pd.DataFrame, target: str = "session", rater: str = "rater", score: str = "score"
) -> VarianceComponents:
    """The REML variance components behind :func:`icc_incomplete`, with their covariance."""
    d = _design(long, target, rater, score)
    var = _fit_reml(d)
    khat, q = _khat_and_q(d.incidence)
    n, m = d.shape
    return VarianceComponents(var, _reml_covariance(var, d), khat, q, int(n), int(m), d.n_obs)


def _draw_components(fit: VarianceComponents, n_draws: int, rng) -> np.ndarray:
    """Monte-Carlo draws of the components: normal, truncated at 0 (boundary ones stay 0)."""
    draws = rng.multivariate_normal(fit.var, fit.cov, size=n_draws, method="eigh")
    return np.clip(draws, 0.0, None)


def _with_intervals(point: dict[str, np.ndarray], sampled: dict[str, np.ndarray]) -> IccFit:
    """Point values and ``<name>_ci``: the 2.5 and 97.5 percentiles of the sampled values."""
    result: IccFit = {name: float(value) for name, value in point.items()}
    for name, values in sampled.items():
        low, high = np.nanpercentile(values, [100 * _ALPHA / 2, 100 * (1 - _ALPHA / 2)])
        result[f"{name}_ci"] = (float(low), float(high))
    return result


def composite_icc(
    parts: Sequence[tuple[float, VarianceComponents]],
    true_covariance: float,
    true_covariance_se: float,
    *,
    n_draws: int = _MC_DRAWS,
    seed: int = _MC_SEED,
) -> IccFit:
    """The four ICCs of :func:`icc_incomplete` for a weighted sum of two separately rated parts.

    ``parts`` are two (weight w_p, REML fit of part p over its own targets).  The composite
    of a target is w_1 y_1 + w_2 y_2 with y_1 and y_2 from two ratings whose errors are
    independent (e.g. of two different sessions).  Its target variance is
    sum w_p^2 s_t,p + 2 w_1 w_2 c, where c = ``true_covariance`` is the covariance of the two
    parts' target effects (estimated by the caller; ``true_covariance_se`` its standard
    error); its error variances are the weighted sums of the parts' rater and residual
    variances, for the mean of khat ratings each part's own khat and q.  With one part
    (weights 1 and 0) this is exactly :func:`icc_incomplete` — the reliability of a composite
    from its parts' variance components (multivariate generalizability theory; Mosier 1943).

    ``<coef>_ci``: Monte-Carlo 95 % intervals as in :func:`icc_incomplete`, drawing the parts'
    components independently of each other and c from a normal distribution.  Also returns
    the composite's ``var_target``, ``var_rater`` and ``var_residual`` (one rating per part).
    """
    (w1, fit1), (w2, fit2) = parts
    rng = np.random.default_rng(seed)
    draws = [_draw_components(fit, n_draws, rng) for fit in (fit1, fit2)]
    covariances = rng.normal(true_covariance, true_covariance_se, size=n_draws)

    def summed(v1: np.ndarray, v2: np.ndarray, c: float | np.ndarray) -> np.ndarray:
        """Target, rater and residual variance, and the two errors of a mean of khat ratings."""
        total = _weighted_terms(w1, v1, fit1) + _weighted_terms(w2, v2, fit2)
        total[0] = total[0] + 2 * w1 * w2 * c
        return total

    point = summed(fit1.var, fit2.var, true_covariance)
    result = _with_intervals(_iccs_of(*point), _iccs_of(*summed(draws[0], draws[1], covariances)))
    result.update(
        var_target=float(point[0]), var_rater=float(point[1]), var_residual=float(point[2])
    )
    return result


def _weighted_terms(weight: float, var: np.ndarray, fit: VarianceComponents) -> np.ndarray:
    """One part's share of a composite's variances (see :func:`composite_icc`)."""
    s_t, s_r, s_e = (weight**2 * var[..., j] for j in range(3))
    return np.stack([s_t, s_r, s_e, (s_r + s_e) / fit.khat, fit.q * s_r + s_e / fit.khat])


# --------------------------------------------------------------------------------------
# Agreement on categorical / ordinal scores
# --------------------------------------------------------------------------------------

_LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _alpha_distance(level: str, values: np.ndarray, n_v: np.ndarray) -> np.ndarray:
    """Squared difference function delta(c, k) of Krippendorff's alpha over the value domain."""
    c, k = np.meshgrid(values, values, indexing="ij")
    if level == "nominal":
        return (c != k).astype(float)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        total = c + k
        ratio = np.divide(c - k, total, out=np.zeros_like(total), where=total != 0)
        return ratio**2
    # ordinal: (sum of n_g from c to k  -  (n_c + n_k) / 2)^2, on ranks of the domain
    cum = np.concatenate([[0.0], np.cumsum(n_v)])
    i, j = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    between = cum[hi + 1] - cum[lo]
    return (between - (n_v[i] + n_v[j]) / 2) ** 2


def krippendorff_alpha(reliability_data: pd.DataFrame | np.ndarray, level: str) -> float:
    """Krippendorff's alpha of a raters x units table (NaN = not rated).

    Vectorised through the coincidence matrix o = N' diag(1/(m_u - 1)) N - diag(...) with N
    the units x values count matrix; only units with at least two values are pairable.
    ``level`` is ``nominal``, ``ordinal``, ``interval`` or ``ratio``.  The value domain is
    the set of observed values.  Returns NaN when alpha is undefined (no pairable unit, or
    a single value throughout, i.e. no expected disagreement).
    """
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {_LEVELS}, got {level!r}")
    data = np.asarray(reliability_data, dtype=float)
    if data.ndim != 2:
        raise ValueError("reliability_data must be a 2-D raters x units table")
    rater_idx, unit_idx = np.nonzero(~np.isnan(data))
    observed = data[rater_idx, unit_idx]
    values, value_idx = np.unique(observed, return_inverse=True)
    counts = np.zeros((data.shape[1], len(values)))
    np.add.at(counts, (unit_idx, value_idx), 1.0)
    m_u = counts.sum(axis=1)
    counts = counts[m_u >= 2]
    weight = 1.0 / (m_u[m_u >= 2] - 1)
    if len(counts) == 0:
        return float("nan")
    coincidence = (counts * weight[:, None]).T @ counts - np.diag(weight @ counts)
    n_v = coincidence.sum(axis=0)
    n = n_v.sum()
    delta = _alpha_distance(level, values, n_v)
    expected = float(n_v @ delta @ n_v)
    if expected == 0:
        return float("nan")
    return float(1 - (n - 1) * float((coincidence * delta).sum()) / expected)


def batched_kappa(
    a: np.ndarray,
    b: np.ndarray,
    groups: np.ndarray,
    weights: str | None = "linear",
    n_groups: int | None = None,
) -> np.ndarray:
    """Cohen's kappa of many pairs of raters at once: unweighted (``weights`` None), linear or
    quadratic, over integer scores.

    ``a[i]``, ``b[i]``: the two raters' scores of target ``i``, which belongs to group
    ``groups[i]`` (0 .. n_groups - 1; e.g. a rater pair x item). Disagreement weights are
    |i - j| or (i - j)^2 of the *scores* (or 0/1); one confusion matrix per group from a single
    ``bincount``, spanning the scores of all groups: a score nobody gave adds nothing to the
    observed or the expected disagreement, so each group gets the kappa over its own item's
    scale, whatever its range, as ``sklearn.metrics.cohen_kappa_score`` gives with the scale's
    points as ``labels``. NaN where the expected disagreement is 0 (both raters constant and
    equal) or a group has no rows.
    """
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    a, b = np.asarray(a).astype(int), np.asarray(b).astype(int)
    groups = np.asarray(groups, dtype=int)
    low = int(min(a.min(), b.min())) if len(a) else 0
    size = int(max(a.max(), b.max())) - low + 1 if len(a) else 1
    m = n_groups if n_groups is not None else (int(groups.max()) + 1 if len(groups) else 0)
    flat = (groups * size + (a - low)) * size + (b - low)
    conf = np.bincount(flat, minlength=m * size * size).reshape(m, size, size).astype(float)
    n = conf.sum(axis=(1, 2))
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    if weights is None:
        w = (i != j).astype(float)
    else:
        w = np.abs(i - j).astype(float) ** (1 if weights == "linear" else 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = conf.sum(axis=2)[:, :, None] * conf.sum(axis=1)[:, None, :] / n[:, None, None]
        disagreement_expected = (w * expected).sum(axis=(1, 2))
        kappa = 1 - (w * conf).sum(axis=(1, 2)) / disagreement_expected
    return np.where(disagreement_expected > 0, kappa, np.nan)


def batched_agreement(
    a: np.ndarray, b: np.ndarray, groups: np.ndarray, n_groups: int | None = None
) -> np.ndarray:
    """Percent agreement (0-100) of many pairs at once: the share of targets of each group on
    which the two raters gave the same value. NaN for a group without rows."""
    a, b = np.asarray(a), np.asarray(b)
    groups = np.asarray(groups, dtype=int)
    m = n_groups if n_groups is not None else (int(groups.max()) + 1 if len(groups) else 0)
    same = np.bincount(groups, weights=(a == b).astype(float), minlength=m)
    n = np.bincount(groups, minlength=m).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, 100 * same / n, np.nan)


def fleiss_kappa(table: pd.DataFrame | np.ndarray) -> float:
    """Fleiss' kappa of a units x raters table of nominal values (every unit rated by every
    rater; rows with a missing value are dropped). NaN when it is undefined (fewer than 2
    raters or units, or one category throughout)."""
    data = np.asarray(table, dtype=float)
    data = data[~np.isnan(data).any(axis=1)] if data.ndim == 2 else data
    if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] < 2:
        return float("nan")
    n_units, k = data.shape
    _, codes = np.unique(data, return_inverse=True)
    codes = codes.reshape(data.shape)
    counts = np.zeros((n_units, int(codes.max()) + 1))
    np.add.at(counts, (np.repeat(np.arange(n_units), k), codes.ravel()), 1.0)
    p_j = counts.sum(axis=0) / (n_units * k)
    p_i = ((counts**2).sum(axis=1) - k) / (k * (k - 1))
    expected = float((p_j**2).sum())
    if expected >= 1:
        return float("nan")
    return float((p_i.mean() - expected) / (1 - expected))


# --------------------------------------------------------------------------------------
# Internal consistency of an instrument's items
# --------------------------------------------------------------------------------------


def _complete_items(items: pd.DataFrame, min_items: int = 2) -> pd.DataFrame:
    """Rows (e.g. ratings) without a missing item; at least ``min_items`` items, 2 rows."""
    frame = pd.DataFrame(items).astype(float).dropna(axis=0, how="any")
    if frame.shape[1] < min_items:
        raise InsufficientDataError(f"needs at least {min_items} items, got {frame.shape[1]}")
    if frame.shape[0] < 2:
        raise InsufficientDataError("needs at least 2 complete rows")
    return frame


def cronbach_alpha(items: pd.DataFrame) -> float:
    """Cronbach's alpha of a rows x items table (listwise deletion of incomplete rows).

    alpha = k/(k-1) (1 - sum var(item) / var(total)); equals pingouin.cronbach_alpha and R
    psych::alpha's raw_alpha on complete data.  NaN when the total has no variance.
    """
    cov = _complete_items(items).cov().to_numpy()
    k = cov.shape[0]
    total = cov.sum()
    if total == 0:
        return float("nan")
    return float(k / (k - 1) * (1 - np.trace(cov) / total))


def item_total_correlations(items: pd.DataFrame) -> pd.Series:
    """Corrected item-total correlations: each item against the sum of the other items.

    Matches psych::alpha's ``r.drop`` (listwise deletion of incomplete rows).  Computed from
    the covariance matrix: cov(x_j, T - x_j) = rowsum_j - var_j.
    """
    frame = _complete_items(items)
    cov = frame.cov().to_numpy()
    var = np.diag(cov)
    row = cov.sum(axis=1)
    rest_var = cov.sum() - 2 * row + var
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (row - var) / np.sqrt(var * rest_var)
    return pd.Series(r, index=frame.columns, name="r_drop")


_ML_LOWER = 0.005  # lower bound of uniquenesses, as in R factanal / psych::fa(fm = "ml")
_SINGULAR = 1e-10  # a correlation matrix whose least eigenvalue is at most this is singular


def _ml_one_factor(corr: np.ndarray) -> np.ndarray:
    """Loadings of a one-factor maximum-likelihood factor analysis of a correlation matrix.

    The algorithm of R's ``factanal`` (also used by ``psych::fa(fm = "ml")``): minimise the
    concentrated ML discrepancy over the uniquenesses psi in [0.005, 1] with L-BFGS-B using
    the analytic gradient; the loadings follow from the leading eigenvector of
    Psi^-1/2 R Psi^-1/2.
    """

    def loadings(psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = 1 / np.sqrt(psi)
        evals, evecs = np.linalg.eigh(corr * np.outer(scale, scale))
        lead = evecs[:, -1] * np.sqrt(max(evals[-1] - 1, 0.0))
        return np.sqrt(psi) * lead, evals

    def objective(psi: np.ndarray) -> float:
        scale = 1 / np.sqrt(psi)
        evals = np.linalg.eigvalsh(corr * np.outer(scale, scale))[:-1]
        return -float(np.sum(np.log(evals) - evals) - 1 + len(psi))

    def gradient(psi: np.ndarray) -> np.ndarray:
        lam, _ = loadings(psi)
        return (lam**2 + psi - np.diag(corr)) / psi**2

    start = (1 - 0.5 / len(corr)) / np.diag(np.linalg.inv(corr))
    res = optimize.minimize(
        objective,
        start,
        jac=gradient,
        method="L-BFGS-B",
        bounds=[(_ML_LOWER, 1.0)] * len(corr),
        options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 1000},
    )
    return loadings(res.x)[0]


def mcdonald_omega(items: pd.DataFrame) -> float:
    """McDonald's omega total from a one-factor ML factor analysis of the item correlations.

    omega = (sum lambda)^2 / ((sum lambda)^2 + sum psi), psi = 1 - lambda^2, with lambda the
    standardised loadings of ``psych::fa(x, nfactors = 1, fm = "ml")`` (R ``factanal``'s
    estimator).  This is the omega we replicate in the R cross-checks; psych::omega's
    omega.tot instead divides by the sum of the whole correlation matrix and uses minres.
    Needs at least 3 items (a one-factor model of 2 items is not identified) and listwise
    complete rows; NaN if an item has no variance, or if the items are linearly dependent
    (e.g. items that always agree): their correlation matrix is singular, the ML discrepancy
    (a log-determinant) is undefined, and R's ``factanal`` stops there too.
    """
    frame = _complete_items(items, min_items=3)
    if (frame.var() == 0).any():
        return float("nan")
    corr = np.corrcoef(frame.to_numpy(), rowvar=False)
    if np.linalg.eigvalsh(corr)[0] <= _SINGULAR:
        return float("nan")
    lam = _ml_one_factor(corr)
    common = lam.sum() ** 2
    return float(common / (common + np.sum(1 - lam**2)))
