"""Cross-checks of rater.reliability.stats against R (lme4, psych).

One Rscript call per module: the fixture writes every generated data set to a temporary
folder, runs a single R script over all of them and reads back one long CSV of results.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rater.reliability.stats import (
    cronbach_alpha,
    icc,
    icc_incomplete,
    item_total_correlations,
    mcdonald_omega,
    paired_mean_difference,
)
from rater.reliability.whole_design import cross_session_design
from tests.reliability.test_report import STHAR_TOTAL, composite_study

pytestmark = pytest.mark.r

N_DESIGNS = 20
N_TABLES = 8
N_PAIRED = 25
N_COMPOSITES = 3

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(psych)})
dir <- commandArgs(trailingOnly = TRUE)[1]
out <- list()
put <- function(file, key, value) {
  out[[length(out) + 1]] <<- data.frame(file = file, key = key, value = as.numeric(value))
}
for (f in list.files(dir, pattern = "^design_.*\\.csv$")) {
  d <- read.csv(file.path(dir, f))
  d$target <- factor(d$target); d$rater <- factor(d$rater)
  fit <- lmer(score ~ 1 + (1 | target) + (1 | rater), data = d, REML = TRUE,
              control = lmerControl(optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12)))
  vc <- as.data.frame(VarCorr(fit))
  put(f, "var_target", vc$vcov[vc$grp == "target"])
  put(f, "var_rater", vc$vcov[vc$grp == "rater"])
  put(f, "var_residual", vc$vcov[vc$grp == "Residual"])
}
for (f in list.files(dir, pattern = "^table_.*\\.csv$")) {
  x <- read.csv(file.path(dir, f))
  r <- suppressMessages(suppressWarnings(ICC(x, lmer = FALSE)))$results
  for (i in seq_len(nrow(r))) {
    put(f, paste0("icc_", r$type[i]), r$ICC[i])
    put(f, paste0("low_", r$type[i]), r$`lower bound`[i])
    put(f, paste0("high_", r$type[i]), r$`upper bound`[i])
  }
}
for (f in list.files(dir, pattern = "^items_.*\\.csv$")) {
  x <- read.csv(file.path(dir, f))
  a <- suppressMessages(suppressWarnings(alpha(x, warnings = FALSE)))
  put(f, "raw_alpha", a$total$raw_alpha)
  for (j in seq_len(ncol(x))) put(f, paste0("r_drop_", colnames(x)[j]), a$item.stats$r.drop[j])
  fa1 <- suppressMessages(suppressWarnings(fa(x, nfactors = 1, fm = "ml")))
  l <- as.vector(fa1$loadings)
  put(f, "omega", sum(l)^2 / (sum(l)^2 + sum(1 - l^2)))
}
for (f in list.files(dir, pattern = "^paired_.*\\.csv$")) {
  x <- read.csv(file.path(dir, f))
  for (g in unique(x$group)) {
    s <- x[x$group == g, ]
    tt <- t.test(s$a, s$b, paired = TRUE)
    put(f, paste0("mean_", g), tt$estimate)
    put(f, paste0("low_", g), tt$conf.int[1])
    put(f, paste0("high_", g), tt$conf.int[2])
  }
}
for (f in list.files(dir, pattern = "^composite_.*\\.csv$")) {
  x <- read.csv(file.path(dir, f))
  vc <- list(); w <- list()
  for (part in c("previous", "current")) {
    d <- x[x$part == part, ]
    d$session_id <- factor(d$session_id); d$rater <- factor(d$rater)
    fit <- lmer(value ~ 1 + (1 | session_id) + (1 | rater), data = d, REML = TRUE,
                control = lmerControl(optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12)))
    v <- as.data.frame(VarCorr(fit))
    vc[[part]] <- c(v$vcov[v$grp == "session_id"], v$vcov[v$grp == "rater"],
                    v$vcov[v$grp == "Residual"])
    w[[part]] <- d$weight[1]
  }
  m <- aggregate(value ~ part + patient + session_number, data = x, FUN = mean)
  before <- m[m$part == "previous", ]; before$session_number <- before$session_number + 1
  now <- m[m$part == "current", ]
  both <- merge(now, before, by = c("patient", "session_number"))
  kappa <- cov(both$value.x, both$value.y)
  a <- w$previous; b <- w$current
  target <- a^2 * vc$previous[1] + b^2 * vc$current[1] + 2 * a * b * kappa
  rater <- a^2 * vc$previous[2] + b^2 * vc$current[2]
  residual <- a^2 * vc$previous[3] + b^2 * vc$current[3]
  put(f, "ICC(A,1)", target / (target + rater + residual))
  put(f, "ICC(C,1)", target / (target + residual))
}
write.csv(do.call(rbind, out), file.path(dir, "results.csv"), row.names = FALSE)
"""


