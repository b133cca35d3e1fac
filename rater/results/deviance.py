"""lme4's profiled deviance of a linear mixed model, and its minimum (pure: numpy and scipy).

Bates, Mächler, Bolker & Walker (2015), "Fitting linear mixed-effects models using lme4",
J. Stat. Softw. 67(1), section 3: for a model ``y = X beta + Z b + e`` with
``b ~ N(0, sigma^2 Lambda Lambda')`` and ``e ~ N(0, sigma^2 I)``, the fixed effects and sigma are
profiled out, leaving a function of the relative covariance factor theta alone (``Lambda`` is
block-diagonal, one lower-triangular ``T`` per group, its diagonal >= 0):

* ML:   ``d(theta)   = log|L|^2 + n (1 + log(2 pi r^2 / n))``
* REML: ``d_R(theta) = log|L|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2 / (n - p)))``

with ``|L|^2 = prod_g det(T' Z_g' Z_g T + I)``, ``R_X' R_X = X' V^-1 X`` (``V = Z Lambda Lambda' Z'
+ I``) and ``r^2`` the penalised residual sum of squares ``(y - X beta)' V^-1 (y - X beta)`` at
the GLS estimate of beta. Groups are independent, so everything is a sum over groups of small
matrices built from per-group cross-products (Woodbury's identity), computed once.

Why this module exists: statsmodels' MixedLM parametrises the covariance so that a variance
of exactly 0 is out of reach; on data whose best fit has a variance on that boundary it stops
short and differs from lme4. Here theta is bounded below by 0 on the diagonal, as in lme4,
and minimised with L-BFGS-B (gradients by 3-point differences; 2-point ones were too coarse
and left estimates 1e-4 off). A minimum counts only when it passes a stationarity check:
the gradient vanishes in every free direction and points into the feasible region at a bound.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

GRADIENT_TOLERANCE = 1e-3  # |d deviance / d theta| at a minimum (lme4 warns above 2e-3)
BOUND_TOLERANCE = 1e-8  # a diagonal element of theta this close to 0 is on the boundary
MAX_ITERATIONS = 10_000
MAX_RESTARTS = 3  # restarts from where a minimisation stalled
INWARD_STEPS = (1e-4, 1e-3, 1e-2, 1e-1)  # steps off a bound of theta (the second-order check)


@dataclass(frozen=True)
class Problem:
    """The cross-products of one model and data set that the deviance needs (per group g)."""

    xtx: np.ndarray  # (p, p)
    xty: np.ndarray  # (p,)
    yty: float
    ztz: np.ndarray  # (G, q, q)
    ztx: np.ndarray  # (G, q, p)
    zty: np.ndarray  # (G, q)
    n: int

    @property
    def p(self) -> int:
        return self.xtx.shape[0]

    @property
    def q(self) -> int:
        return self.ztz.shape[1]

    @property
    def n_theta(self) -> int:
        return self.q * (self.q + 1) // 2


def problem(y: np.ndarray, x: np.ndarray, z: np.ndarray, groups: np.ndarray) -> Problem:
    """Cross-products of the response ``y`` (n), fixed design ``x`` (n x p) and random design
    ``z`` (n x q, the same columns for every group), rows grouped by ``groups``."""
    labels = np.unique(groups)
    ztz, ztx, zty = [], [], []
    for label in labels:
        rows = groups == label
        zg = z[rows]
        ztz.append(zg.T @ zg)
        ztx.append(zg.T @ x[rows])
        zty.append(zg.T @ y[rows])
    return Problem(x.T @ x, x.T @ y, float(y @ y), np.array(ztz), np.array(ztx), np.array(zty),
                   len(y))  # fmt: skip


@functools.cache
def _lower_triangle(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the lower triangle, column by column (lme4's order of theta:
    for q = 2, T11, T21, T22)."""
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def factor(theta: npt.ArrayLike, q: int) -> np.ndarray:
    """The lower-triangular ``T`` of theta."""
    t = np.zeros((q, q))
    t[_lower_triangle(q)] = theta
    return t


def lower_bounds(q: int) -> list[tuple[float | None, float | None]]:
    """Diagonal elements of theta >= 0, the others free."""
    rows, cols = _lower_triangle(q)
    return [(0.0, None) if r == c else (None, None) for r, c in zip(rows, cols, strict=True)]


@dataclass(frozen=True)
class Profile:
    """Everything at one theta: the deviance and the estimates profiled out of it."""

    theta: np.ndarray
    deviance: float
    beta: np.ndarray
    sigma2: float
    cov_re: np.ndarray  # covariance of the random effects (q x q), sigma^2 T T'
    cov_beta: np.ndarray  # sigma^2 (X' V^-1 X)^-1, as lme4's vcov()
    reml: bool


