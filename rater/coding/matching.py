"""Event-level agreement of two coders (pure: numpy only).

Two coders listen to the same session and mark behaviour codes at times. Their events are
aligned by the event-based algorithm of Bakeman, Quera and Gnisci (2009; "Observer agreement
for timed-event sequential data: a comparison of time-based and event-based algorithms",
Behavior Research Methods 41, 137-147), as implemented in GSEQ:

* Each coder's events are ordered by time. An alignment pairs events of coder A with events of
  coder B without crossing (if a1 is paired with b1 and a2 after a1 with b2, then b2 is after b1)
  and only when their times differ by at most the tolerance (default 2 s, per instrument).
* Among all such alignments the one of least cost is chosen (Needleman-Wunsch dynamic
  programming): a pair with the same code costs 0, a pair with different codes 1 (a
  disagreement on the code of one event), an event left unpaired 1. So two events close in time
  are paired even when their codes differ (one disagreement) rather than counted as two
  omissions (two disagreements). Ties between equally cheap alignments go to the one whose
  paired events lie closest in time (summed absolute differences).
* The alignment gives one *unit* per pair or unpaired event: (code of A or "-", code of B or
  "-"). Cohen's kappa over these units (a square table of the codes plus "-" for "no event",
  whose "-"/"-" cell is empty by construction) is the event-based kappa; per code, precision,
  recall and F1 treat A's events as the reference: TP = units coded c by both, FP = units coded
  c by B only, FN = units coded c by A only (F1 is symmetric in A and B).

Long sessions are split where the coders' events leave a gap longer than the tolerance, so the
quadratic alignment runs on short stretches only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_EVENT = "-"
DEFAULT_TOLERANCE = 2.0


@dataclass(frozen=True)
class Event:
    """One coded event: its code and its time in seconds."""

    code: str
    time: float


@dataclass(frozen=True)
class Unit:
    """One unit of the alignment: a pair, or an event of one coder alone (the other is None)."""

    a: Event | None
    b: Event | None

    @property
    def codes(self) -> tuple[str, str]:
        return (self.a.code if self.a else NO_EVENT, self.b.code if self.b else NO_EVENT)

    @property
    def agrees(self) -> bool:
        return self.a is not None and self.b is not None and self.a.code == self.b.code


@dataclass(frozen=True)
class CodeAgreement:
    code: str
    n_a: int  # events of coder A with this code
    n_b: int
    matched: int  # units where both coded it
    precision: float  # matched / n_b (NaN when B never coded it)
    recall: float  # matched / n_a
    f1: float  # 2 matched / (n_a + n_b)


@dataclass(frozen=True)
class Agreement:
    units: tuple[Unit, ...]
    kappa: float  # Cohen's kappa over the units (NaN when undefined)
    percent: float  # share of units on which both agree
    codes: tuple[CodeAgreement, ...]

    @property
    def unmatched(self) -> list[Unit]:
        return [u for u in self.units if not u.agrees]


def align(
    a: Sequence[Event], b: Sequence[Event], tolerance: float = DEFAULT_TOLERANCE
) -> list[Unit]:
    """The least-cost alignment of two coders' events (see the module docstring)."""
    if tolerance < 0:
        raise ValueError("the tolerance must not be negative")
    a_sorted = sorted(a, key=lambda e: (e.time, e.code))
    b_sorted = sorted(b, key=lambda e: (e.time, e.code))
    units: list[Unit] = []
    for part_a, part_b in _stretches(a_sorted, b_sorted, tolerance):
        units.extend(_align_stretch(part_a, part_b, tolerance))
    return units


def _stretches(
    a: list[Event], b: list[Event], tolerance: float
) -> list[tuple[list[Event], list[Event]]]:
    """Split both (sorted) lists where no event before a cut can pair with one after it."""
    merged = sorted(
        [(e.time, 0, i) for i, e in enumerate(a)] + [(e.time, 1, j) for j, e in enumerate(b)]
    )
    out: list[tuple[list[Event], list[Event]]] = []
    current: tuple[list[Event], list[Event]] = ([], [])
    last = None
    for time, who, index in merged:
        if last is not None and time - last > tolerance:
            out.append(current)
            current = ([], [])
        current[who].append((a if who == 0 else b)[index])
        last = time
    if current[0] or current[1]:
        out.append(current)
    return out


