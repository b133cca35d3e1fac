"""Event-level agreement of two coders of a double-coded session, for the coordinator's view.

The events of the session's first two coders (by user name; submitted ratings, else drafts are
not shown) are aligned with :func:`rater.coding.matching.agreement` within the coding sheet's
tolerance (Bakeman, Quera & Gnisci 2009; see that module). The view lays both timelines one
above the other, marks the events left unmatched or matched with another code, and lists the
codes from the lowest F1 up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from rater.coding.matching import Agreement, CodeAgreement, Event, agreement
from rater.coding.service import coded_ratings_frame, events_frame
from rater.study.instrument_store import all_versions, instrument_of


@dataclass(frozen=True)
class Mark:
    lane: int  # 0: coder A, 1: coder B
    code: str
    time: float
    matched: bool  # paired with an event of the same code


# The timeline's labels, in the SVG's user units (the drawing is 1000 wide; labels 9 high).
LABEL_ROWS = 3  # rows of labels per coder; a label that fits in none is left out (its title stays)
ROW_STEP = 11.0
CHAR_WIDTH = 6.2  # wider than the mean glyph of a 9-unit font, so estimates err on the safe side
LABEL_GAP = 4.0
LANE_GAP = 50.0


@dataclass(frozen=True)
class PlacedMark:
    mark: Mark
    x: float
    row: int | None  # the label's row away from the line (0 nearest), None: no label shown


def place_labels(marks: list[Mark], x: Callable[[float], float]) -> list[PlacedMark]:
    """Stagger each coder's labels over up to LABEL_ROWS rows so that none overlaps another:
    from left to right, a label takes the nearest row where it clears the previous label by
    LABEL_GAP; a label that fits in no row is not drawn (the mark and its tooltip stay)."""
    placed = []
    for lane in (0, 1):
        ends = [-math.inf] * LABEL_ROWS  # right edge of the last label in each row
        for mark in sorted((m for m in marks if m.lane == lane), key=lambda m: m.time):
            at = x(mark.time)
            half = len(mark.code) * CHAR_WIDTH / 2
            row = next((r for r in range(LABEL_ROWS) if at - half >= ends[r] + LABEL_GAP), None)
            if row is not None:
                ends[row] = at + half
            placed.append(PlacedMark(mark, at, row))
    return placed


@dataclass(frozen=True)
class SessionAgreement:
    session_id: str
    instrument: str
    coders: tuple[str, str]
    tolerance: float
    duration: float
    result: Agreement
    marks: list[Mark]

    @property
    def lowest(self) -> list[CodeAgreement]:
        """Codes from the lowest F1 up (codes without an F1 last)."""
        return sorted(
            self.result.codes, key=lambda c: (math.isnan(c.f1), c.f1 if not math.isnan(c.f1) else 0)
        )

    def x(self, seconds: float, width: float = 1000.0) -> float:
        return round(width * seconds / self.duration, 1) if self.duration else 0.0

    @cached_property
    def placed(self) -> list[PlacedMark]:
        """The marks with their x and label row (labels staggered so they never overlap)."""
        return place_labels(self.marks, self.x)

    def _rows(self, lane: int) -> int:
        return 1 + max((p.row for p in self.placed if p.mark.lane == lane and p.row), default=0)

    @property
    def line_a(self) -> float:
        """y of coder A's line: room above it for A's label rows."""
        return 30 + ROW_STEP * (self._rows(0) - 1)

    @property
    def line_b(self) -> float:
        return self.line_a + LANE_GAP

    def label_y(self, placed: PlacedMark) -> float:
        """Baseline of a label: A's rows above A's line, B's rows below B's line."""
        step = ROW_STEP * (placed.row or 0)
        return self.line_a - 15 - step if placed.mark.lane == 0 else self.line_b + 24 + step

    @property
    def axis_y(self) -> float:
        """Baseline of the 0 s / end labels, under B's lowest label row."""
        return self.line_b + 24 + ROW_STEP * (self._rows(1) - 1) + 14

    @property
    def height(self) -> float:
        return self.axis_y + 4


def _coding_instruments() -> dict[str, Any]:
    """Code -> the latest version's instrument, for instruments with behaviour codes."""
    found: dict[str, Any] = {}
    for version in all_versions():
        instrument = instrument_of(version)
        if instrument.codes:
            found[instrument.code] = instrument
    return found


def double_coded_sessions() -> list[dict[str, Any]]:
    """Sessions whose coding sheet was submitted by two or more coders: the coders, and the
    agreement of the first two (kappa, percent, units), by session."""
    instruments = _coding_instruments()
    coded = coded_ratings_frame(list(instruments.values()))
    if coded.empty:
        return []
    events = events_frame()
    coders = coded.groupby(["session_id", "instrument"])["rater"].agg(lambda r: sorted(set(r)))
    out = []
    for (session, code), names in coders.items():
        if len(names) < 2:
            continue
        view = _agreement(session, instruments[code], coded, events, names)
        out.append({"session_id": session, "instrument": code, "coders": names,
                    "kappa": view.result.kappa, "percent": view.result.percent,
                    "units": len(view.result.units)})  # fmt: skip
    return out


def session_agreement(session_code: str) -> SessionAgreement | None:
    """The agreement view of one double-coded session (None when it is not double-coded)."""
    instruments = _coding_instruments()
    coded = coded_ratings_frame(list(instruments.values()))
    coded = coded[coded["session_id"] == session_code]
    names = sorted(set(coded["rater"]))
    if len(names) < 2:
        return None
    instrument = instruments[coded["instrument"].iloc[0]]
    return _agreement(session_code, instrument, coded, events_frame(), names)


def _agreement(
    session: str, instrument: Any, coded: pd.DataFrame, events: pd.DataFrame, names: list[str]
) -> SessionAgreement:
    here = (events["session_id"] == session) & (events["instrument"] == instrument.code)
    a, b = (_events_of(events[here], name) for name in names[:2])
    result = agreement(a, b, instrument.tolerance)
    length = coded.loc[coded["session_id"] == session, "duration_seconds"].iloc[0]
    duration = float(length or 0) or max([e.time for e in (*a, *b)], default=0.0)
    return SessionAgreement(
        session, instrument.code, (names[0], names[1]), instrument.tolerance, duration,
        result, _marks(result),
    )  # fmt: skip


def _events_of(events: pd.DataFrame, rater: str) -> list[Event]:
    mine = events[events["rater"] == rater]
    return [Event(code, float(t)) for code, t in zip(mine["code"], mine["time_s"], strict=True)]


def _marks(result: Agreement) -> list[Mark]:
    marks = []
    for unit in result.units:
        for lane, event in enumerate((unit.a, unit.b)):
            if event is not None:
                marks.append(Mark(lane, event.code, event.time, unit.agrees))
    return marks
