"""The reliability report in other shapes (pure): tidy long tables, strict JSON, plain text.

Unbounded and undefined numbers have one representation per format (docs/reliability.md):
in tables NaN is undefined and ±inf unbounded; JSON has null with ``<field>_infinite`` =
"-inf"/"inf"; text and pages write '−∞' and '–' (``rater.formatting.format_number``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rater.formatting import format_number, format_range, plural
from rater.instruments import ItemKind, Measure
from rater.reliability.calibration import ALL_ITEMS
from rater.reliability.results import (
    BANDS,
    MIN_SESSIONS,
    DesignResult,
    Estimate,
    NotEnoughData,
    Result,
    band,
)

if TYPE_CHECKING:
    from rater.reliability.report import ReliabilityReport

#: The numbers of every coefficient record; infinite ones are flagged in JSON.
NUMBER_FIELDS = ("value", "ci_low", "ci_high")


def infinity_token(value: Any) -> str | None:
    """'-inf' / 'inf' for ±∞ — the text the CSV and xlsx exports hold (R and pandas read it
    back as a number) — else None."""
    if isinstance(value, float | np.floating) and math.isinf(value):
        return str(float(value))
    return None


def _json_record(row: dict[str, Any]) -> dict[str, Any]:
    record = {k: _jsonable(v) for k, v in row.items()}
    for name in NUMBER_FIELDS:
        if name in row:
            record[f"{name}_infinite"] = infinity_token(row[name])
    return record


def _jsonable(value: Any) -> Any:
    """A JSON value: non-finite floats are null, −0.0 is 0.0, timestamps ISO text."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value) + 0.0 if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def to_dict(rep: ReliabilityReport) -> dict[str, Any]:
    """Valid JSON: the tables of :func:`to_frames` as records, plus counts and the rules.

    NaN (undefined) is null; an infinite value, ci_low or ci_high (an unbounded interval,
    e.g. ICC(A,2)'s lower bound −∞) is null with ``<field>_infinite`` = "-inf" ("inf" for
    +∞), which is null for every finite or undefined number (see docs/reliability.md).
    """
    tables = {
        name: [_json_record(row) for row in table.to_dict("records")]
        for name, table in to_frames(rep).items()
    }
    return {
        "min_sessions": MIN_SESSIONS,
        "bands": {name: upper if upper != math.inf else None for upper, name in BANDS},
        "counts": dict(rep.counts),
        "instruments": [{"code": c, "name": n} for c, n in rep.instruments],
        **tables,
    }


def to_json(rep: ReliabilityReport) -> str:
    """:func:`to_dict` as strict JSON text (what ``rater reliability --json`` prints)."""
    return json.dumps(to_dict(rep), indent=2, ensure_ascii=False, allow_nan=False)


def _cells(result: Result) -> dict[str, Any]:
    """value, ci_low, ci_high (NaN: undefined; ±inf: unbounded; never −0.0) and note."""
    if isinstance(result, NotEnoughData):
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "note": str(result)}
    numbers = (result.value, result.ci_low, result.ci_high)
    cells = [math.nan if v is None else float(v) + 0.0 for v in numbers]  # + 0.0: −0.0 -> 0.0
    return dict(zip(NUMBER_FIELDS, cells, strict=True)) | {"note": ""}


def _long(
    rows: Iterable[tuple[dict[str, Any], dict[str, Result]]], columns: list[str]
) -> pd.DataFrame:
    records = [
        {**head, "coefficient": name, **_cells(result)}
        for head, coefs in rows
        for name, result in coefs.items()
    ]
    columns = [*columns, "coefficient", "value", "ci_low", "ci_high", "note"]
    return pd.DataFrame.from_records(records, columns=columns)