def _inverse_and_log_det(m: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverses of a stack of symmetric positive definite matrices and the sum of their log
    determinants; closed forms for 1 x 1 and 2 x 2 (LAPACK's per-call cost dominates there)."""
    q = m.shape[1]
    if q == 1:
        return 1.0 / m, float(np.log(m).sum())
    if q == 2:
        a, b, d = m[:, 0, 0], m[:, 1, 0], m[:, 1, 1]
        det = a * d - b * b
        inverse = np.empty_like(m)
        inverse[:, 0, 0], inverse[:, 1, 1] = d / det, a / det
        inverse[:, 0, 1] = inverse[:, 1, 0] = -b / det
        return inverse, float(np.log(det).sum())
    return np.linalg.inv(m), float(np.linalg.slogdet(m)[1].sum())


@dataclass(frozen=True)
class _Solution:
    deviance: float
    xvx: np.ndarray  # X' V^-1 X
    beta: np.ndarray
    r2: float
    dof: int


def _solve(prob: Problem, t: np.ndarray, reml: bool) -> _Solution:
    m = np.swapaxes(t.T @ prob.ztz @ t, 1, 2) + np.eye(prob.q)  # T' Z'Z T + I per group
    w = t.T @ prob.ztx  # (G, q, p): T' Z' X
    v = prob.zty @ t  # (G, q): T' Z' y
    inverse, log_l = _inverse_and_log_det(m)
    mw = inverse @ w
    mv = np.einsum("gij,gj->gi", inverse, v)
    xvx = prob.xtx - np.einsum("gqi,gqj->ij", w, mw)
    xvy = prob.xty - np.einsum("gqi,gq->i", w, mv)
    yvy = prob.yty - float(np.einsum("gq,gq->", v, mv))
    beta = np.linalg.solve(xvx, xvy)
    r2 = yvy - float(beta @ xvy)
    dof = prob.n - prob.p if reml else prob.n
    if not r2 > 0:
        return _Solution(math.inf, xvx, beta, r2, dof)
    value = log_l + dof * (1.0 + math.log(2.0 * math.pi * r2 / dof))
    if reml:
        value += float(np.linalg.slogdet(xvx)[1])
    return _Solution(value, xvx, beta, r2, dof)


def profile(prob: Problem, theta: npt.ArrayLike, reml: bool) -> Profile:
    """The profiled deviance at ``theta`` and the estimates that go with it."""
    t = factor(theta, prob.q)
    found = _solve(prob, t, reml)
    sigma2 = found.r2 / found.dof
    return Profile(np.asarray(theta, float), found.deviance, found.beta, sigma2,
                   sigma2 * (t @ t.T), sigma2 * np.linalg.inv(found.xvx), reml)  # fmt: skip


def deviance(prob: Problem, theta: npt.ArrayLike, reml: bool) -> float:
    """The profiled deviance (-2 log-likelihood; REML or ML) at ``theta``; inf where undefined."""
    try:
        with np.errstate(all="ignore"):
            value = _solve(prob, factor(theta, prob.q), reml).deviance
    except np.linalg.LinAlgError:
        return math.inf
    return value if math.isfinite(value) else math.inf


def theta_of(cov_re: np.ndarray, sigma2: float) -> np.ndarray | None:
    """theta of a covariance of the random effects (e.g. statsmodels' estimate), or None when
    it is not positive definite (then only the other starting points are used)."""
    try:
        t = np.linalg.cholesky(np.asarray(cov_re, float) / sigma2)
    except np.linalg.LinAlgError:
        return None
    return t[_lower_triangle(t.shape[0])]


def starts(q: int, estimate: np.ndarray | None = None) -> list[np.ndarray]:
    """Where the minimisation starts: ``estimate`` (statsmodels' theta) when there is one, else
    lme4's start (T = I); and the boundary next to it (its last diagonal element of T at 0;
    for one random effect, no variance at all)."""
    first = np.eye(q)[_lower_triangle(q)] if estimate is None else np.asarray(estimate, float)
    boundary = first.copy()
    boundary[-1] = 0.0
    return [first, boundary]


@dataclass(frozen=True)
class Optimum:
    """The best minimum found, or why there is none (``converged`` False)."""

    converged: bool
    message: str
    profile: Profile | None = None
    gradient: np.ndarray | None = None

    @property
    def on_boundary(self) -> bool:
        """A diagonal element of theta is 0: a variance or a correlation at its limit (lme4's
        "boundary (singular) fit")."""
        if self.profile is None:
            return False
        q = int((math.isqrt(8 * len(self.profile.theta) + 1) - 1) // 2)
        diagonal = np.diagonal(factor(self.profile.theta, q))
        return bool((diagonal <= BOUND_TOLERANCE).any())


def minimise(
    prob: Problem,
    reml: bool,
    starts: Sequence[np.ndarray],
    max_iterations: int = MAX_ITERATIONS,
) -> Optimum:
    """Minimise the profiled deviance from each start; keep the lowest; check stationarity."""
    bounds = lower_bounds(prob.q)
    best = None
    for start in starts:
        result = _run(prob, reml, start, bounds, max_iterations)
        if result is not None and (best is None or result.fun < best.fun):
            best = result
    if best is None:
        return Optimum(False, "the deviance is undefined at every starting point")
    for _ in range(MAX_RESTARTS):
        problem_text = _problem(prob, best.x, reml, bounds)
        if not problem_text:
            break
        # A stall: L-BFGS-B stopped short after a wild step, or on a boundary where the
        # deviance is flat but not lowest (see _lower_inside). Go on from a lower point.
        again = _run(prob, reml, _lower_inside(prob, best.x, reml, bounds), bounds,
                     max_iterations)  # fmt: skip
        if again is None or again.fun > best.fun:
            break
        best = again
    theta = _snap(prob, best.x, reml, bounds)
    problem_text = _problem(prob, theta, reml, bounds)
    gradient = _gradient(prob, theta, reml, bounds)
    return Optimum(not problem_text, problem_text, profile(prob, theta, reml), gradient)


def _snap(prob: Problem, theta: np.ndarray, reml: bool, bounds) -> np.ndarray:
    """Elements within ``BOUND_TOLERANCE`` of their bound put on it (a variance of 1e-17 is
    lme4's 0) when the deviance does not rise by more than round-off."""
    snapped = theta.copy()
    for i, (low, _) in enumerate(bounds):
        if low is not None and snapped[i] - low <= BOUND_TOLERANCE:
            snapped[i] = low
    here = deviance(prob, theta, reml)
    return snapped if deviance(prob, snapped, reml) <= here + 1e-10 * max(1.0, abs(here)) else theta


def _problem(prob: Problem, theta: np.ndarray, reml: bool, bounds) -> str:
    """'' at a minimum, else why ``theta`` is none (the stationarity check)."""
    found = _stationarity_problem(theta, _gradient(prob, theta, reml, bounds), bounds)
    if found:
        return found
    lower = _lower_inside(prob, theta, reml, bounds)
    if lower is not theta:
        return "not at a minimum: the deviance is lower inside the boundary"
    return ""


def _lower_inside(prob: Problem, theta: np.ndarray, reml: bool, bounds) -> np.ndarray:
    """A point with a lower deviance just inside a bound that ``theta`` is on, else ``theta``.

    The deviance is even in each column of T (flipping a column's sign leaves Lambda Lambda'
    unchanged), so its slope at a diagonal element of 0 is always 0: the first-order check
    cannot tell a minimum on the boundary from a maximum there. This is the second-order
    check: step inside by growing amounts and look for a lower deviance."""
    here = deviance(prob, theta, reml)
    for i, (low, _) in enumerate(bounds):
        if low is None or theta[i] - low > BOUND_TOLERANCE:
            continue
        for step in INWARD_STEPS:
            inside = theta.copy()
            inside[i] = low + step
            if deviance(prob, inside, reml) < here - 1e-12 * max(1.0, abs(here)):
                return inside
    return theta


def _run(prob: Problem, reml: bool, start: np.ndarray, bounds, max_iterations: int):
    """One L-BFGS-B minimisation (None when the deviance is undefined at the start)."""
    clipped = np.array([max(v, low) if low is not None else v
                        for v, (low, _) in zip(start, bounds, strict=True)])  # fmt: skip
    if not math.isfinite(deviance(prob, clipped, reml)):
        return None
    with np.errstate(invalid="ignore"):  # differences of inf where the deviance is undefined
        result = minimize(
            lambda theta: deviance(prob, theta, reml),
            clipped,
            method="L-BFGS-B",
            jac="3-point",
            bounds=bounds,
            options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-8},
        )
    return result if math.isfinite(result.fun) else None


def _gradient(prob: Problem, theta: np.ndarray, reml: bool, bounds) -> np.ndarray:
    """Central differences, one-sided (inwards) at a lower bound."""
    gradient = np.empty(len(theta))
    for i, (low, _) in enumerate(bounds):
        h = 1e-6 * max(1.0, abs(theta[i]))
        up = theta.copy()
        up[i] += h
        if low is not None and theta[i] - h < low:
            gradient[i] = (deviance(prob, up, reml) - deviance(prob, theta, reml)) / h
        else:
            down = theta.copy()
            down[i] -= h
            gradient[i] = (deviance(prob, up, reml) - deviance(prob, down, reml)) / (2 * h)
    return gradient


def _stationarity_problem(theta: np.ndarray, gradient: np.ndarray, bounds) -> str:
    """'' at a minimum; else which element of theta is not stationary (for the message)."""
    for i, ((low, _), g) in enumerate(zip(bounds, gradient, strict=True)):
        at_bound = low is not None and theta[i] - low <= BOUND_TOLERANCE
        if not math.isfinite(g):
            return f"the deviance is undefined next to the estimate (theta[{i + 1}])"
        if (g < -GRADIENT_TOLERANCE) if at_bound else (abs(g) > GRADIENT_TOLERANCE):
            return (
                f"not at a minimum: the gradient of the deviance in theta[{i + 1}] is "
                f"{g:.2g} (tolerance {GRADIENT_TOLERANCE:g})"
            )
    return ""
