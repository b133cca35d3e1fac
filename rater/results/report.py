"""The study's results: descriptives, frequencies, omega and the model sequence (pure).

:func:`results` takes the analysis dataset (the ``sessions`` export's table: one row per
eligible session, items resolved across raters) and the instruments and computes everything
the Results page, ``rater results`` and the results exports show. :class:`Results` turns it into
tidy tables (:meth:`Results.to_frames`), JSON and plain text.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from rater.formatting import format_number
from rater.instruments import Instrument
from rater.results import descriptives, plots
from rater.results.descriptives import Variable
from rater.results.models import Analysis, ModelFit, analyse

VARIANCE_LABELS = {
    "intercept": "intercept variance (patients)",
    "slope": "slope variance (session number)",
    "covariance": "intercept–slope covariance",
    "residual": "residual variance",
}
MODEL_LABELS = {
    "null": "null model",
    "growth": "unconditional growth",
    "predictors": "time-varying predictors",
    "interaction": "predictors × session number",
}
LRT_NOTE = "both models refitted by maximum likelihood (REML likelihoods of models with "
LRT_NOTE += "different fixed effects are not comparable)"


class ChoiceError(ValueError):
    """An outcome or predictor that is not a score or PHQ-9 (the message names it)."""


@dataclass(frozen=True)
class Results:
    resolve: str
    resolution: str  # what the resolution means, stated on the page and in every export
    counts: dict[str, int]
    model_variables: list[Variable]  # what a coordinator may choose as outcome or predictor
    described: list[Variable]
    descriptives: pd.DataFrame
    frequencies: pd.DataFrame
    completion: dict[str, float]
    omega: pd.DataFrame
    analysis: Analysis
    data: pd.DataFrame  # the analysis dataset (for the course plots)

    def label(self, code: str) -> str:
        return next((v.label for v in self.described if v.code == code), code)

    @functools.cached_property
    def course_plots(self) -> list[tuple[str, str]]:
        """(label, SVG) of the course of the outcome, the predictors, then the other scores
        and PHQ-9; drawn once per results object (kept by the service with the results)."""
        codes = [self.analysis.outcome, *self.analysis.predictors]
        codes += [v.code for v in self.model_variables if v.code not in codes]
        with threadpool_limits(limits=1):
            return [(self.label(c), plots.course_svg(self.data, c, self.label(c))) for c in codes]

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Tidy tables: descriptives, frequencies, completion, omega, and the models."""
        return {
            "descriptives": self.descriptives,
            "frequencies": self.frequencies,
            "completion": pd.DataFrame([self.completion]),
            "omega": self.omega,
            **model_frames(self.analysis),
        }

    def to_dict(self) -> dict[str, Any]:
        frames = self.to_frames()
        return {
            "resolve": self.resolve,
            "resolution": self.resolution,
            "counts": self.counts,
            "outcome": self.analysis.outcome,
            "predictors": list(self.analysis.predictors),
            **{name: _records(frame) for name, frame in frames.items()},
        }

    def to_json(self) -> str:
        """Strict JSON (NaN and infinities as null)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    def to_text(self) -> str:
        return _text(self)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


def model_variables(instruments: Sequence[Instrument]) -> list[Variable]:
    """Scale scores and PHQ-9: what models may use."""
    return [v for v in descriptives.variables(instruments) if v.kind != "item"]


def default_choice(instruments: Sequence[Instrument]) -> tuple[str, list[str]]:
    """The reference study's first model: the first instrument's first score as the outcome,
    the last score of each other instrument (its total) as the predictors."""
    scored = [inst for inst in instruments if inst.scores]
    if not scored:
        return descriptives.PHQ9.code, []
    return scored[0].scores[0].code, [inst.scores[-1].code for inst in scored[1:]]


def check_choice(
    instruments: Sequence[Instrument], outcome: str, predictors: Sequence[str]
) -> None:
    """Refuse an outcome or predictor that is no score or PHQ-9, or a repeated variable."""
    allowed = {v.code for v in model_variables(instruments)}
    for code in (outcome, *predictors):
        if code not in allowed:
            raise ChoiceError(f"{code!r} is not a scale score or PHQ-9")
    if outcome in predictors or len(set(predictors)) != len(predictors):
        raise ChoiceError("the outcome and the predictors must be different variables")


def results(
    data: pd.DataFrame,
    instruments: Sequence[Instrument],
    outcome: str,
    predictors: Sequence[str],
    resolve: str,
    resolution: str,
) -> Results:
    """Everything, computed once (BLAS single-threaded: the matrices are tiny)."""
    check_choice(instruments, outcome, predictors)
    described = descriptives.variables(instruments)
    homework = _union(inst.homework_types for inst in instruments)
    difficulties = _union(inst.difficulty_types for inst in instruments)
    with threadpool_limits(limits=1):
        return Results(
            resolve=resolve,
            resolution=resolution,
            counts={
                "sessions": len(data),
                "rated_sessions": int(data["n_raters"].gt(0).sum()),
                "patients": int(data["patient"].nunique()),
            },
            model_variables=model_variables(instruments),
            described=described,
            descriptives=descriptives.describe(data, described),
            frequencies=descriptives.type_frequencies(data, homework, difficulties),
            completion=descriptives.completion(data),
            omega=descriptives.omega_by_session(data, instruments),
            analysis=analyse(data, outcome, predictors),
            data=data,
        )


def _union(lists) -> list[str]:
    out: list[str] = []
    for values in lists:
        out.extend(v for v in values if v not in out)
    return out


# ------------------------------------------------------------------------------ model tables


def model_frames(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """fixed_effects, variance_components, model_fit (REML and ML) and lr_tests."""
    fixed, variance, fit_rows = [], [], []
    for f in analysis.fits:
        head = [f.spec.name.value, f.spec.formula]
        fixed += [[*head, e.term, e.estimate, e.se, e.z, e.p] for e in f.fixed]
        variance += [[*head, VARIANCE_LABELS[k], v] for k, v in _variances(f)]
        if f.converged and f.spec.name == "null":
            variance.append([*head, "ICC (share of variance between patients)", f.icc])
    for f in (*analysis.fits, *analysis.ml_fits):
        fit_rows.append(_fit_row(f))
    tests = [
        [f"{t.simpler.value} vs {t.larger.value}", t.chi2, t.df, t.p, t.converged, LRT_NOTE]
        for t in analysis.tests
    ]
    head = ["model", "formula"]
    return {
        "fixed_effects": pd.DataFrame(fixed, columns=[*head, "term", "estimate", "se", "z", "p"]),
        "variance_components": pd.DataFrame(variance, columns=[*head, "component", "value"]),
        "model_fit": pd.DataFrame(fit_rows, columns=FIT_COLUMNS),
        "lr_tests": pd.DataFrame(
            tests, columns=["comparison", "chi2", "df", "p", "converged", "note"]
        ),
    }


FIT_COLUMNS = [
    "model", "formula", "estimation", "converged", "message", "singular", "n_obs",
    "n_patients", "df", "loglik", "aic", "bic",
]  # fmt: skip


def _variances(f: ModelFit) -> list[tuple[str, float]]:
    order = ("intercept", "slope", "covariance", "residual")
    return [(k, f.variances[k]) for k in order if k in f.variances]


def _fit_row(f: ModelFit) -> list[Any]:
    numbers = [f.df, f.loglik, f.aic, f.bic] if f.converged else [f.spec.n_parameters, *[None] * 3]
    return [f.spec.name.value, f.spec.formula, "REML" if f.reml else "ML", f.converged,
            f.message, f.singular, f.n_obs, f.n_groups, *numbers]  # fmt: skip


# ------------------------------------------------------------------------------ plain text


def _text(r: Results) -> str:
    lines = [
        "Study results",
        f"Data: {r.counts['sessions']} eligible sessions of {r.counts['patients']} patients, "
        f"{r.counts['rated_sessions']} rated; resolution {r.resolve}: {r.resolution}.",
        "",
        "Descriptives (overall): measure, n, mean, SD",
    ]
    overall = r.descriptives[r.descriptives["by"] == descriptives.OVERALL]
    for row in overall.itertuples():
        lines.append(f"  {row.measure:<16} {row.n:>4}  {_n(row.mean)}  {_n(row.sd)}")
    lines += ["", "Homework and difficulties: kind, type, count, sessions"]
    for row in r.frequencies.itertuples():
        lines.append(f"  {row.kind:<18} {row.type:<30} {_n(row.count, 1):>6} {row.sessions:>4}")
    done = r.completion
    lines.append(f"  completed: {_n(done['completed'], 1)} of {_n(done['reported'], 1)} reported")
    lines += ["", "Omega (McDonald) overall and per session number"]
    for (measure, group), row in r.omega.set_index(["measure", "group"]).iterrows():
        lines.append(f"  {measure:<16} {group:<8} n={row['n']:<4} {_n(row['omega'])} {row['note']}")
    lines += ["", f"Models of {r.analysis.outcome} (REML; {r.analysis.n_obs} sessions of "
              f"{r.analysis.n_groups} patients)"]  # fmt: skip
    for f in r.analysis.fits:
        lines.append(f"  {f.spec.name.value}: {f.spec.formula}")
        if not f.converged:
            lines.append(f"    not converged: {f.message}")
            continue
        for e in f.fixed:
            lines.append(f"    {e.term:<28} {_n(e.estimate, 4)}  SE {_n(e.se, 4)}  p {_n(e.p, 4)}")
        for k, v in _variances(f):
            lines.append(f"    {VARIANCE_LABELS[k]:<34} {_n(v, 4)}")
        lines.append(f"    logLik {_n(f.loglik, 3)}  AIC {_n(f.aic, 2)}  BIC {_n(f.bic, 2)}")
    lines.append("  Likelihood-ratio tests (ML refits)")
    for t in r.analysis.tests:
        chi = f"chi2({t.df}) = {_n(t.chi2, 3)}, p = {_n(t.p, 4)}" if t.converged else "–"
        lines.append(f"    {t.simpler.value} vs {t.larger.value}: {chi}")
    return "\n".join(lines) + "\n"


def _n(value: float | None, digits: int = 2) -> str:
    return format_number(value, digits)
