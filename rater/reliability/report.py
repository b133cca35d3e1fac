"""The reliability report: the tidy ratings frame -> every coefficient a study reports (pure).

``report(frame, instruments)`` takes the one tidy frame (``rater.rating.frame.ratings_frame()``)
and the instrument definitions and computes, for every measure (``Instrument.measures()``:
items, subscales, scale scores):

* per rater pair, over the sessions both rated (main + double, never calibration): ICCs, kappas
  and the mean difference (:mod:`rater.reliability.pairs`), summarised across pairs;
* the whole design (:mod:`rater.reliability.whole_design`): ``icc_incomplete`` and
  Krippendorff's alpha over all main + double ratings;
* the calibration round (:mod:`rater.reliability.calibration`);
* internal consistency (:mod:`rater.reliability.consistency`).

The values per rating come from :mod:`rater.reliability.values` (the instrument's own scoring);
the results are records of :mod:`rater.reliability.results`; :mod:`rater.reliability.output`
turns a report into tables, JSON and text. Minimum-n rule: see ``results``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from rater.instruments import Instrument, Measure, MeasureKind
from rater.reliability import output
from rater.reliability.calibration import calibration_results
from rater.reliability.consistency import consistency_results
from rater.reliability.pairs import pair_results, pair_summaries, pair_table
from rater.reliability.results import (
    CalibrationPanel,
    ConsistencyResult,
    DesignResult,
    Estimate,
    NotEnoughData,
    PairResult,
    PairSummary,
    RaterAgreement,
    Result,
    find,
)
from rater.reliability.values import (
    cross_session_parts,
    measure_values,
    measures_of,
    not_applicable_counts,
)
from rater.reliability.whole_design import design_results
from rater.states import Purpose

DESIGN_CHOICES = ("all", "scales", "none")


@dataclass
class ReliabilityReport:
    """Everything the dashboard, the CLI and the export show; built by :func:`report`."""

    instruments: list[tuple[str, str]]  # (code, name)
    measures: list[Measure]
    pairs: list[PairResult]
    summaries: list[PairSummary]
    design: list[DesignResult]
    calibration_panel: list[CalibrationPanel]
    calibration_raters: list[RaterAgreement]
    consistency: list[ConsistencyResult]
    paired: pd.DataFrame  # one row per double-coded session x measure x pair (for plots)
    counts: dict[str, int]

    def measure(self, instrument: str, code: str) -> Measure:
        return next(m for m in self.measures if (m.instrument, m.code) == (instrument, code))

    def summary(self, instrument: str, measure: str) -> PairSummary | None:
        return find(self.summaries, instrument, measure)

    def design_result(self, instrument: str, measure: str) -> DesignResult | None:
        return find(self.design, instrument, measure)

    def pair_mean(self, instrument: str, measure: str, coefficient: str) -> Result:
        """The mean of one coefficient across the pairs of a measure that have a value (Cohen's
        kappa and percent agreement of nominal items), else the first pair's reason."""
        found = [p.coefficients.get(coefficient) for p in self.pairs_of(instrument, measure)]
        values = [r.value for r in found if isinstance(r, Estimate)]
        if values:
            return Estimate(float(sum(values) / len(values)))
        reasons = [r for r in found if isinstance(r, NotEnoughData)]
        if reasons:
            return reasons[0]
        summary = self.summary(instrument, measure)
        if summary is not None and isinstance(summary.statistics["mean"], NotEnoughData):
            return summary.statistics["mean"]
        return NotEnoughData("no rater pair yet")

    def calibration_of(self, instrument: str, measure: str) -> CalibrationPanel | None:
        """The calibration panel of a nominal item (its Fleiss' kappa), if any."""
        return next(
            (
                p
                for p in self.calibration_panel
                if (p.instrument, p.measure) == (instrument, measure)
            ),
            None,
        )

    def consistency_of(self, instrument: str, measure: str) -> ConsistencyResult | None:
        return find(self.consistency, instrument, measure)

    def pairs_of(self, instrument: str, measure: str) -> list[PairResult]:
        return [p for p in self.pairs if (p.instrument, p.measure) == (instrument, measure)]

    def to_text(self) -> str:
        """Plain text, as ``rater reliability`` prints it."""
        return output.to_text(self)

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Tidy long tables: pairs, pair_summary, design, calibration, consistency."""
        return output.to_frames(self)

    def to_dict(self) -> dict[str, Any]:
        """Valid JSON (see :func:`rater.reliability.output.to_dict`)."""
        return output.to_dict(self)

    def to_json(self) -> str:
        """Strict JSON text (what ``rater reliability --json`` prints)."""
        return output.to_json(self)


def report(
    frame: pd.DataFrame,
    instruments: Sequence[Instrument],
    *,
    design: str = "all",
    events: pd.DataFrame | None = None,
    minutes: pd.Series | None = None,
) -> ReliabilityReport:
    """Compute the reliability report from the tidy ratings frame (submitted ratings).

    ``design`` chooses the measures that get the design-wide REML coefficients, the one
    costly part (one model fit each): ``"all"`` (every item, subscale and score; the CLI and
    the export), ``"scales"`` (subscales, scores and event summaries; the dashboard) or
    ``"none"``.
    BLAS runs single-threaded meanwhile: the matrices are tiny, and threads only contend.
    ``events`` holds the event measures of every coded rating
    (``rater.coding.measures.event_values``): code counts and summary measures then get pair
    ICCs and the design-wide coefficients like scale scores (not calibration panels).
    ``minutes`` is each session's recording length in minutes (index: session code;
    :func:`rater.reliability.values.session_minutes`): rates per minute of count items enter
    like counts; without it (or for a session without a length) they are missing.
    """
    if design not in DESIGN_CHOICES:
        raise ValueError(f"design must be 'all', 'scales' or 'none', got {design!r}")
    with threadpool_limits(limits=1):
        return _report(frame, instruments, design, events, minutes)


def _report(
    frame: pd.DataFrame,
    instruments: Sequence[Instrument],
    design: str,
    events: pd.DataFrame | None = None,
    minutes: pd.Series | None = None,
) -> ReliabilityReport:
    coded = events is not None and not events.empty
    instruments = [
        i for i in instruments if (frame["instrument"] == i.code).any() or (coded and i.codes)
    ] or list(instruments)
    values = measure_values(frame, instruments, events, minutes)
    measures = [m for inst in instruments for m in measures_of(inst)]
    main = values[values["purpose"] != Purpose.CALIBRATION]
    paired = pair_table(main)
    pairs = pair_results(paired, measures)
    cal = frame[frame["purpose"] == Purpose.CALIBRATION]
    panel, agreement = calibration_results(cal, instruments)
    wanted = [m for m in measures if _wants_design(m, design)]
    parts = None
    if any(m.is_cross_session for m in wanted):
        parts = cross_session_parts(frame, instruments)
    return ReliabilityReport(
        instruments=[(i.code, i.name) for i in instruments],
        measures=measures,
        pairs=pairs,
        summaries=pair_summaries(pairs, main, measures),
        design=design_results(
            main,
            wanted,
            parts,
            not_applicable_counts(frame[frame["purpose"] != Purpose.CALIBRATION]),
        ),
        calibration_panel=panel,
        calibration_raters=agreement,
        consistency=consistency_results(values, instruments),
        paired=paired,
        counts={
            "ratings": int(values["rating_id"].nunique()) if len(values) else 0,
            "sessions": int(main["session_id"].nunique()),
            "double_coded_sessions": int(paired["session_id"].nunique()),
            "calibration_ratings": int(cal["rating_id"].nunique()),
            "raters": int(frame["rater"].nunique()),
        },
    )


def _wants_design(m: Measure, design: str) -> bool:
    """Counts of single codes are the building blocks of summaries, as items are of scales:
    the dashboard ("scales") leaves both to the instrument's own page ("all")."""
    building_blocks = (MeasureKind.ITEM, MeasureKind.CODE_COUNT)
    return design == "all" or (design == "scales" and m.kind not in building_blocks)
