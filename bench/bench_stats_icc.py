"""Speed of rater.reliability.stats ICCs against baselines measured in the same run.

* icc_incomplete on 2,000 sessions x 10 raters (complete) and on a 2,000-session design
  with 40 % double coding, against pingouin.intraclass_corr on the same complete table.
* icc_pairs_fast over every rater pair x item of a reference-study-sized data set, against
  looping pingouin.intraclass_corr over the same pairs x items.

Run:  python bench/bench_stats_icc.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pingouin as pg

from rater.reliability.stats import icc_incomplete, icc_pairs_fast


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


def study_long(rng: np.random.Generator, sessions: int = 197, raters: int = 5) -> pd.DataFrame:
    """Reference-study shape: 40 % double-coded, 15 items scored 0-4."""
    rows = []
    for s in range(sessions):
        who = rng.choice(raters, size=2 if rng.random() < 0.4 else 1, replace=False)
        for item in range(15):
            base = rng.normal()
            for r in who:
                score = float(np.clip(np.round(2 + base + 0.6 * rng.normal()), 0, 4))
                rows.append((s, f"R{r}", f"item{item}", score))
    return pd.DataFrame(rows, columns=["session", "rater", "item", "score"])


def pingouin_pairs(long: pd.DataFrame) -> list[float]:
    out = []
    raters = sorted(long["rater"].unique())
    for _item, by_item in long.groupby("item"):
        for i, r1 in enumerate(raters):
            for r2 in raters[i + 1 :]:
                sub = by_item[by_item["rater"].isin([r1, r2])]
                shared = sub.groupby("session")["rater"].transform("size") == 2
                sub = sub[shared]
                if sub["session"].nunique() < 3:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    table = pg.intraclass_corr(sub, "session", "rater", "score")
                out.append(float(table.set_index("Type").loc["ICC(A,k)", "ICC"]))
    return out


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

    long = study_long(rng)
    t_fast = timed(lambda: icc_pairs_fast(long, by=["item"]))
    t_loop = timed(lambda: pingouin_pairs(long), repeat=1)
    fast = icc_pairs_fast(long, by=["item"])
    fast = fast[fast["n"] >= 3]["ICC(A,k)"].to_numpy()
    slow = np.array(pingouin_pairs(long))
    print(f"pair ICCs, {len(fast)} pairs x items: icc_pairs_fast {t_fast * 1000:.1f} ms, ")
    print(f"  pingouin loop {t_loop * 1000:.0f} ms  ratio {t_loop / t_fast:.0f}x")
    print(f"  max |difference| {np.nanmax(np.abs(np.sort(fast) - np.sort(slow))):.2e}")


if __name__ == "__main__":
    main()
