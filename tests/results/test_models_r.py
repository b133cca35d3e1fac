"""The multilevel models equal lme4's on generated data sets (marked ``r``).

One Rscript call fits every data set with lme4 (tight optimiser tolerances) and writes one long
CSV of results; each value is compared with rater.results.models: fixed effects, their standard
errors and the variance components to 1e-4 relative, log-likelihoods to 1e-6 (absolute), AIC
and BIC, REML and ML, and the likelihood-ratio tests of ML refits.
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from rater.results.models import (
    fit,
    fit_sequence,
    likelihood_ratio_tests,
    model_data,
    model_sequence,
)

pytestmark = pytest.mark.r

N_SETS = 5
# Data sets whose best fits put a variance on the boundary (0): no variance between patients
# at all, and none in the slopes (statsmodels alone cannot reach those fits).
BOUNDARY_SETS = (100, 101)
SETS = (*range(N_SETS), *BOUNDARY_SETS)

R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
dir <- commandArgs(trailingOnly = TRUE)[1]
ctl <- lmerControl(optimizer = "nloptwrap", check.conv.singular = "ignore",
  optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12,
                 maxeval = 1e5))
forms <- c(null = "y ~ 1 + (1 | patient)",
           growth = "y ~ session_number + (1 + session_number | patient)",
           predictors = "y ~ session_number + x + (1 + session_number | patient)",
           interaction = paste("y ~ session_number + x + session_number:x",
                               "+ (1 + session_number | patient)"))
out <- list()
put <- function(file, key, value) {
  out[[length(out) + 1]] <<- data.frame(file = file, key = key, value = as.numeric(value))
}
for (f in list.files(dir, pattern = "^set_.*\\.csv$")) {
  d <- read.csv(file.path(dir, f))
  for (reml in c(TRUE, FALSE)) {
    tag <- if (reml) "reml" else "ml"
    for (name in names(forms)) {
      m <- lmer(as.formula(forms[[name]]), d, REML = reml, control = ctl)
      k <- paste(tag, name, sep = "_")
      fe <- fixef(m); se <- sqrt(diag(as.matrix(vcov(m))))
      for (j in seq_along(fe)) {
        put(f, paste(k, "fe", j, sep = "_"), fe[j]); put(f, paste(k, "se", j, sep = "_"), se[j])
      }
      vc <- as.data.frame(VarCorr(m))$vcov
      for (j in seq_along(vc)) put(f, paste(k, "vc", j, sep = "_"), vc[j])
      put(f, paste(k, "loglik", sep = "_"), logLik(m)); put(f, paste(k, "aic", sep = "_"), AIC(m))
      put(f, paste(k, "bic", sep = "_"), BIC(m))
      if (!reml && name != "null") {
        before <- forms[[which(names(forms) == name) - 1]]
        prev <- lmer(as.formula(before), d, REML = FALSE, control = ctl)
        a <- anova(prev, m, refit = FALSE)
        put(f, paste("lrt", name, "chi2", sep = "_"), a$Chisq[2])
        put(f, paste("lrt", name, "p", sep = "_"), a$`Pr(>Chisq)`[2])
      }
    }
  }
}
write.csv(do.call(rbind, out), file.path(dir, "r_results.csv"), row.names = FALSE)
"""


def _study(seed: int) -> pd.DataFrame:
    """22 patients x up to 9 sessions: random intercepts and slopes, a time-varying predictor
    (in the boundary sets, intercepts and slopes do not vary between patients)."""
    rng = np.random.default_rng(seed)
    spread = 0.0 if seed in BOUNDARY_SETS else 1.0
    rows = []
    for p in range(22):
        intercept = 3 + spread * rng.normal(0, 0.6)
        slope = -0.05 + spread * rng.normal(0, 0.08)
        for t in range(1, 10):
            if rng.random() < 0.06:
                continue
            x = rng.normal(2, 0.7)
            y = intercept + slope * t + 0.3 * x + 0.02 * t * x + rng.normal(0, 0.5)
            rows.append((f"P{p:02d}", t, y, x))
    return pd.DataFrame(rows, columns=["patient", "session_number", "y", "x"])


