"""Multilevel models of the course over sessions (pure: pandas and statsmodels only).

The reference study (Haller & Watzke 2021) models repeated sessions nested in patients with
linear mixed models fitted by REML, in a sequence of nested models:

* ``null``: the outcome with a random intercept per patient (its ICC is the share of the
  variance that lies between patients);
* ``growth``: + a fixed and a random slope of the session number (unconditional growth);
* ``predictors``: + one or more time-varying predictors (e.g. homework engagement predicted by
  the therapist's homework behaviour; PHQ-9 predicted by both);
* ``interaction``: + the interaction of each predictor with the session number.

Each model is fitted by REML with an unstructured covariance of the random intercept and slope,
as lme4's ``(1 + session_number | patient)``. statsmodels' ``MixedLM`` gives the first
estimate; the final one minimises lme4's profiled deviance over the relative covariance
factor (:mod:`rater.results.deviance`), starting from statsmodels' estimate, lme4's own start
and the boundary, because statsmodels cannot reach a variance of 0 and stops short of lme4's
fit when the best one lies there. A fit counts only when the minimum passes a stationarity
check; a model that does not is reported as not converged, with the reason and without
numbers. A fit with a variance (or correlation) at its limit is marked ``singular``, as lme4's
"boundary (singular) fit". Nested models that differ in their fixed effects cannot be
compared by REML likelihoods, so the likelihood-ratio tests refit both models by maximum
likelihood (as lme4's ``anova()`` does) and say so. AIC and BIC follow lme4:
``-2 logLik + 2 df`` and ``-2 logLik + log(n) df``, with df counting fixed effects and
variance parameters, from the REML likelihood for REML fits. Standard errors are lme4's
(``vcov()``: ``sigma^2 (X' V^-1 X)^-1``); p-values are Wald z-tests (lme4 gives none,
lmerTest would use Satterthwaite's t).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.regression.mixed_linear_model import MixedLM

from rater.results import deviance

GROUP = "patient"
TIME = "session_number"


class ModelName(StrEnum):
    NULL = "null"
    GROWTH = "growth"
    PREDICTORS = "predictors"
    INTERACTION = "interaction"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the sequence: its fixed-effect terms and whether the slope is random."""

    name: ModelName
    outcome: str
    terms: tuple[str, ...]  # fixed effects besides the intercept; "a:b" is an interaction
    random_slope: bool

    @property
    def n_parameters(self) -> int:
        """Fixed effects and variance parameters (the df of AIC, BIC and the LRT)."""
        return 1 + len(self.terms) + (4 if self.random_slope else 2)

    @property
    def formula(self) -> str:
        """The model in lme4's notation (shown on the page and used by the R script)."""
        fixed = " + ".join(["1", *self.terms])
        random = f"(1 + {TIME} | {GROUP})" if self.random_slope else f"(1 | {GROUP})"
        return f"{self.outcome} ~ {fixed} + {random}"


def model_sequence(outcome: str, predictors: Sequence[str]) -> list[ModelSpec]:
    """The paper's sequence for ``outcome`` (without the predictor models when there are none)."""
    specs = [
        ModelSpec(ModelName.NULL, outcome, (), False),
        ModelSpec(ModelName.GROWTH, outcome, (TIME,), True),
    ]
    if predictors:
        specs.append(ModelSpec(ModelName.PREDICTORS, outcome, (TIME, *predictors), True))
        interactions = tuple(f"{TIME}:{p}" for p in predictors)
        specs.append(
            ModelSpec(ModelName.INTERACTION, outcome, (TIME, *predictors, *interactions), True)
        )
    return specs


@dataclass(frozen=True)
class FixedEffect:
    term: str
    estimate: float
    se: float
    z: float
    p: float


@dataclass(frozen=True)
class ModelFit:
    """A fitted model, or one that did not converge (``converged`` False, no numbers)."""

    spec: ModelSpec
    reml: bool
    converged: bool
    n_obs: int
    n_groups: int
    message: str = ""
    fixed: tuple[FixedEffect, ...] = ()
    variances: dict[str, float] = field(default_factory=dict)  # intercept, slope, cov, residual
    loglik: float = math.nan
    df: int = 0  # fixed effects + variance parameters
    singular: bool = False  # a variance or correlation at its limit (lme4: boundary fit)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.df

    @property
    def bic(self) -> float:
        return -2 * self.loglik + math.log(self.n_obs) * self.df

    @property
    def icc(self) -> float:
        """Share of the variance between patients (the null model's ICC)."""
        between = self.variances.get("intercept", math.nan)
        return between / (between + self.variances.get("residual", math.nan))


@dataclass(frozen=True)
class LikelihoodRatioTest:
    simpler: ModelName
    larger: ModelName
    chi2: float
    df: int
    p: float
    refit_ml: bool  # both models were refitted by maximum likelihood for the test
    converged: bool


def model_data(frame: pd.DataFrame, outcome: str, predictors: Sequence[str]) -> pd.DataFrame:
    """The rows with every variable of the models present (sorted by patient and session)."""
    columns = [GROUP, TIME, outcome, *predictors]
    data = frame[columns].dropna().sort_values([GROUP, TIME], kind="mergesort")
    return data.astype(
        {TIME: "float64", outcome: "float64", **dict.fromkeys(predictors, "float64")}
    )


