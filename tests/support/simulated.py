"""A simulated study: a ratings frame drawn from a latent-trait model (tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rater.instruments import Instrument

CALIBRATION = "calibration"


def simulated_frame(
    instruments: Sequence[Instrument],
    n_sessions: int = 200,
    n_raters: int = 5,
    double_share: float = 0.4,
    n_calibration: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """A ratings frame (``ratings_frame()`` columns) drawn from a latent-trait model.

    score = clip(round(item intercept + patient + session effect (sign-flipped for
    reverse-keyed items) + rater bias + noise), the item's scale), effects in units of a
    quarter of the item's range.  Sessions 1..9 per patient; every
    session has a main rater, ``double_share`` of them a second one ('double'), pairs of
    raters cycling so that all pairs overlap about equally; ``n_calibration`` extra sessions
    are rated by every rater.
    """
    rng = np.random.default_rng(seed)
    raters = [f"rater{i + 1:02d}" for i in range(n_raters)]
    all_pairs = [(a, b) for i, a in enumerate(raters) for b in raters[i + 1 :]]
    rows = []
    n_patients = max(1, n_sessions // 9)
    patient_effect = rng.normal(0, 0.7, n_patients + 1)
    bias = dict(zip(raters, rng.normal(0, 0.25, n_raters), strict=True))
    items = [(inst, item) for inst in instruments for item in inst.items]
    # the middle of each item's scale; effects in units of a quarter of its range (0-4: 1)
    low = np.array([item.scale.min for _, item in items], dtype=float)
    span = np.array([item.scale.span for _, item in items], dtype=float)
    intercept = low + span * rng.uniform(0.35, 0.65, len(items))
    unit = span / 4
    start = pd.Timestamp("2024-01-01")
    total = n_sessions + n_calibration
    for s in range(total):
        calibration = s >= n_sessions
        p = n_patients if calibration else s % n_patients
        number = 9 if calibration else s // n_patients + 1
        truth = patient_effect[p] + rng.normal(0, 0.5)
        if calibration:
            who = [(r, CALIBRATION) for r in raters]
        elif rng.random() < double_share:
            a, b = all_pairs[int(rng.integers(len(all_pairs)))]
            who = [(a, "main"), (b, "double")]
        else:
            who = [(raters[int(rng.integers(n_raters))], "main")]
        when = start + pd.Timedelta(days=int(365 * s / total))
        for rater, purpose in who:
            noise = rng.normal(0, 0.6, len(items))
            for j, (inst, item) in enumerate(items):
                keyed = -truth if item.reverse else truth
                latent = intercept[j] + unit[j] * (keyed + bias[rater] + noise[j])
                score = int(np.clip(round(latent), low[j], low[j] + span[j]))
                rows.append(
                    {
                        "rating_id": f"S{s:05d}-{rater}",
                        "session_id": f"S{s:05d}",
                        "patient": f"P{p:03d}",
                        "therapist": "T1",
                        "session_number": number,
                        "phase": "I" if number < 5 else "II",
                        "rater": rater,
                        "purpose": purpose,
                        "instrument": inst.code,
                        "instrument_version": 1,
                        "item": item.code,
                        "subscale": item.subscale,
                        "score": score,
                        "rating_status": "submitted",
                        "submitted_at": when,
                    }
                )
    frame = pd.DataFrame.from_records(rows)
    frame["rating_id"] = pd.factorize(frame["rating_id"])[0] + 1
    return frame
