"""lme4's profiled deviance (rater.results.deviance) against a dense, direct computation.

The direct computation builds the n x n covariance ``V = Z Lambda Lambda' Z' + I`` of the
whole data set and evaluates the normal log-likelihood with scipy's multivariate normal at the
GLS estimate of beta (ML), or the REML criterion from its textbook formula; the module under
test never forms V. Many generated data sets and values of theta, inside and on the boundary.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg
from scipy.stats import multivariate_normal

from rater.results import deviance


def _data(seed: int, slope: bool, n_groups: int = 12):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), rng.integers(3, 9, n_groups))
    n = len(groups)
    t = rng.integers(1, 10, n).astype(float)
    x = np.column_stack([np.ones(n), t, rng.normal(2, 1, n)])
    z = np.column_stack([np.ones(n), t]) if slope else np.ones((n, 1))
    b = rng.normal(0, 0.5, (n_groups, z.shape[1])) * ([1, 0.1] if slope else [1])
    y = x @ [3, -0.05, 0.3] + np.sum(z * b[groups], axis=1) + rng.normal(0, 0.6, n)
    return y, x, z, groups


def _dense(y, x, z, groups, theta, reml):
    q = z.shape[1]
    t = deviance.factor(theta, q)
    blocks = [z[groups == g] @ t @ t.T @ z[groups == g].T for g in np.unique(groups)]
    v = linalg.block_diag(*blocks) + np.eye(len(y))
    vinv = np.linalg.inv(v)
    beta = np.linalg.solve(x.T @ vinv @ x, x.T @ vinv @ y)
    r = y - x @ beta
    r2 = float(r @ vinv @ r)
    n, p = x.shape
    if not reml:
        sigma2 = r2 / n
        return -2 * multivariate_normal(x @ beta, sigma2 * v).logpdf(y)
    sigma2 = r2 / (n - p)
    _, logdet_v = np.linalg.slogdet(v)
    _, logdet_xvx = np.linalg.slogdet(x.T @ vinv @ x)
    return (n - p) * math.log(2 * math.pi * sigma2) + logdet_v + logdet_xvx + r2 / sigma2


THETAS_1 = [[0.0], [0.3], [1.0], [2.5]]
THETAS_2 = [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.8, -0.05, 0.1], [1.2, 0.3, 0.0], [0.0, 0.2, 0.1]]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("reml", [True, False])
def test_deviance_equals_the_dense_likelihood(seed, reml):
    for slope, thetas in ((False, THETAS_1), (True, THETAS_2)):
        y, x, z, groups = _data(seed, slope)
        prob = deviance.problem(y, x, z, groups)
        for theta in thetas:
            expected = _dense(y, x, z, groups, theta, reml)
            assert deviance.deviance(prob, theta, reml) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_profile_gives_the_gls_estimates_and_lme4s_covariances(seed):
    y, x, z, groups = _data(seed, True)
    theta = [0.9, -0.04, 0.12]
    found = deviance.profile(deviance.problem(y, x, z, groups), theta, reml=True)
    t = deviance.factor(theta, 2)
    blocks = [z[groups == g] @ t @ t.T @ z[groups == g].T for g in np.unique(groups)]
    vinv = np.linalg.inv(linalg.block_diag(*blocks) + np.eye(len(y)))
    xvx = x.T @ vinv @ x
    beta = np.linalg.solve(xvx, x.T @ vinv @ y)
    r = y - x @ beta
    sigma2 = float(r @ vinv @ r) / (len(y) - x.shape[1])
    np.testing.assert_allclose(found.beta, beta, rtol=1e-10)
    assert found.sigma2 == pytest.approx(sigma2, rel=1e-10)
    np.testing.assert_allclose(found.cov_re, sigma2 * t @ t.T, rtol=1e-10)
    np.testing.assert_allclose(found.cov_beta, sigma2 * np.linalg.inv(xvx), rtol=1e-8)


def test_factor_fills_theta_column_by_column_as_lme4():
    np.testing.assert_array_equal(deviance.factor([1, 2, 3], 2), [[1, 0], [2, 3]])
    assert deviance.lower_bounds(2) == [(0.0, None), (None, None), (0.0, None)]


@pytest.mark.parametrize("seed", range(6))
def test_a_start_on_the_boundary_does_not_stop_there(seed):
    """The deviance's slope at theta = 0 is 0 (it is even in theta), so a first-order check
    alone accepts a start on the boundary as a minimum; the minimum here lies inside."""
    y, x, z, groups = _data(seed, False)
    prob = deviance.problem(y, x, z, groups)
    found = deviance.minimise(prob, True, [np.array([0.0])])
    grid = np.linspace(0, 3, 3001)
    best = grid[np.argmin([deviance.deviance(prob, [g], True) for g in grid])]
    assert best > 0.05
    assert found.converged and not found.on_boundary
    assert found.profile.theta[0] == pytest.approx(best, abs=2e-3)
    assert found.profile.deviance <= deviance.deviance(prob, [best], True) + 1e-9


def test_a_minimisation_cut_short_is_reported_as_not_converged():
    y, x, z, groups = _data(0, True)
    prob = deviance.problem(y, x, z, groups)
    found = deviance.minimise(prob, True, [np.array([5.0, 3.0, 4.0])], max_iterations=1)
    assert not found.converged
    assert found.message.startswith("not at a minimum")


def test_an_outcome_without_variance_has_no_deviance():
    y, x, z, groups = _data(0, False)
    prob = deviance.problem(np.full_like(y, 2.0), x, z, groups)
    assert deviance.deviance(prob, [0.5], True) == math.inf
    found = deviance.minimise(prob, True, deviance.starts(1))
    assert not found.converged and "undefined" in found.message