def fit(
    data: pd.DataFrame,
    spec: ModelSpec,
    reml: bool = True,
    max_iterations: int = deviance.MAX_ITERATIONS,
) -> ModelFit:
    """Fit one model: lme4's profiled deviance minimised from statsmodels' estimate, lme4's
    start and the boundary (see :mod:`rater.results.deviance`); a fit that fails the
    stationarity check is reported as not converged, with the reason."""
    n_obs, n_groups = len(data), int(data[GROUP].nunique())
    if n_groups < 3 or n_obs <= n_groups:
        return ModelFit(spec, reml, False, n_obs, n_groups, "too few patients or sessions")
    y = data[spec.outcome].to_numpy(float)
    exog = _design(data, spec.terms)
    exog_re = _design(data, (TIME,)) if spec.random_slope else np.ones((n_obs, 1))
    groups = data[GROUP].to_numpy()
    if np.linalg.matrix_rank(exog) < exog.shape[1]:
        return ModelFit(spec, reml, False, n_obs, n_groups,
                        "the fixed effects are not estimable (collinear terms)")  # fmt: skip
    prob = deviance.problem(y, exog, exog_re, groups)
    estimate = _statsmodels_theta(y, exog, exog_re, groups, reml)
    optimum = deviance.minimise(prob, reml, deviance.starts(prob.q, estimate), max_iterations)
    if not optimum.converged or optimum.profile is None:
        return ModelFit(spec, reml, False, n_obs, n_groups, f"did not converge: {optimum.message}")
    return _model_fit(spec, optimum, n_obs, n_groups)


def _design(data: pd.DataFrame, terms: Sequence[str]) -> np.ndarray:
    columns = [np.ones(len(data))]
    for term in terms:
        parts = term.split(":")
        columns.append(np.prod([data[p].to_numpy(float) for p in parts], axis=0))
    return np.column_stack(columns)


def _statsmodels_theta(
    y: np.ndarray, exog: np.ndarray, exog_re: np.ndarray, groups: np.ndarray, reml: bool
) -> np.ndarray | None:
    """theta of statsmodels' estimate (L-BFGS), or None when it has none.

    The estimate is only a starting point, so one that statsmodels does not call converged
    (typically one stopped short of a boundary) serves as well; for the same reason its
    warnings about boundary fits and singular covariances are not shown to users."""
    model = MixedLM(y, exog, groups=groups, exog_re=exog_re)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = model.fit(reml=reml, method="lbfgs")
        except (np.linalg.LinAlgError, ValueError):
            return None
    if not (np.isfinite(result.llf) and result.scale > 0):
        return None
    return deviance.theta_of(np.asarray(result.cov_re), float(result.scale))


def _model_fit(spec: ModelSpec, optimum: deviance.Optimum, n_obs: int, n_groups: int) -> ModelFit:
    found = optimum.profile
    assert found is not None
    names = ["(Intercept)", *spec.terms]
    ses = np.sqrt(np.diag(found.cov_beta))
    z = found.beta / ses
    p = 2 * scipy_stats.norm.sf(np.abs(z))
    fixed = tuple(
        FixedEffect(n, float(e), float(s), float(zz), float(pp))
        for n, e, s, zz, pp in zip(names, found.beta, ses, z, p, strict=True)
    )
    cov = found.cov_re
    variances = {"intercept": float(cov[0, 0]), "residual": float(found.sigma2)}
    if spec.random_slope:
        variances |= {"slope": float(cov[1, 1]), "covariance": float(cov[1, 0])}
    return ModelFit(
        spec, found.reml, True, n_obs, n_groups, "", fixed, variances, -found.deviance / 2,
        spec.n_parameters, optimum.on_boundary,
    )  # fmt: skip


def fit_sequence(data: pd.DataFrame, specs: Sequence[ModelSpec]) -> list[ModelFit]:
    """Every model of the sequence by REML."""
    return [fit(data, spec, reml=True) for spec in specs]


def likelihood_ratio_tests(
    data: pd.DataFrame, specs: Sequence[ModelSpec]
) -> list[LikelihoodRatioTest]:
    """Each model against the one before it, both refitted by maximum likelihood (their fixed
    effects differ, so REML likelihoods are not comparable)."""
    return compare([fit(data, spec, reml=False) for spec in specs])


def compare(ml: Sequence[ModelFit]) -> list[LikelihoodRatioTest]:
    """Likelihood-ratio tests of each ML fit against the one before it (as lme4's ``anova``);
    a test with a model that did not converge has no numbers."""
    tests = []
    for simpler, larger in itertools.pairwise(ml):
        df = larger.spec.n_parameters - simpler.spec.n_parameters
        if not (simpler.converged and larger.converged):
            tests.append(
                LikelihoodRatioTest(simpler.spec.name, larger.spec.name, math.nan, df, math.nan,
                                    True, False)
            )  # fmt: skip
            continue
        chi2 = max(0.0, 2 * (larger.loglik - simpler.loglik))
        p = float(scipy_stats.chi2.sf(chi2, df))
        tests.append(
            LikelihoodRatioTest(simpler.spec.name, larger.spec.name, chi2, df, p, True, True)
        )
    return tests


@dataclass(frozen=True)
class Analysis:
    """The model sequence of one outcome and its predictors: REML fits (the estimates shown),
    ML refits and the likelihood-ratio tests between them."""

    outcome: str
    predictors: tuple[str, ...]
    n_obs: int
    n_groups: int
    fits: tuple[ModelFit, ...]
    ml_fits: tuple[ModelFit, ...]
    tests: tuple[LikelihoodRatioTest, ...]


def analyse(frame: pd.DataFrame, outcome: str, predictors: Sequence[str]) -> Analysis:
    """Fit the whole sequence once: every model by REML and by ML, and compare the ML fits."""
    data = model_data(frame, outcome, predictors)
    specs = model_sequence(outcome, predictors)
    fits = fit_sequence(data, specs)
    ml = [fit(data, spec, reml=False) for spec in specs]
    return Analysis(outcome, tuple(predictors), len(data), int(data[GROUP].nunique()),
                    tuple(fits), tuple(ml), tuple(compare(ml)))  # fmt: skip
