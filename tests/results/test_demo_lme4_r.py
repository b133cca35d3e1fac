"""On the demo study, the Results page's models equal lme4's, and the downloadable R script
reproduces them from the ``sessions`` export (marked ``r``).

The demo is built once; ``rater export sessions`` writes the export a reviewer would use,
``rater results --r-script`` writes the script, ``Rscript`` runs it on the export and writes
its numbers; each is compared with ``rater results --json``: fixed effects, standard errors and
variance components to 1e-4 relative, log-likelihoods to 1e-6, AIC and BIC, REML and ML.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest

pytestmark = pytest.mark.r

CHOICES = {
    "engagement": [],  # the default: GHES_score predicted by StHAR_total, as in the paper
    "phq9": ["--outcome", "phq9", "--predictor", "GHES_score", "--predictor", "StHAR_total"],
}


@pytest.fixture
def demo_results(shipped_demo, runner, tmp_path):  # noqa: ARG001 (a fixture requested for its setup)
    if shutil.which("Rscript") is None:
        pytest.fail("Rscript is missing: make test installs r-base-core and r-cran-lme4")
    sessions = tmp_path / "sessions.csv"
    done = runner.invoke(args=["export", "sessions", "--resolve", "mean", "-o", str(sessions)])
    assert done.exit_code == 0, done.output
    out = {}
    for name, args in CHOICES.items():
        script, numbers = tmp_path / f"{name}.R", tmp_path / f"{name}-numbers.csv"
        result = runner.invoke(args=["results", "--json", "--r-script", str(script), *args])
        assert result.exit_code == 0, result.output
        run = subprocess.run(["Rscript", str(script), str(sessions), str(numbers)],
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert run.returncode == 0, run.stderr
        numbers_table = pd.read_csv(numbers, keep_default_na=False)  # a model is called "null"
        out[name] = (json.loads(result.output), numbers_table, run.stdout)
    return out


def _r(numbers: pd.DataFrame, model: str, estimation: str, quantity: str, term: str = ""):
    rows = numbers[(numbers["model"] == model) & (numbers["estimation"] == estimation)
                   & (numbers["quantity"] == quantity)]  # fmt: skip
    rows = rows[rows["term"].fillna("") == term]
    assert len(rows) == 1, (model, estimation, quantity, term)
    return float(rows["value"].iloc[0])


def test_demo_models_equal_lme4_through_the_r_script(demo_results):
    for name, (ours, numbers, stdout) in demo_results.items():
        assert "sessions of" in stdout and "Linear mixed model fit by REML" in stdout
        fits = pd.DataFrame(ours["model_fit"])
        assert fits["converged"].all(), (name, fits["message"].tolist())
        for fit in fits.itertuples():
            estimation = fit.estimation
            assert fit.loglik == pytest.approx(
                _r(numbers, fit.model, estimation, "loglik"), abs=1e-6
            ), (name, fit.model, estimation)
            assert fit.aic == pytest.approx(_r(numbers, fit.model, estimation, "aic"), abs=1e-5)
            assert fit.bic == pytest.approx(_r(numbers, fit.model, estimation, "bic"), abs=1e-5)
        for row in ours["fixed_effects"]:  # REML estimates, as the page shows them
            for quantity, ours_value in (("estimate", row["estimate"]), ("se", row["se"])):
                theirs = _r(numbers, row["model"], "REML", quantity, row["term"])
                assert ours_value == pytest.approx(theirs, rel=1e-4), (name, row)
        components = {v: k for k, v in VARIANCE_KEYS.items()}
        for row in ours["variance_components"]:
            if row["component"] not in components:
                continue  # the ICC: from the variances compared here
            theirs = _r(numbers, row["model"], "REML", "variance", components[row["component"]])
            assert row["value"] == pytest.approx(theirs, rel=1e-4, abs=1e-10), (name, row)
        _likelihood_ratio_tests_equal_anova_of_ml_refits(ours, numbers)


VARIANCE_KEYS = {
    "intercept": "intercept variance (patients)",
    "slope": "slope variance (session number)",
    "covariance": "intercept–slope covariance",
    "residual": "residual variance",
}


def _likelihood_ratio_tests_equal_anova_of_ml_refits(ours, numbers) -> None:
    ml = {f["model"]: f for f in ours["model_fit"] if f["estimation"] == "ML"}
    for test in ours["lr_tests"]:
        simpler, larger = test["comparison"].split(" vs ")
        chi2 = 2 * (_r(numbers, larger, "ML", "loglik") - _r(numbers, simpler, "ML", "loglik"))
        assert test["chi2"] == pytest.approx(max(chi2, 0.0), abs=1e-5)
        assert test["df"] == ml[larger]["df"] - ml[simpler]["df"]