def to_frames(rep: ReliabilityReport) -> dict[str, pd.DataFrame]:
    base = ["instrument", "measure", "kind"]
    pairs = _long(
        (
            (
                {
                    "instrument": p.instrument,
                    "measure": p.measure,
                    "kind": p.kind,
                    "rater_1": p.rater_1,
                    "rater_2": p.rater_2,
                    "n": p.n,
                },
                p.coefficients,
            )
            for p in rep.pairs
        ),
        [*base, "rater_1", "rater_2", "n"],
    )
    summary = _long(
        (
            (
                {
                    "instrument": s.instrument,
                    "measure": s.measure,
                    "kind": s.kind,
                    "n_pairs": s.n_pairs,
                    "n_pairs_with_data": s.n_pairs_with_data,
                },
                {f"ICC(A,2) {k}": v for k, v in s.statistics.items()},
            )
            for s in rep.summaries
        ),
        [*base, "n_pairs", "n_pairs_with_data"],
    )
    design = _long(
        (
            (
                {
                    "instrument": d.instrument,
                    "measure": d.measure,
                    "kind": d.kind,
                    "n_sessions": d.n_sessions,
                    "n_double": d.n_double,
                    "n_raters": d.n_raters,
                    "n_not_applicable": d.n_not_applicable,
                    **{
                        k: d.details.get(k, math.nan)
                        for k in ("khat", "q", "var_target", "var_rater", "var_residual")
                    },
                },
                d.coefficients,
            )
            for d in rep.design
        ),
        [
            *base,
            "n_sessions",
            "n_double",
            "n_raters",
            "n_not_applicable",
            "khat",
            "q",
            "var_target",
            "var_rater",
            "var_residual",
        ],
    )
    cal_cols = ["instrument", "measure", "rater", "n_targets", "needs_training", "why"]
    calibration = _long(
        [
            (
                {
                    "instrument": c.instrument,
                    "measure": c.measure,
                    "rater": "(all raters)",
                    "n_targets": c.n_targets,
                    "needs_training": False,
                    "why": "",
                },
                c.coefficients,
            )
            for c in rep.calibration_panel
        ]
        + [
            (
                {
                    "instrument": r.instrument,
                    "measure": ALL_ITEMS,
                    "rater": r.rater,
                    "n_targets": r.n_targets,
                    "needs_training": r.needs_training,
                    "why": r.why,
                },
                r.coefficients,
            )
            for r in rep.calibration_raters
        ],
        cal_cols,
    )
    consistency = _long(
        (
            (
                {
                    "instrument": c.instrument,
                    "measure": c.measure,
                    "kind": c.kind,
                    "item": item,
                    "n_ratings": c.n_ratings,
                },
                coefs,
            )
            for c in rep.consistency
            for item, coefs in [("", c.coefficients)]
            + [(code, {"item_total_r": r}) for code, r in c.item_total.items()]
        ),
        [*base, "item", "n_ratings"],
    )
    return {
        "pairs": pairs,
        "pair_summary": summary,
        "design": design,
        "calibration": calibration,
        "consistency": consistency,
    }


UNBOUNDED_NOTE = (
    "−∞ as a lower limit: the interval has no lower bound (an average-measures ICC falls "
    "without limit as its single-rater ICC nears −1/(k−1)); – : undefined."
)


def show(result: Result | None, digits: int = 2, ci: bool = True) -> str:
    """'0.82 [0.71, 0.90]', '0.14 [−∞, 0.93]', '0.82' or 'not enough data — reason'.

    Numbers through :func:`rater.templating.format_number` (no '-0.00'; −∞ for an unbounded
    bound); '–' for None and for an undefined bound of an interval that has the other one.
    """
    if result is None:
        return "–"
    if isinstance(result, NotEnoughData):
        return str(result)
    text = format_number(result.value, digits)
    if ci and (result.ci_low is not None or result.ci_high is not None):
        text += (
            f" [{format_number(result.ci_low, digits)}, {format_number(result.ci_high, digits)}]"
        )
    return text


def _banded(result: Result | None) -> str:
    text = show(result)
    if isinstance(result, Estimate):
        text += f" ({band(result.value)})"
    return text


