"""Numbers, counts and durations as the pages, the CLI and the plots write them (pure).

``format_number`` and ``plural`` are shared by the Jinja filters (``rater.templating``), the
reliability report's plain text and the plots, so that every place writes numbers and counts
the same way: no '-0.00', '−∞' for an unbounded bound, '1 session' but '2 sessions'.
Negative numbers carry the minus sign U+2212 ('−0.43', like '−∞'), never an ASCII hyphen, and
ranges an en dash ('0.10–0.90', ``format_range``). Machine-read output (CSV, JSON) does not go
through here.
"""

from __future__ import annotations

import math

MINUS = "−"  # U+2212 MINUS SIGN
EN_DASH = "–"  # U+2013: ranges
MINUS_INFINITY = MINUS + "∞"
PLUS_INFINITY = "+∞"
MISSING = EN_DASH


def format_number(value: float | None, digits: int = 2, *, signed: bool = False) -> str:
    """'0.82', '−0.43', '+0.40' (``signed``), '−∞', '+∞', or '–' for None or NaN.

    A value that rounds to zero is written without a sign ('0.00', never '-0.00'), also when
    ``signed``: round-off such as −1.6e-16 and a negative zero are zero.
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return MISSING
    if math.isnan(number):
        return MISSING
    if math.isinf(number):
        return MINUS_INFINITY if number < 0 else PLUS_INFINITY
    text = f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"
    if float(text) == 0:
        return f"{0.0:.{digits}f}"
    return text.replace("-", MINUS)


def format_range(low: float | None, high: float | None, digits: int = 2) -> str:
    """'0.10–0.90' with an en dash; spaced ('−0.20 – 0.40') when a bound has a sign, so the
    dash is not read as a minus; '–' when a bound is unknown."""
    first, last = format_number(low, digits), format_number(high, digits)
    if MISSING in (first, last):
        return MISSING
    signed = any(t.startswith((MINUS, "+")) for t in (first, last))
    return f"{first} {EN_DASH} {last}" if signed else f"{first}{EN_DASH}{last}"


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """'1 session', '0 sessions', '3 sessions'; ``plural_form`` for irregular nouns."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


def format_duration(seconds: float | None) -> str:
    """'1:02:03' or '4:05' for a duration in seconds; '–' when unknown."""
    if seconds is None:
        return MISSING
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_hours(hours: float | None) -> str:
    """A span of hours in words: '3 days' (whole days), '1 day', '72.5 hours',
    '12 hours', '1 hour', '30 minutes'; '–' when unknown. Never '72.00 hours'."""
    if hours is None or math.isnan(hours) or math.isinf(hours):
        return MISSING
    minutes = round(hours * 60)
    if minutes < 60:
        return plural(minutes, "minute")
    if minutes % (24 * 60) == 0:
        return plural(minutes // (24 * 60), "day")
    if minutes % 60 == 0:
        return plural(minutes // 60, "hour")
    return f"{minutes / 60:.2f}".rstrip("0").rstrip(".") + " hours"
