"""Multilevel models of the course over sessions (pure: pandas and statsmodels only).

The reference study (Haller & Watzke 2021) models repeated sessions nested in patients with
linear mixed models fitted by REML, in a sequence of nested models:

* ``null``: the outcome with a random intercept per patient (its ICC is the share of the
  variance that lies between patients);
* ``growth``: + a fixed and a random slope of the session number (unconditional growth);
* ``predictors``: + one or more time-varying predictors (e.g. homework engagement predicted by
  the therapist's homework behaviour; PHQ-9 predicted by both);
* ``interaction``: + the interaction of each predictor with the session number.

Each model is fitted with statsmodels' ``MixedLM`` (REML; an unstructured covariance of the
random intercept and slope, as lme4's ``(1 + session | patient)``). A fit counts only when an
optimiser reports convergence; optimisers are tried in turn until one does, and a model that no
optimiser fits is reported as not converged, without numbers. Nested models
that differ in their fixed effects cannot be compared by REML likelihoods, so the likelihood-
ratio tests refit both models by maximum likelihood (as lme4's ``anova()`` does) and say so.
AIC and BIC follow lme4: ``-2 logLik + 2 df`` and ``-2 logLik + log(n) df``, with df counting
fixed effects and variance parameters, from the REML likelihood for REML fits. p-values of
fixed effects are Wald z-tests (statsmodels); lme4 gives none, lmerTest would use
Satterthwaite's t.
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

OPTIMISERS = ("lbfgs", "nm", "powell")  # tried in turn until one converges
# ... then polished with a tight tolerance: the likelihood is flat near its maximum, and the
# optimisers' default tolerances leave variance components off by up to 1e-3 (relative).
POLISH = ("bfgs", {"gtol": 1e-10})
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


def fit(data: pd.DataFrame, spec: ModelSpec, reml: bool = True) -> ModelFit:
    """Fit one model (see the module docstring for the optimisers and convergence)."""
    n_obs, n_groups = len(data), int(data[GROUP].nunique())
    if n_groups < 3 or n_obs <= n_groups:
        return ModelFit(spec, reml, False, n_obs, n_groups, "too few patients or sessions")
    exog = _design(data, spec.terms)
    exog_re = _design(data, (TIME,)) if spec.random_slope else np.ones((n_obs, 1))
    model = MixedLM(data[spec.outcome].to_numpy(), exog, groups=data[GROUP].to_numpy(),
                    exog_re=exog_re)  # fmt: skip
    best = next(filter(None, (_try_fit(model, reml, method) for method in OPTIMISERS)), None)
    if best is None:
        return ModelFit(spec, reml, False, n_obs, n_groups, "no optimiser converged")
    method, options = POLISH
    polished = _try_fit(model, reml, method, start=best.params_object, polish=True, **options)
    if polished is not None and polished.llf >= best.llf:
        best = polished
    return _model_fit(spec, reml, best, exog, exog_re, data[GROUP].to_numpy())


def _design(data: pd.DataFrame, terms: Sequence[str]) -> np.ndarray:
    columns = [np.ones(len(data))]
    for term in terms:
        parts = term.split(":")
        columns.append(np.prod([data[p].to_numpy(float) for p in parts], axis=0))
    return np.column_stack(columns)


def _try_fit(model: MixedLM, reml: bool, method: str, start=None, polish=False, **options):
    """One optimiser's fit, or None when it fails or does not report convergence (a polishing
    run starts at a converged fit and only has to improve its likelihood).

    statsmodels warns about boundary fits and singular covariances; those are judged by the
    convergence flag and the likelihood, so the warnings are not shown to users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = model.fit(
                reml=reml, method=method, maxiter=100_000, start_params=start, **options
            )
        except (np.linalg.LinAlgError, ValueError):
            return None
    if not (result.converged or polish) or not np.isfinite(result.llf):
        return None
    return result


def _model_fit(
    spec: ModelSpec, reml: bool, result, exog: np.ndarray, exog_re: np.ndarray, groups: np.ndarray
) -> ModelFit:
    names = ["(Intercept)", *spec.terms]
    k_fe = len(names)
    estimates = np.asarray(result.fe_params)
    cov = np.asarray(result.cov_re)
    ses = np.sqrt(np.diag(_fixed_covariance(exog, exog_re, groups, cov, float(result.scale))))
    z = estimates / ses
    p = 2 * scipy_stats.norm.sf(np.abs(z))
    fixed = tuple(
        FixedEffect(n, float(e), float(s), float(zz), float(pp))
        for n, e, s, zz, pp in zip(names, estimates, ses, z, p, strict=True)
    )
    variances = {"intercept": float(cov[0, 0]), "residual": float(result.scale)}
    if spec.random_slope:
        variances |= {"slope": float(cov[1, 1]), "covariance": float(cov[0, 1])}
    n_variance = 4 if spec.random_slope else 2
    n_obs, n_groups = len(groups), len(np.unique(groups))
    return ModelFit(
        spec, reml, True, n_obs, n_groups, "", fixed, variances, float(result.llf),
        k_fe + n_variance,
    )  # fmt: skip


def _fixed_covariance(
    exog: np.ndarray, exog_re: np.ndarray, groups: np.ndarray, cov_re: np.ndarray, scale: float
) -> np.ndarray:
    """(X' V^-1 X)^-1 with V = Z G Z' + sigma^2 I per patient: the covariance of the fixed
    effects at the estimates, as lme4's ``vcov()`` gives it (statsmodels' ``bse`` comes from
    the Hessian of all parameters, which differs for REML fits)."""
    information = np.zeros((exog.shape[1], exog.shape[1]))
    for group in np.unique(groups):
        rows = groups == group
        x, z = exog[rows], exog_re[rows]
        v = z @ cov_re @ z.T + scale * np.eye(len(x))
        information += x.T @ np.linalg.solve(v, x)
    return np.linalg.inv(information)


def fit_sequence(data: pd.DataFrame, specs: Sequence[ModelSpec]) -> list[ModelFit]:
    """Every model of the sequence by REML."""
    return [fit(data, spec, reml=True) for spec in specs]


def likelihood_ratio_tests(
    data: pd.DataFrame, specs: Sequence[ModelSpec]
) -> list[LikelihoodRatioTest]:
    """Each model against the one before it, both refitted by maximum likelihood (their fixed
    effects differ, so REML likelihoods are not comparable)."""
    ml = [fit(data, spec, reml=False) for spec in specs]
    tests = []
    for simpler, larger in itertools.pairwise(ml):
        df = larger.df - simpler.df
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
