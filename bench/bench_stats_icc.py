"""Speed of rater.reliability.stats ICCs against baselines measured in the same run.

* icc_incomplete on 2,000 sessions x 10 raters (complete) and on a 2,000-session design
  with 40 % double coding, against pingouin.intraclass_corr on the same complete table.

Pair ICCs of every rater pair x measure (``stats.icc_two_raters`` inside the report) are timed
against a pingouin loop by ``bench/bench_reliability.py``.

Run:  python bench/bench_stats_icc.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pingouin as pg

from rater.reliability.stats import icc_incomplete


def timed(func, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def complete_long(n: int, k: int, rng: np.random.Generator) -> pd.DataFrame:
    y = rng.normal(size=(n, 1)) + 0.5 * rng.normal(size=(1, k)) + 0.7 * rng.normal(size=(n, k))
    wide = pd.DataFrame(y, columns=[f"R{j}" for j in range(k)])
    wide.index.name = "session"
    return wide.reset_index().melt(id_vars="session", var_name="rater", value_name="score")


def main() -> None:
    rng = np.random.default_rng(1)
    big = complete_long(2000, 10, rng)
    t_reml = timed(lambda: icc_incomplete(big), repeat=2)
    t_pg = timed(lambda: pg.intraclass_corr(big, "session", "rater", "score"), repeat=2)
    print(f"icc_incomplete 2,000 x 10 complete: {t_reml:.3f} s")
    print(f"  pingouin.intraclass_corr same table: {t_pg:.3f} s  ratio {t_pg / t_reml:.2f}")

    design = big.sample(frac=1.0, random_state=1)
    keep = (
        design.groupby("session").cumcount()
        < np.where(rng.random(2000) < 0.4, 2, 1)[design["session"].to_numpy()]
    )
    sparse = design[keep]
    t_sparse = timed(lambda: icc_incomplete(sparse), repeat=2)
    print(
        f"icc_incomplete 2,000 sessions, 40 % double-coded ({len(sparse)} cells): {t_sparse:.3f} s"
    )


if __name__ == "__main__":
    main()
