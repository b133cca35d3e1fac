"""Summary measures of coded events, one row per coded rating (pure: pandas only).

Every rating that uses a coding sheet gets a value of each of its code counts and summary
measures (``Instrument.event_summaries``): a rating without events counts 0, and a ratio whose
denominator is 0 is missing. Rates are per minute of the session's recording. Reliability and
the exports read this table like the item scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rater.instruments import EVENT_BASED, Instrument, Measure, MeasureKind, SummaryRule

KEY_COLUMNS = [
    "session_id", "patient", "therapist", "session_number", "phase", "rater", "purpose",
    "rating_status", "submitted_at",
]  # fmt: skip
BATCH = "batch"  # carried with the keys when ``coded`` has it (the release of the assignment)


def event_measures(instrument: Instrument) -> list[Measure]:
    return [m for m in instrument.measures() if m.kind in EVENT_BASED]


def event_values(
    coded: pd.DataFrame, events: pd.DataFrame, instruments: Sequence[Instrument]
) -> pd.DataFrame:
    """Index ``rating_id``; the columns ``KEY_COLUMNS`` (and ``batch`` when ``coded`` has it),
    then per coding sheet one per event measure and ``<sheet>_version`` (the version the
    rating used).

    ``coded`` has one row per rating x coding sheet it uses (``rating_id``, ``instrument``,
    ``instrument_version``, ``duration_seconds`` and the key columns); ``events`` one row per
    event (``rating_id``, ``instrument``, ``code``, ``time_s``, ``end_s``).
    """
    parts = []
    for instrument in instruments:
        if not instrument.codes:
            continue
        mine = coded[coded["instrument"] == instrument.code].drop_duplicates("rating_id")
        mine = mine.set_index("rating_id")
        minutes = pd.to_numeric(mine["duration_seconds"], errors="coerce").astype("float64") / 60
        theirs = events[events["instrument"] == instrument.code]
        values = instrument.event_summaries(theirs, mine.index, minutes)
        values[f"{instrument.code}_version"] = mine["instrument_version"]
        parts.append(values)
    carried = [*KEY_COLUMNS, BATCH] if BATCH in coded else KEY_COLUMNS
    keys = coded.drop_duplicates("rating_id").set_index("rating_id")[carried]
    if not parts:
        return keys.iloc[0:0]
    return keys.join(pd.concat(parts, axis=1), how="inner").sort_index()


def _names(instrument: Instrument, names: Sequence[str]) -> str:
    """'ASSIGN' or 'group assigning (ASSIGN, RATIONALE)' for each name, joined by '+'."""
    groups = instrument.code_groups()
    shown = [f"group {n} ({', '.join(groups[n])})" if n in groups else n for n in names]
    return " + ".join(shown)


def rule_text(instrument: Instrument, measure: Measure) -> str:
    """How an event measure is computed, in words (its codebook rule)."""
    if measure.kind == MeasureKind.CODE_COUNT:
        return (
            f"Number of events coded {_names(instrument, measure.items)} in the rating "
            "(0 when there are none)."
        )
    summary = next(s for s in instrument.summaries if s.code == measure.code)
    of = _names(instrument, summary.of)
    if summary.rule == SummaryRule.COUNT:
        return f"Number of events coded {of} in the rating (0 when there are none)."
    if summary.rule == SummaryRule.RATE:
        return (
            f"Number of events coded {of} per minute of the recording "
            "(count / (duration_seconds / 60)); missing when the length is unknown."
        )
    if summary.rule == SummaryRule.DURATION:
        return (
            f"Seconds covered by segments coded {of}: the sum of end_s - time_s "
            "(a segment without an end counts 0)."
        )
    top = _names(instrument, summary.numerator)
    bottom = _names(instrument, summary.denominator)
    times = "100 x " if summary.rule == SummaryRule.PERCENT else ""
    return (
        f"{times}(number of events coded {top}) / (number of events coded {bottom}); "
        "missing when the denominator is 0."
    )
