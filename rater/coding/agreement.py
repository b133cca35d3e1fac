"""Event-level agreement of two coders of a double-coded session, for the coordinator's view.

The events of the session's first two coders (by user name; submitted ratings, else drafts are
not shown) are aligned with :func:`rater.coding.matching.agreement` within the coding sheet's
tolerance (Bakeman, Quera & Gnisci 2009; see that module). The view lays both timelines one
above the other, marks the events left unmatched or matched with another code, and lists the
codes from the lowest F1 up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
