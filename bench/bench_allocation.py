"""Speed of ``rater.allocation.design`` against a naive random round-robin of the same sizes.

Run: ``python bench/bench_allocation.py``. Prints wall times for the reference study
(197 sessions, 22 patients, 3 therapists, 5 raters, f = 0.4) and for 20,000 sessions x 50
raters, whether every guarantee held in both, and the ratio against the naive baseline
(shuffle sessions, pick round(fN) at random to double-code, deal raters round-robin) timed
in the same run on the same machine.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from rater.allocation.design import check_guarantees, design, target_doubles


def study(n_patients: int, n_therapists: int, sessions_per_patient: int, seed: int = 0):
    """Catalogue with phase I = sessions 1-4, II = 5+; a few patients one session short."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        n = sessions_per_patient - int(rng.random() < 0.1)
        for k in range(1, n + 1):
            rows.append(
                (
                    f"S{len(rows) + 1:06d}",
                    f"T{p % n_therapists + 1}",
                    f"P{p + 1:05d}",
                    "I" if k <= 4 else "II",
                    "eligible",
                )
            )
    return pd.DataFrame(rows, columns=["session_id", "therapist", "patient", "phase", "status"])


def reference_study() -> pd.DataFrame:
    rows = []
    for p in range(22):
        for k in range(1, (8 if p == 0 else 9) + 1):  # 197 sessions
            rows.append(
                (
                    len(rows) + 1,
                    f"T{p % 3 + 1}",
                    f"P{p + 1:02d}",
                    "I" if k <= 4 else "II",
                    "eligible",
                )
            )
    return pd.DataFrame(rows, columns=["session_id", "therapist", "patient", "phase", "status"])


def naive(sessions: pd.DataFrame, raters: list[str], f: float, seed: int = 0) -> pd.DataFrame:
    """Random round-robin: the baseline a spreadsheet user would do."""
    rng = np.random.default_rng(seed)
    ids = sessions["session_id"].to_numpy()[rng.permutation(len(sessions))]
    k = len(raters)
    d = target_doubles(len(ids), f)
    main = np.arange(len(ids)) % k
    second = (main[:d] + 1 + rng.integers(0, k - 1, d)) % k
    return pd.DataFrame(
        {
            "session_id": np.r_[ids, ids[:d]],
            "rater": np.asarray(raters)[np.r_[main, second]],
            "purpose": ["main"] * len(ids) + ["double"] * d,
        }
    )


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ref = reference_study()
    big = study(n_patients=2100, n_therapists=10, sessions_per_patient=10)
    big = big.iloc[:20000]
    ref_raters = [f"R{i}" for i in range(1, 6)]
    big_raters = [f"R{i:02d}" for i in range(1, 51)]
    t_ref, d_ref = timed(design, ref, ref_raters, 0.4, 0)
    t_big, d_big = timed(design, big, big_raters, 0.4, 0)
    t_naive, rr = timed(naive, big, big_raters, 0.4)
    naive_ok = not check_guarantees(big, big_raters, rr, 0.4)
    ok = not d_ref.report.deviations and not d_big.report.deviations
    print(f"reference ({len(ref)} sessions x 5 raters): {t_ref:.3f} s")
    print(f"20k x 50 ({len(big)} sessions x 50 raters): {t_big:.2f} s")
    print(
        f"naive round-robin, 20k x 50: {t_naive:.4f} s; ratio design/naive: {t_big / t_naive:.0f}x"
        f" (naive meets the guarantees: {'yes' if naive_ok else 'no'})"
    )
    print(f"all guarantees met: {'yes' if ok else 'no'}")
    for d in (d_ref.report.deviations + d_big.report.deviations)[:10]:
        print("  deviation:", d)


if __name__ == "__main__":
    main()
