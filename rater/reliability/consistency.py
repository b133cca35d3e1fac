"""Internal consistency (pure): Cronbach's alpha, McDonald's omega and corrected item-total
correlations per scale and subscale, on one rating per session (the main rater's), items keyed
as the instrument scores them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rater.instruments import Instrument, Measure, MeasureKind
from rater.reliability import stats
from rater.reliability.results import (
    ConsistencyResult,
    NotEnoughData,
    Result,
    estimate,
    too_few,
)
from rater.states import Purpose

SCALES = (MeasureKind.SCORE, MeasureKind.SUBSCALE)


def consistency_results(
    values: pd.DataFrame, instruments: Sequence[Instrument]
) -> list[ConsistencyResult]:
    """Alpha, omega and corrected item-total correlations per scale and subscale (main ratings).

    One rating per session: the main rater's.  Items enter keyed.  Cross-session scores are
    left out (their items come from two sessions).
    """
    main = values[(values["purpose"] == Purpose.MAIN) & (values["kind"] == MeasureKind.ITEM)]
    out = []
    for inst in instruments:
        items = main[main["instrument"] == inst.code].pivot(
            index="rating_id", columns="measure", values="value"
        )
        keyed = inst.keyed(items)
        for m in inst.measures():
            if m.kind not in SCALES or m.is_cross_session or len(m.items) < 2:
                continue
            out.append(_consistency(m, keyed[list(m.items)].dropna()))
    return out


def _consistency(m: Measure, table: pd.DataFrame) -> ConsistencyResult:
    short = too_few(len(table), "complete main rating", "")
    if short:
        coefs: dict[str, Result] = {"cronbach_alpha": short, "omega": short}
        return ConsistencyResult(
            m.instrument, m.code, m.kind, len(table), coefs, dict.fromkeys(m.items, short)
        )
    coefs = {"cronbach_alpha": estimate(stats.cronbach_alpha(table))}
    if len(m.items) >= 3:
        coefs["omega"] = estimate(stats.mcdonald_omega(table))
    else:
        coefs["omega"] = NotEnoughData("omega needs at least 3 items")
    r_drop = stats.item_total_correlations(table)
    item_total = {code: estimate(float(r_drop[code])) for code in m.items}
    return ConsistencyResult(m.instrument, m.code, m.kind, len(table), coefs, item_total)
