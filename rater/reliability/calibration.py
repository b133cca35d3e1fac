"""The calibration round (pure): every rater scores the same sessions before main rating.

Targets are session x item. The panel's ICC across all raters, each rater's agreement with the
mean of the rest of the panel (flagging who needs more training), and the gate's figure: the
lowest ICC(A,1) across instruments.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rater.formatting import format_number, plural
from rater.instruments import Instrument, Item, ItemKind
from rater.reliability import stats
from rater.reliability.results import (
    CalibrationPanel,
    Estimate,
    NotEnoughData,
    RaterAgreement,
    Result,
    estimate,
    too_few,
)
from rater.states import Purpose

CALIBRATION_FLAG_ICC = 0.5  # a rater whose ICC(A,1) with the panel is below: needs training
CALIBRATION_FLAG_MAD = 1.0  # ... or whose mean absolute difference from the panel is above
ALL_ITEMS = "items"  # measure code of the session x item calibration analysis
NOT_FOR_NOMINAL = NotEnoughData("not computed for a nominal item (see fleiss_kappa)")


def _calibration_wide(cal: pd.DataFrame) -> pd.DataFrame:
    """(session, item) x rater table of one instrument's calibration scores, complete rows
    (ordinal and count items: nominal and text items and "not applicable" have no score)."""
    cal = cal[cal["score"].notna()] if not cal.empty else cal
    if cal.empty:
        return pd.DataFrame()
    wide = cal.pivot(index=["session_id", "item"], columns="rater", values="score")
    return wide.dropna(axis=0, how="any").astype(float)


def _panel(instrument: str, wide: pd.DataFrame) -> CalibrationPanel:
    raters = tuple(str(r) for r in wide.columns)
    reason = too_few(len(wide), "session x item target", "rated by every rater")
    if len(raters) < 2:
        reason = NotEnoughData(
            f"{plural(len(raters), 'rater')} in the calibration round (minimum 2)"
        )
    if reason:
        coefs: dict[str, Result] = {"ICC(A,1)": reason, "ICC(A,k)": reason}
    else:
        table = stats.icc(wide)[["ICC", "ci_low", "ci_high"]].to_numpy()
        coefs = {
            name: estimate(*table[stats.ICC_TYPES.index(name)]) for name in ("ICC(A,1)", "ICC(A,k)")
        }
    return CalibrationPanel(instrument, ALL_ITEMS, len(wide), raters, coefs)


def _rater_agreement(instrument: str, wide: pd.DataFrame) -> list[RaterAgreement]:
    """Each rater against the mean of the other raters over the complete (session, item) targets."""
    if wide.shape[1] < 2 or wide.empty:
        return []
    values = wide.to_numpy()
    k = values.shape[1]
    rest = (values.sum(axis=1, keepdims=True) - values) / (k - 1)
    groups = np.repeat(np.arange(k)[None, :], len(values), axis=0)
    iccs = stats.icc_two_raters(values.ravel(), rest.ravel(), groups.ravel(), types=("ICC(A,1)",))
    out = []
    for j, rater in enumerate(wide.columns):
        diff = values[:, j] - rest[:, j]
        short = too_few(len(values), "session x item target", "rated by every rater")
        icc_value = short or estimate(
            *iccs.iloc[j][["ICC(A,1)", "ICC(A,1) ci_low", "ICC(A,1) ci_high"]]
        )
        mad = float(np.abs(diff).mean())
        coefs: dict[str, Result] = {
            "ICC(A,1)": icc_value,
            "mean_difference": Estimate(float(diff.mean())),
            "mean_abs_difference": Estimate(mad),
        }
        why = []
        if isinstance(icc_value, Estimate) and icc_value.value < CALIBRATION_FLAG_ICC:
            why.append(
                f"ICC(A,1) with the panel {format_number(icc_value.value)} < {CALIBRATION_FLAG_ICC}"
            )
        if mad > CALIBRATION_FLAG_MAD:
            why.append(f"mean absolute difference {format_number(mad)} > {CALIBRATION_FLAG_MAD}")
        out.append(
            RaterAgreement(instrument, str(rater), len(values), coefs, bool(why), "; ".join(why))
        )
    return out


def _nominal_panel(instrument: str, item: Item, cal: pd.DataFrame) -> CalibrationPanel:
    """Fleiss' kappa of one nominal item over the calibration sessions every rater coded
    ("not applicable" and missing answers leave the session out)."""
    mine = cal[(cal["item"] == item.code) & cal["value"].notna()]
    wide = mine.pivot(index="session_id", columns="rater", values="value").dropna(how="any")
    raters = tuple(str(r) for r in wide.columns)
    reason = too_few(len(wide), "session", "coded by every rater")
    if len(raters) < 2:
        reason = NotEnoughData(f"{plural(len(raters), 'rater')} in the calibration round")
    numbers = wide.apply(lambda column: column.map(item.category_number)).astype(float)
    coefs: dict[str, Result] = dict.fromkeys(("ICC(A,1)", "ICC(A,k)"), NOT_FOR_NOMINAL)
    coefs["fleiss_kappa"] = reason or estimate(stats.fleiss_kappa(numbers.to_numpy()))
    return CalibrationPanel(instrument, item.code, len(wide), raters, coefs)


def calibration_results(
    cal: pd.DataFrame, instruments: Sequence[Instrument]
) -> tuple[list[CalibrationPanel], list[RaterAgreement]]:
    """Per instrument, the panel over its session x item targets of ordinal and count items
    (and each rater's agreement with it); per nominal item (one category), Fleiss' kappa."""
    panels, agreement = [], []
    for inst in instruments:
        mine = cal[cal["instrument"] == inst.code]
        wide = _calibration_wide(mine)
        panels.append(_panel(inst.code, wide))
        agreement.extend(_rater_agreement(inst.code, wide))
        for item in inst.items:
            if item.kind == ItemKind.NOMINAL and not item.multiple:
                panels.append(_nominal_panel(inst.code, item, mine))
    return panels, agreement


def calibration_icc(frame: pd.DataFrame) -> tuple[float | None, str]:
    """The calibration gate: the lowest ICC(A,1) across instruments, or None and the reason.

    Over the calibration ratings only; targets are session x item, keeping the targets every
    rater in the round has scored.  None when any instrument has too few targets or raters.
    """
    cal = frame[frame["purpose"] == Purpose.CALIBRATION]
    if cal.empty:
        return None, "no calibration ratings submitted yet"
    results = []
    for code in sorted(cal["instrument"].unique()):
        panel = _panel(code, _calibration_wide(cal[cal["instrument"] == code]))
        value = panel.coefficients["ICC(A,1)"]
        if isinstance(value, NotEnoughData):
            return None, f"{code}: {value}"
        results.append((value.value, code, panel))
    lowest, code, panel = min(results)
    return lowest, (
        f"lowest ICC(A,1) {format_number(lowest, 3)} ({code}; "
        f"{plural(panel.n_targets, 'session x item target')}, {plural(len(panel.raters), 'rater')})"
    )
