"""What makes an event valid, for the rating page's autosave and the CSV import alike (pure).

An event names a behaviour code of one of the rating's instruments, a time in seconds from the
start of the recording and, for a segment code, an optional end (an open segment has none yet;
a point code never has one). Times lie within the recording (when its length is known, up to
``TIME_SLACK`` seconds beyond it: players report the end a little late) and are kept to the
hundredth of a second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rater.instruments import BehaviourCode, Instrument

MAX_NOTE_LENGTH = 2_000
MAX_EVENTS = 5_000  # per rating: about one event a second for more than an hour
MAX_SECONDS = 24 * 3600.0
TIME_SLACK = 1.0
EVENT_FIELDS = ("code", "time_s", "end_s", "note")


@dataclass(frozen=True)
class EventProblem:
    field: str  # code, time_s, end_s or note
    message: str


def codes_of(instruments: Iterable[Instrument]) -> dict[str, BehaviourCode]:
    """Code -> its definition, over the instruments (the first instrument naming it wins)."""
    found: dict[str, BehaviourCode] = {}
    for instrument in instruments:
        for code in instrument.codes:
            found.setdefault(code.code, code)
    return found


def check_event(
    codes: Mapping[str, BehaviourCode],
    code: Any,
    time_s: Any,
    end_s: Any,
    note: Any,
    duration: float | None,
) -> tuple[dict[str, Any] | None, list[EventProblem]]:
    """The event as stored (times rounded to 0.01 s), or None and every problem found."""
    problems: list[EventProblem] = []
    definition = codes.get(code) if isinstance(code, str) else None
    if definition is None:
        known = ", ".join(sorted(codes)) or "none"
        problems.append(
            EventProblem("code", f"is not a code of this rating's instruments ({known})")
        )
    limit = MAX_SECONDS if duration is None else float(duration) + TIME_SLACK
    start = _seconds(time_s, limit, "time_s", problems)
    end = None if end_s is None else _seconds(end_s, limit, "end_s", problems)
    if definition is not None and end_s is not None and not definition.segment:
        problems.append(EventProblem("end_s", f"{code} marks a point in time: leave the end empty"))
    if start is not None and end is not None and end < start:
        problems.append(EventProblem("end_s", "ends before it starts"))
    if not isinstance(note, str):
        problems.append(EventProblem("note", "must be text"))
    elif len(note) > MAX_NOTE_LENGTH:
        problems.append(EventProblem("note", f"is longer than {MAX_NOTE_LENGTH} characters"))
    if problems:
        return None, problems
    return {"code": code, "time_s": start, "end_s": end, "note": note}, []


def _seconds(value: Any, limit: float, name: str, problems: list[EventProblem]) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        problems.append(EventProblem(name, "must be a number of seconds"))
        return None
    if not 0 <= value <= limit:
        problems.append(EventProblem(name, f"must lie between 0 and {limit:g} s (the recording)"))
        return None
    return round(float(value), 2)


def problem_text(problems: Iterable[EventProblem]) -> str:
    return "; ".join(f"'{p.field}' {p.message}" for p in problems)