def incomplete_design(seed: int) -> pd.DataFrame:
    """60-200 targets, 4-6 raters; about 40 % double-coded by varying pairs, rest single."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(60, 201)), int(rng.integers(4, 7))
    sd_t, sd_r, sd_e = rng.uniform(0.3, 1.2), rng.uniform(0.05, 0.8), rng.uniform(0.3, 1.0)
    t_eff, r_eff = sd_t * rng.normal(size=n), sd_r * rng.normal(size=m)
    integer = seed % 2 == 0
    rows = []
    for t in range(n):
        raters = rng.choice(m, size=2 if rng.random() < 0.4 else 1, replace=False)
        for r in raters:
            y = 2 + t_eff[t] + r_eff[r] + sd_e * rng.normal()
            rows.append((f"s{t:03d}", f"R{r}", float(np.clip(np.round(y), 0, 4)) if integer else y))
    return pd.DataFrame(rows, columns=["target", "rater", "score"])


def complete_table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(1000 + seed)
    n, k = int(rng.integers(6, 40)), int(rng.integers(2, 6))
    y = rng.normal(size=(n, 1)) + 0.5 * rng.normal(size=(1, k)) + 0.8 * rng.normal(size=(n, k))
    if seed % 2:
        y = np.clip(np.round(2 + y), 0, 4)
    return pd.DataFrame(y, columns=[f"r{j}" for j in range(k)])


def item_table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(2000 + seed)
    n, k = int(rng.integers(40, 200)), int(rng.integers(3, 9))
    trait = rng.normal(size=(n, 1))
    y = 2 + trait * rng.uniform(0.3, 1.2, size=(1, k)) + rng.normal(size=(n, k))
    return pd.DataFrame(np.clip(np.round(y), 0, 4), columns=[f"i{j}" for j in range(k)])


def paired_groups(seed: int) -> pd.DataFrame:
    """2-12 groups of 2-30 targets scored by two raters (0-4 integers or continuous).

    A group whose differences are all equal is redrawn: R's t.test refuses it (tested apart).
    """
    rng = np.random.default_rng(3000 + seed)
    rows = []
    for g in range(int(rng.integers(2, 13))):
        n = int(rng.integers(2, 31))
        while True:
            truth = rng.normal(2, 1, n)
            a = truth + rng.normal(0, 0.6, n)
            b = truth + rng.normal(rng.normal(0, 0.4), 0.6, n)
            if seed % 2 == 0:
                a, b = np.clip(np.round(a), 0, 4), np.clip(np.round(b), 0, 4)
            if np.ptp(a - b) > 0:
                break
        rows += [(f"g{g:02d}", x, y) for x, y in zip(a, b, strict=True)]
    return pd.DataFrame(rows, columns=["group", "a", "b"])


def composite_parts(i: int) -> pd.DataFrame:
    """Parts of a StHAR-like total (see tests/reliability/test_report.py), 8-40 raters."""
    return composite_study(100 + i, n_raters=(8, 20, 40)[i % 3])[0]


@pytest.fixture(scope="module")
def r_results(tmp_path_factory) -> dict[str, dict[str, float]]:
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    folder = tmp_path_factory.mktemp("r_crosscheck")
    for i in range(N_DESIGNS):
        incomplete_design(i).to_csv(folder / f"design_{i:02d}.csv", index=False)
    for i in range(N_TABLES):
        complete_table(i).to_csv(folder / f"table_{i:02d}.csv", index=False)
        item_table(i).to_csv(folder / f"items_{i:02d}.csv", index=False)
    for i in range(N_PAIRED):
        paired_groups(i).to_csv(folder / f"paired_{i:02d}.csv", index=False)
    for i in range(N_COMPOSITES):
        composite_parts(i).to_csv(folder / f"composite_{i:02d}.csv", index=False)
    script = Path(folder) / "check.R"
    script.write_text(R_SCRIPT)
    done = subprocess.run(
        ["Rscript", str(script), str(folder)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    long = pd.read_csv(folder / "results.csv")
    return {f: dict(zip(g["key"], g["value"], strict=True)) for f, g in long.groupby("file")}


@pytest.mark.parametrize("i", range(N_DESIGNS))
def test_icc_incomplete_variance_components_equal_lme4(r_results, i):
    ref = r_results[f"design_{i:02d}.csv"]
    got = icc_incomplete(incomplete_design(i), target="target")
    total = ref["var_target"] + ref["var_rater"] + ref["var_residual"]
    for key in ("var_target", "var_rater", "var_residual"):
        if ref[key] > 1e-3 * total:
            assert got[key] == pytest.approx(ref[key], rel=1e-4)
        else:  # at or near the boundary: relative error is meaningless
            assert got[key] == pytest.approx(ref[key], abs=1e-5 * total)
    s_t, s_r, s_e = ref["var_target"], ref["var_rater"], ref["var_residual"]
    khat, q = got["khat"], got["q"]
    expected = {
        "ICC(A,1)": s_t / (s_t + s_r + s_e),
        "ICC(A,khat)": s_t / (s_t + (s_r + s_e) / khat),
        "ICC(C,1)": s_t / (s_t + s_e),
        "ICC(Q,khat)": s_t / (s_t + q * s_r + s_e / khat),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-4)


@pytest.mark.parametrize("i", range(N_TABLES))
def test_icc_equals_psych_icc(r_results, i):
    ref = r_results[f"table_{i:02d}.csv"]
    got = icc(complete_table(i))
    names = ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
    for name, row in zip(names, got.index, strict=True):
        assert got.loc[row, "ICC"] == pytest.approx(ref[f"icc_{name}"], abs=1e-9)
        assert got.loc[row, "ci_low"] == pytest.approx(ref[f"low_{name}"], abs=1e-7)
        assert got.loc[row, "ci_high"] == pytest.approx(ref[f"high_{name}"], abs=1e-7)


@pytest.mark.parametrize("i", range(N_TABLES))
def test_internal_consistency_equals_psych(r_results, i):
    ref = r_results[f"items_{i:02d}.csv"]
    items = item_table(i)
    assert cronbach_alpha(items) == pytest.approx(ref["raw_alpha"], abs=1e-10)
    r_drop = item_total_correlations(items)
    for col in items:
        assert r_drop[col] == pytest.approx(ref[f"r_drop_{col}"], abs=1e-8)
    assert mcdonald_omega(items) == pytest.approx(ref["omega"], abs=1e-4)


@pytest.mark.parametrize("i", range(N_PAIRED))
def test_paired_mean_difference_equals_r_paired_t_test(r_results, i):
    ref = r_results[f"paired_{i:02d}.csv"]
    data = paired_groups(i)
    got = paired_mean_difference(data["a"], data["b"], data["group"])
    for group, row in got.iterrows():
        assert row["n"] == (data["group"] == group).sum()
        for ours, theirs in (("mean", "mean_"), ("ci_low", "low_"), ("ci_high", "high_")):
            assert row[ours] == pytest.approx(ref[theirs + group], abs=1e-10), (group, ours)


@pytest.mark.parametrize("i", range(N_COMPOSITES))
def test_cross_session_composite_equals_lme4_fits_of_its_parts(r_results, i):
    ref = r_results[f"composite_{i:02d}.csv"]
    got = cross_session_design(STHAR_TOTAL, composite_parts(i)).coefficients
    for name in ("ICC(A,1)", "ICC(C,1)"):
        assert got[name].value == pytest.approx(ref[name], abs=1e-4), name
