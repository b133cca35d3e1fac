"""Reliability on 0-6 and 1-7 items against R's psych (ICC, weighted Cohen's kappa over the
item's own categories) on generated data sets; N/A left out."""

from __future__ import annotations

import io
import subprocess

import pandas as pd
import pytest

from rater.reliability.report import report
from tests.instruments.test_reliability_by_kind import INSTRUMENT, _frame, _pairs

pytestmark = pytest.mark.r

SCRIPT = r"""
suppressMessages(library(psych))
d <- read.csv(file("stdin"))
out <- c()
for (item in unique(d$item)) {
  x <- d[d$item == item, c("r1", "r2")]
  icc <- ICC(x, lmer = FALSE)$results
  levels <- if (item == "K_zero_six") 0:6 else 1:7
  k <- cohen.kappa(x, levels = levels)
  out <- rbind(out, data.frame(item = item, icc_a1 = icc$ICC[2], icc_ak = icc$ICC[5],
                               kappa_quadratic = k$weighted.kappa))
}
write.csv(out, stdout(), row.names = FALSE)
"""


@pytest.mark.parametrize("seed", range(4))
def test_iccs_and_weighted_kappa_equal_psych(seed):
    frame = _frame(seed)
    rep = report(frame, [INSTRUMENT], design="none")
    parts = []
    for item in ("K_zero_six", "K_one_seven"):
        wide = _pairs(frame, item).astype(int)
        parts.append(wide.assign(item=item)[["item", "r1", "r2"]])
    data = pd.concat(parts).to_csv(index=False)
    done = subprocess.run(
        ["Rscript", "--vanilla", "-e", SCRIPT],
        input=data, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    psych = pd.read_csv(io.StringIO(done.stdout)).set_index("item")
    for item in ("K_zero_six", "K_one_seven"):
        [pair] = rep.pairs_of("K", item)
        assert pair.coefficients["ICC(A,1)"].value == pytest.approx(psych.loc[item, "icc_a1"])
        assert pair.coefficients["ICC(A,2)"].value == pytest.approx(psych.loc[item, "icc_ak"])
        assert pair.coefficients["kappa_quadratic"].value == pytest.approx(
            psych.loc[item, "kappa_quadratic"]
        )