def _align_stretch(a: list[Event], b: list[Event], tolerance: float) -> list[Unit]:
    """Needleman-Wunsch over one stretch, with costs (0 same code, 1 other code, 1 gap) and
    the summed time difference of the pairs as the tie-breaker (weighted below one cost unit)."""
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return [Unit(e, None) for e in a] + [Unit(None, e) for e in b]
    ta = np.array([e.time for e in a])
    tb = np.array([e.time for e in b])
    distance = np.abs(ta[:, None] - tb[None, :])
    same = np.array([e.code for e in a])[:, None] == np.array([e.code for e in b])[None, :]
    weight = 1.0 / ((tolerance + 1.0) * (min(n, m) + 1) * 2)
    pair_cost = np.where(
        distance <= tolerance, np.where(same, 0.0, 1.0) + weight * distance, np.inf
    )
    cost = np.empty((n + 1, m + 1))
    cost[0, :] = np.arange(m + 1)
    cost[:, 0] = np.arange(n + 1)
    offsets = np.arange(1, m + 1)
    for i in range(1, n + 1):
        # best of: pair (diagonal) or drop a_i (from above); then gaps along the row (B alone)
        best = np.minimum(cost[i - 1, 1:] + 1.0, cost[i - 1, :-1] + pair_cost[i - 1])
        best = np.minimum(best, cost[i, 0] + offsets)  # the row's start, then B events alone
        cost[i, 1:] = np.minimum.accumulate(best - offsets) + offsets
    return _trace_back(a, b, cost, pair_cost)


def _trace_back(
    a: list[Event], b: list[Event], cost: np.ndarray, pair_cost: np.ndarray
) -> list[Unit]:
    i, j = len(a), len(b)
    units: list[Unit] = []
    while i > 0 or j > 0:
        here = cost[i, j]
        if i > 0 and j > 0 and _same(here, cost[i - 1, j - 1] + pair_cost[i - 1, j - 1]):
            units.append(Unit(a[i - 1], b[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and _same(here, cost[i - 1, j] + 1.0):
            units.append(Unit(a[i - 1], None))
            i -= 1
        else:
            units.append(Unit(None, b[j - 1]))
            j -= 1
    units.reverse()
    return units


def _same(x: float, y: float) -> bool:
    """Equal up to the round-off of the row-wise minimum (costs are sums of small numbers)."""
    return abs(x - y) <= 1e-9


def agreement(
    a: Sequence[Event], b: Sequence[Event], tolerance: float = DEFAULT_TOLERANCE
) -> Agreement:
    """Align the events and summarise: kappa and percent agreement over the units, and
    precision / recall / F1 per code (coder A as the reference)."""
    units = align(a, b, tolerance)
    pairs = [u.codes for u in units]
    codes = sorted({c for pair in pairs for c in pair} - {NO_EVENT})
    per_code = []
    for code in codes:
        n_a = sum(1 for x, _ in pairs if x == code)
        n_b = sum(1 for _, y in pairs if y == code)
        matched = sum(1 for x, y in pairs if x == y == code)
        per_code.append(
            CodeAgreement(
                code,
                n_a,
                n_b,
                matched,
                _ratio(matched, n_b),
                _ratio(matched, n_a),
                _ratio(2 * matched, n_a + n_b),
            )
        )
    agreeing = sum(1 for u in units if u.agrees)
    return Agreement(
        tuple(units), cohen_kappa(pairs), _ratio(agreeing, len(units)), tuple(per_code)
    )


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float:
    """Cohen's (unweighted) kappa of paired category labels; NaN when chance agreement is 1."""
    if not pairs:
        return float("nan")
    labels = sorted({c for pair in pairs for c in pair})
    index = {c: k for k, c in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    total = table.sum()
    observed = np.trace(table) / total
    expected = float(table.sum(axis=1) @ table.sum(axis=0)) / total**2
    if expected >= 1.0:
        return float("nan")
    return float((observed - expected) / (1.0 - expected))
