"""What the reliability report is made of (pure): estimates, reasons for no estimate, and
one record per kind of result.

Minimum-n rule: a coefficient over fewer than ``MIN_SESSIONS`` sessions, or one that is
undefined because the scores do not vary, is a :class:`NotEnoughData` with the reason — it is
shown as "not enough data — <reason>", never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rater.formatting import plural

MIN_SESSIONS = 5  # fewer sessions (or targets) than this: "not enough data"
# A pair's ICC(A,2) is "firm" from this many shared sessions on and with a 95 % CI at most
# WIDE_INTERVAL wide; other pair values are shown with a caution and summarised apart.
FIRM_PAIR_SESSIONS = 10
WIDE_INTERVAL = 0.5
# Koo & Li (2016): poor < .5, moderate .5-.75, good .75-.9, excellent > .9
BANDS: tuple[tuple[float, str], ...] = (
    (0.5, "poor"),
    (0.75, "moderate"),
    (0.9, "good"),
    (math.inf, "excellent"),
)


@dataclass(frozen=True)
class NotEnoughData:
    """A coefficient that cannot be given honestly, with the reason."""

    reason: str

    def __str__(self) -> str:
        return f"not enough data — {self.reason}"


@dataclass(frozen=True)
class Estimate:
    """A coefficient with an optional 95 % confidence interval."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None


Result = Estimate | NotEnoughData


def band(value: float | None) -> str:
    """Koo & Li (2016) band of an ICC: poor, moderate, good or excellent ('' when None)."""
    if value is None or math.isnan(value):
        return ""
    return next(name for upper, name in BANDS if value < upper or upper == math.inf)


def estimate(value: float, low: float | None = None, high: float | None = None) -> Result:
    """A coefficient, or "not enough data" when it is undefined (NaN: the scores do not vary)."""
    if value is None or math.isnan(value):
        return NotEnoughData("no variance in the scores")
    clean = [None if v is None or math.isnan(v) else float(v) for v in (low, high)]
    return Estimate(float(value), *clean)


def too_few(
    n: int, noun: str = "session", rest: str = "rated by both", nouns: str | None = None
) -> NotEnoughData | None:
    """The minimum-n rule: '4 sessions rated by both (minimum 5)', or None when n suffices."""
    if n < MIN_SESSIONS:
        counted = " ".join(part for part in (plural(n, noun, nouns), rest) if part)
        return NotEnoughData(f"{counted} (minimum {MIN_SESSIONS})")
    return None


@dataclass(frozen=True)
class PairResult:
    instrument: str
    measure: str
    kind: str
    rater_1: str
    rater_2: str
    n: int
    coefficients: dict[str, Result]  # ICC(A,1), ICC(A,2), kappa_quadratic, kappa_linear, ...


@dataclass(frozen=True)
class PairSummary:
    instrument: str
    measure: str
    kind: str
    n_pairs: int
    n_pairs_with_data: int
    statistics: dict[str, Result]  # mean, median, min, max of the pairs' ICC(A,2)
    n_pairs_firm: int = 0  # pairs whose ICC(A,2) is firm (see ``pair_caution``)
    firm_statistics: dict[str, Result] = field(default_factory=dict)  # mean, median of those


@dataclass(frozen=True)
class DesignResult:
    instrument: str
    measure: str
    kind: str
    n_sessions: int
    n_double: int
    n_raters: int
    coefficients: dict[str, Result]
    details: dict[str, float] = field(default_factory=dict)  # khat, q, variance components
    n_not_applicable: int = 0  # answers 'not applicable' of the item, left out of every value


@dataclass(frozen=True)
class CalibrationPanel:
    instrument: str
    measure: str
    n_targets: int
    raters: tuple[str, ...]
    coefficients: dict[str, Result]  # ICC(A,1), ICC(A,k)


@dataclass(frozen=True)
class RaterAgreement:
    instrument: str
    rater: str
    n_targets: int
    coefficients: dict[str, Result]  # ICC(A,1) vs panel mean, mean_difference, mean_abs_diff.
    needs_training: bool
    why: str


@dataclass(frozen=True)
class ConsistencyResult:
    instrument: str
    measure: str
    kind: str
    n_ratings: int
    coefficients: dict[str, Result]  # cronbach_alpha, omega
    item_total: dict[str, Result]


def find(rows: Iterable[Any], instrument: str, measure: str) -> Any:
    """The record of (instrument, measure) among ``rows``, or None."""
    return next((r for r in rows if (r.instrument, r.measure) == (instrument, measure)), None)


def pair_caution(pair: PairResult) -> str:
    """Why a pair's ICC(A,2) is not firm ('' when it is, or when it has no value at all):
    fewer than ``FIRM_PAIR_SESSIONS`` shared sessions, or a 95 % CI wider than
    ``WIDE_INTERVAL`` (or open)."""
    result = pair.coefficients.get("ICC(A,2)")
    if not isinstance(result, Estimate):
        return ""
    if pair.n < FIRM_PAIR_SESSIONS:
        return f"only {pair.n} shared sessions (a firm value needs {FIRM_PAIR_SESSIONS})"
    if result.ci_low is None or result.ci_high is None:
        return "its 95 % interval has no bound"
    width = result.ci_high - result.ci_low
    if width > WIDE_INTERVAL:
        return f"its 95 % interval is {width:.2f} wide (more than {WIDE_INTERVAL:.2f})"
    return ""