@pytest.fixture(scope="module")
def lme4_results(tmp_path_factory):
    if shutil.which("Rscript") is None:
        pytest.fail("Rscript is missing: make test installs r-base-core and r-cran-lme4")
    folder = tmp_path_factory.mktemp("lme4")
    for seed in SETS:
        _study(seed).to_csv(folder / f"set_{seed}.csv", index=False)
    (folder / "fit.R").write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(folder / "fit.R"), str(folder)], check=True, timeout=600)
    table = pd.read_csv(folder / "r_results.csv")
    return {(row.file, row.key): row.value for row in table.itertuples()}


@pytest.mark.parametrize("seed", SETS)
@pytest.mark.parametrize("reml", [True, False])
def test_models_equal_lme4(lme4_results, seed, reml):
    data = model_data(_study(seed), "y", ["x"])
    tag, file = ("reml" if reml else "ml"), f"set_{seed}.csv"
    for spec in model_sequence("y", ["x"]):
        result = fit(data, spec, reml=reml)
        assert result.converged, spec.name
        key = f"{tag}_{spec.name}"
        for j, effect in enumerate(result.fixed, start=1):
            assert effect.estimate == pytest.approx(lme4_results[file, f"{key}_fe_{j}"], rel=1e-4)
            assert effect.se == pytest.approx(lme4_results[file, f"{key}_se_{j}"], rel=1e-4)
        v = result.variances
        ours = [v["intercept"], v["slope"], v["covariance"]] if "slope" in v else [v["intercept"]]
        # A covariance near 0 is compared on the scale of its variances (the correlation to
        # 1e-4): the deviance is flat along it, and optimisers that agree on the log-likelihood
        # to 1e-9 can differ by 2e-4 of a covariance of -0.0009 (seen with statsmodels 0.15).
        scale = math.sqrt(v["intercept"] * v["slope"]) if "slope" in v else 0.0
        for j, value in enumerate([*ours, v["residual"]], start=1):
            theirs = lme4_results[file, f"{key}_vc_{j}"]
            floor = max(1e-10, 1e-4 * scale) if j == 3 else 1e-10
            assert value == pytest.approx(theirs, rel=1e-4, abs=floor), (spec.name, j)
        assert result.loglik == pytest.approx(lme4_results[file, f"{key}_loglik"], abs=1e-6)
        assert result.aic == pytest.approx(lme4_results[file, f"{key}_aic"], abs=1e-5)
        assert result.bic == pytest.approx(lme4_results[file, f"{key}_bic"], abs=1e-5)


@pytest.mark.parametrize("seed", SETS)
def test_likelihood_ratio_tests_equal_lme4_anova(lme4_results, seed):
    data = model_data(_study(seed), "y", ["x"])
    tests = likelihood_ratio_tests(data, model_sequence("y", ["x"]))
    assert [t.larger for t in tests] == ["growth", "predictors", "interaction"]
    for t in tests:
        assert t.refit_ml and t.converged
        assert t.chi2 == pytest.approx(lme4_results[f"set_{seed}.csv", f"lrt_{t.larger}_chi2"],
                                       abs=1e-5)  # fmt: skip
        assert t.p == pytest.approx(lme4_results[f"set_{seed}.csv", f"lrt_{t.larger}_p"], rel=1e-4)


def test_icc_of_the_null_model_and_the_sequence_by_reml():
    data = model_data(_study(0), "y", ["x"])
    fits = fit_sequence(data, model_sequence("y", ["x"]))
    null = fits[0]
    assert null.reml and null.icc == pytest.approx(
        null.variances["intercept"] / (null.variances["intercept"] + null.variances["residual"])
    )
    assert 0 < null.icc < 1
    assert [f.spec.formula for f in fits][
        1
    ] == "y ~ 1 + session_number + (1 + session_number | patient)"


@pytest.mark.parametrize("seed", BOUNDARY_SETS)
def test_boundary_sets_have_fits_with_a_variance_of_zero(seed):
    """The boundary sets do test the boundary: their null fit has no between-patient variance."""
    data = model_data(_study(seed), "y", ["x"])
    null = fit(data, model_sequence("y", ["x"])[0])
    assert null.converged and null.singular and null.variances["intercept"] == 0.0
