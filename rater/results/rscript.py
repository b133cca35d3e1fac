"""A short R script that refits the Results page's models with lme4 (pure: text out).

The script reads the ``sessions`` export (the same analysis dataset the page uses, with the
same ``--resolve``), keeps the rows with every variable of the models, fits the sequence by
REML, prints each model's summary, refits by ML for the likelihood-ratio tests (``anova``) and,
given a second argument, writes every number to a CSV (model, estimation, quantity, term,
value) so that a reviewer — or a test — can compare them with rater's.
"""

from __future__ import annotations

from collections.abc import Sequence

from rater.results.models import GROUP, TIME, model_sequence


def _name(code: str) -> str:
    """A column name as R code (backquoted: any code is a valid name then)."""
    return "`" + code.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _formula(outcome: str, terms: Sequence[str], random_slope: bool) -> str:
    fixed = " + ".join(["1", *(":".join(_name(p) for p in t.split(":")) for t in terms)])
    random = f"(1 + {TIME} | {GROUP})" if random_slope else f"(1 | {GROUP})"
    return f"{_name(outcome)} ~ {fixed} + {random}"


def r_script(outcome: str, predictors: Sequence[str], resolve: str, sessions_file: str) -> str:
    """The script for one outcome and its predictors; ``sessions_file`` is the export's name."""
    specs = model_sequence(outcome, predictors)
    columns = ", ".join(_string(c) for c in [GROUP, TIME, outcome, *predictors])
    models = ",\n".join(
        f"  {s.name.value} = {_formula(s.outcome, s.terms, s.random_slope)}" for s in specs
    )
    return TEMPLATE.format(
        resolve=resolve,
        sessions_file=_string(sessions_file),
        columns=columns,
        models=models,
    )


TEMPLATE = """\
# Refit rater's multilevel models with lme4 (R).
#
# Data: the `sessions` export with the resolution the Results page used ({resolve}):
#   rater export sessions --resolve {resolve} -o sessions.csv
# (or Exports > sessions in the browser, resolution "{resolve}").
# Run:  Rscript rater-results.R sessions.csv [numbers.csv]
# Needs the R package lme4 (Debian: r-cran-lme4). The optimiser's tolerances are tight so
# that the estimates agree with rater's to at least 4 significant digits.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
file <- if (length(args) >= 1) args[1] else {sessions_file}
d <- read.csv(file, fileEncoding = "UTF-8-BOM", check.names = FALSE,
              stringsAsFactors = FALSE)
d <- d[complete.cases(d[c({columns})]), ]
d$patient <- factor(d$patient)
ctl <- lmerControl(optimizer = "nloptwrap", check.conv.singular = "ignore",
  optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12,
                 maxeval = 1e5))
formulas <- list(
{models}
)
reml <- lapply(formulas, function(f) lmer(f, data = d, REML = TRUE, control = ctl))
ml <- lapply(formulas, function(f) lmer(f, data = d, REML = FALSE, control = ctl))
cat(nrow(d), "sessions of", nlevels(d$patient), "patients\\n")
for (name in names(reml)) {{
  cat("\\n==== ", name, " (REML) ====\\n", sep = "")
  print(summary(reml[[name]]))
}}
if (length(ml) > 1) {{
  cat("\\n==== likelihood-ratio tests (ML refits) ====\\n")
  print(do.call(anova, c(unname(ml), list(refit = FALSE, model.names = names(ml)))))
}}
numbers <- function(m, name, estimation) {{
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  vc <- as.data.frame(VarCorr(m))
  component <- ifelse(vc$grp == "Residual", "residual",
               ifelse(is.na(vc$var2), ifelse(vc$var1 == "(Intercept)", "intercept", "slope"),
                      "covariance"))
  rbind(
    data.frame(model = name, estimation = estimation, quantity = "estimate",
               term = names(fe), value = unname(fe)),
    data.frame(model = name, estimation = estimation, quantity = "se",
               term = names(fe), value = unname(se)),
    data.frame(model = name, estimation = estimation, quantity = "variance",
               term = component, value = vc$vcov),
    data.frame(model = name, estimation = estimation, quantity = c("loglik", "aic", "bic"),
               term = "", value = c(as.numeric(logLik(m)), AIC(m), BIC(m))))
}}
if (length(args) >= 2) {{
  out <- do.call(rbind, c(
    Map(numbers, reml, names(reml), "REML"),
    Map(numbers, ml, names(ml), "ML")))
  write.csv(out, args[2], row.names = FALSE)
}}
"""