def to_text(rep: ReliabilityReport) -> str:
    """The report as plain text, one block per instrument, then the calibration round."""
    c = rep.counts
    lines = [
        f"Reliability of {plural(c['ratings'], 'submitted rating')} by "
        f"{plural(c['raters'], 'rater')}: {plural(c['sessions'], 'session')} in the main design, "
        f"{c['double_coded_sessions']} double-coded; "
        f"{plural(c['calibration_ratings'], 'calibration rating')}.",
        f"Minimum {MIN_SESSIONS} sessions per coefficient. Bands (Koo & Li 2016): poor < .50, "
        "moderate .50–.75, good .75–.90, excellent > .90.",
        UNBOUNDED_NOTE,
    ]
    for code, name in rep.instruments:
        lines += ["", f"{code} — {name}"]
        for m in (m for m in rep.measures if m.instrument == code):
            lines += _measure_lines(rep, m)
        for cons in (x for x in rep.consistency if x.instrument == code):
            lines.append(
                f"  internal consistency {cons.measure} (n = {cons.n_ratings}): "
                f"Cronbach alpha {show(cons.coefficients['cronbach_alpha'])}, "
                f"omega {show(cons.coefficients['omega'])}"
            )
            lines += [f"    item-total r {i}: {show(r)}" for i, r in cons.item_total.items()]
    lines += ["", "Calibration round (targets = session x item)"]
    for panel in rep.calibration_panel:
        if "fleiss_kappa" in panel.coefficients:  # a nominal item
            lines.append(
                f"  {panel.instrument} {panel.measure}: {plural(len(panel.raters), 'rater')}, "
                f"{plural(panel.n_targets, 'session')}: Fleiss' kappa "
                f"{show(panel.coefficients['fleiss_kappa'])}"
            )
            continue
        lines.append(
            f"  {panel.instrument}: {plural(len(panel.raters), 'rater')}, "
            f"{plural(panel.n_targets, 'target')}: "
            f"ICC(A,1) {_banded(panel.coefficients['ICC(A,1)'])}, "
            f"ICC(A,k) {_banded(panel.coefficients['ICC(A,k)'])}"
        )
        for r in (r for r in rep.calibration_raters if r.instrument == panel.instrument):
            flag = f"  NEEDS MORE TRAINING: {r.why}" if r.needs_training else ""
            lines.append(
                f"    {r.rater}: ICC(A,1) with the panel {show(r.coefficients['ICC(A,1)'])}, "
                f"mean difference {show(r.coefficients['mean_difference'])}, "
                f"mean |difference| {show(r.coefficients['mean_abs_difference'])}{flag}"
            )
    return "\n".join(lines)


def _left_out(d: DesignResult) -> str:
    return f"; {d.n_not_applicable} answers 'not applicable' left out" if d.n_not_applicable else ""


def _nominal_lines(rep: ReliabilityReport, m: Measure) -> list[str]:
    """A nominal item: alpha nominal over the design, kappa and agreement per pair."""
    lines = []
    d = rep.design_result(m.instrument, m.code)
    if d is not None:
        lines.append(
            f"    whole design ({plural(d.n_sessions, 'session')}, {d.n_double} double-coded, "
            f"{plural(d.n_raters, 'rater')}): alpha nominal "
            f"{show(d.coefficients['alpha_nominal'])}{_left_out(d)}"
        )
    for p in rep.pairs_of(m.instrument, m.code):
        co = p.coefficients
        lines.append(
            f"    {p.rater_1} – {p.rater_2} n={p.n}: Cohen's kappa {show(co['kappa'])}, "
            f"agreement {show(co['percent_agreement'])} %"
        )
    return lines


def _measure_lines(rep: ReliabilityReport, m: Measure) -> list[str]:
    s = rep.summary(m.instrument, m.code)
    d = rep.design_result(m.instrument, m.code)
    lines = [f"  {m.code} ({m.kind}: {m.label})"]
    if m.item_kind == ItemKind.NOMINAL:
        return lines + _nominal_lines(rep, m)
    if s is not None:
        st = s.statistics
        low, high = st["min"], st["max"]
        spread = (
            f", range {format_range(low.value, high.value)}"
            if isinstance(low, Estimate) and isinstance(high, Estimate)
            else ""
        )
        lines.append(
            f"    pairs: {s.n_pairs_with_data} of {s.n_pairs} with data; ICC(A,2) mean "
            f"{_banded(st['mean'])}, median {show(st['median'])}{spread}"
        )
    if d is not None:
        co = d.coefficients
        lines.append(
            f"    whole design ({plural(d.n_sessions, 'session')}, {d.n_double} double-coded, "
            f"{plural(d.n_raters, 'rater')}): ICC(Q,khat) {_banded(co['ICC(Q,khat)'])}, ICC(A,1) "
            f"{show(co['ICC(A,1)'])}, alpha interval {show(co['alpha_interval'])}, "
            f"ordinal {show(co['alpha_ordinal'])}"
            + (f", ratio {show(co['alpha_ratio'])}" if "alpha_ratio" in co else "")
            + _left_out(d)
        )
    for p in rep.pairs_of(m.instrument, m.code):
        lines.append(
            f"    {p.rater_1} – {p.rater_2} n={p.n}: "
            f"ICC(A,2) {_banded(p.coefficients['ICC(A,2)'])}, "
            f"mean difference {show(p.coefficients['mean_difference'])}"
        )
    return lines
