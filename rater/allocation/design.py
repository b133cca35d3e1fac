"""Stratified double-coding design: which rater rates which session (pure: numpy/pandas only).

Also the stratified draw of calibration sessions (``stratified_draw``, at the end).

``design(sessions, raters, double_fraction, seed, fixed)`` returns a :class:`Design`: every
eligible session gets a ``main`` rater, a share of them also a second, ``double`` rater, so
that the load, the rater pairs and each rater's mix of therapists, phases and patients are
balanced. ``check_guarantees`` measures a design against the guarantees below; the report of
a design and the tests both use it.

Notation: N eligible sessions, K raters, f = double_fraction, A = N + D assignments. A
*stratum* S is a therapist, a phase or a patient; ``A_S`` is the number of assignments
(main + double) whose session lies in S, ``T_r`` the total of rater r, and the **fair share**
of rater r in S is ``F(r, S) = T_r * A_S / A`` (with equal loads this is the even split
``A_S / K``; with unequal loads, e.g. after fixed assignments, it scales with the load).

Guarantees (without ``fixed``, all always hold; the tests check exactly these):

``coverage``
    every eligible session has exactly one ``main`` and at most one ``double`` assignment,
    by two distinct, known raters; excluded and unknown sessions have none.
``double_count``
    the number of double-coded sessions is ``D = floor(f * N + 0.5)`` (round half up).
``double_per_cell``
    in every therapist x phase cell with n_c sessions the double-coded count is
    ``floor(f * n_c)`` or ``ceil(f * n_c)``, i.e. strictly within 1 of ``f * n_c``.
    (Always possible: sum of floors <= floor(fN) <= D <= ceil(fN) <= sum of ceilings.)
``rater_load``
    the totals ``T_r`` differ by at most 1.
``pair_balance``
    the double-coded counts of all K(K-1)/2 unordered rater pairs differ by at most 1.
``rater_therapist``, ``rater_phase``
    for every rater r and therapist (phase) S: ``|c(r, S) - F(r, S)| <= 1``.
``rater_patient``
    the same for every patient with at least K eligible sessions (smaller patients are spread
    as well, but without a promise).

Why these can all hold together, and how: the double-coded cell counts come from a
largest-remainder rounding (the sum bound above). Pair counts are ``D // P`` for every pair
plus one for a set of ``D % P`` pairs chosen as a graph whose degrees differ by at most 1
(Havel-Hakimi realises such a near-regular degree sequence, always graphic), so every
rater's double count is within 1 of 2D/K; the single (main-only) sessions then fill every
rater up to floor(A/K) or ceil(A/K), which is possible because the raters with the larger
double count get the larger totals and N >= D. Totals and pair counts are therefore exact
by construction and never change afterwards. The strata counts are a rounding problem: the
fractional assignment "every session to every rater with weight m_s / K" meets all of them
exactly; a greedy deals sessions to the raters furthest below their fair share and a local
search then swaps the raters of two single sessions, or the pairs of two double sessions
(moves that keep totals and pair counts), until every stratum is within 1. The per-rater
therapist/patient family and the phase family are two laminar families, so a within-1
rounding exists for one rater; jointly with the session constraints it is not guaranteed by
total unimodularity, which is why the search repairs rather than proves. ``design`` always
computes the deviations of its result, so a design that missed a guarantee says so in
``report.deviations`` instead of passing silently (the property tests assert there are none
over hundreds of random studies, and the benchmark over 20,000 sessions x 50 raters).

``fixed`` assignments (``session_id, rater, purpose``) are kept verbatim; ``calibration``
rows are ignored (calibration sessions are outside the design). A ``double`` fixed row forces
its session to be double-coded; a fixed ``main`` may get a partner. Fixed rows on unknown or
excluded sessions, for unknown raters, duplicated, or with two rows of the same purpose on a
session raise ``ValueError``. With fixed rows the guarantees hold as far as the fixed part
allows, in this order (load before pairs: a rater's time is the scarce resource):

* ``coverage`` always;
* ``double_count`` and ``double_per_cell`` whenever some completion of the fixed rows meets
  both (they fail only when the fixed double rows alone exceed a cell's ceiling or D);
* ``rater_load`` whenever some completion that meets those two meets it as well: the new part
  is dealt greedily, then ``balance_loads`` follows augmenting paths, which is exact (see
  there). So completing any subset of an earlier design of the same sessions, raters and f
  always restores all three (the earlier design is such a completion). It fails when, e.g., one
  rater's fixed rows alone are more than ceil(A / K);
* ``pair_balance`` and the strata guarantees are not promised: load-neutral trades lower the
  spread of the pair counts (``balance_pairs``), the local search spreads the strata, and
  ``report.deviations`` lists what is left and by how much.

The tests check the first three exactly: against every completion of small random studies with
random fixed rows, and on completions of random subsets of earlier designs.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rater.allocation.errors import CalibrationError
from rater.states import Purpose, SessionStatus

# The purposes of a session's two slots, in the engine's column order (0: main, 1: double).
SLOT_PURPOSES = (Purpose.MAIN, Purpose.DOUBLE)
_TOL = 1e-9
_BIG = 1000.0
_KINDS = ("therapist", "phase", "patient")
_ATTEMPTS = 6  # seeded restarts if the local search ends in a local minimum


# ----------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class Deviation:
    """One guarantee not fully met: for which subject, the target, the actual value and by
    how much the allowed tolerance is exceeded (``excess`` > 0)."""

    guarantee: str
    subject: str
    target: float
    actual: float
    excess: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def technical(self) -> str:
        """The guarantee as the design checks it (for readers who want the numbers)."""
        return (
            f"{self.guarantee} [{self.subject}]: target {self.target:g}, actual {self.actual:g},"
            f" over by {self.excess:g}"
        )

    def plain(self) -> str:
        """The deviation in a coordinator's words ("rater2 has 2 sessions of patient P04
        where 3 would be even")."""
        actual, even = int(self.actual), round(float(self.target))
        if self.guarantee == "rater_load":
            return (
                f"Raters' workloads differ by up to {_sessions(actual)}; a difference of at most"
                " 1 would be even."
            )
        if self.guarantee.startswith("rater_"):  # rater_patient, rater_therapist, ...
            rater, _, stratum = self.subject.rpartition(" x ")
            return f"{rater} has {_sessions(actual)} of {stratum} where {even} would be even."
        if self.guarantee == "double_count":
            return (
                f"The study has {_sessions(actual, 'double-coded session')} where {even}"
                " would match the share to double-code."
            )
        if self.guarantee == "double_per_cell":
            therapist, _, phase = self.subject.partition(" x ")
            return (
                f"Therapist {therapist}, phase {phase} has"
                f" {_sessions(actual, 'double-coded session')} where about {even} would match"
                " the share to double-code."
            )
        if self.guarantee == "pair_balance":
            return (
                f"Some pairs of raters share {actual} more double-coded sessions than others;"
                " a difference of at most 1 would be even."
            )
        return self._plain_coverage(actual)

    def _plain_coverage(self, actual: int) -> str:
        if self.subject.startswith("unknown rater "):
            who = self.subject.removeprefix("unknown rater ")
            return f"{who} is not a rater in allocation but has {_sessions(actual)}."
        if self.subject.endswith(" not eligible"):
            code = self.subject.removeprefix("session ").removesuffix(" not eligible")
            return f"Session {code} is not eligible but has {_sessions(actual, 'assignment')}."
        code = self.subject.removeprefix("session ")
        if actual == 0:
            return f"Session {code} has no rater."
        return (
            f"Session {code} has {_sessions(actual, 'assignment')}; it needs exactly one main"
            " rater and at most one second rater."
        )


def _sessions(n: int, noun: str = "session") -> str:
    return f"{n} {noun if n == 1 else noun + 's'}"


@dataclass(frozen=True)
class BalanceReport:
    """Balance of a design.

    ``per_rater``: index rater; columns ``main, double, total``, one ``therapist <t>`` column
    per therapist and one ``phase <p>`` column per phase (assignment counts).
    ``pairs``: K x K symmetric frame of double-coded sessions shared by each pair of raters.
    ``strata``: one row per therapist x phase cell: ``therapist, phase, sessions,
    double_coded, target`` (target = f x sessions).
    ``deviations``: every guarantee not fully met (empty when all hold).
    """

    per_rater: pd.DataFrame
    pairs: pd.DataFrame
    strata: pd.DataFrame
    deviations: list[Deviation] = field(default_factory=list)

    def to_text(self) -> str:
        """Per-rater table and pair matrix as plain text for the CLI."""
        lines = ["Assignments per rater", self.per_rater.to_string(), ""]
        lines += ["Double-coded sessions per rater pair", self.pairs.to_string(), ""]
        if self.deviations:
            lines.append("Not quite even")
            for d in self.deviations:
                lines += [f"  {d.plain()}", f"    ({d.technical()})"]
        else:
            lines.append("All balance guarantees met.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (plain ints, floats and strings)."""
        per_rater = {
            str(r): {str(c): int(v) for c, v in row.items()} for r, row in self.per_rater.iterrows()
        }
        pairs = {
            str(r): {str(c): int(v) for c, v in row.items()} for r, row in self.pairs.iterrows()
        }
        strata = [
            {
                "therapist": str(row.therapist),
                "phase": str(row.phase),
                "sessions": int(row.sessions),
                "double_coded": int(row.double_coded),
                "target": float(row.target),
            }
            for row in self.strata.itertuples(index=False)
        ]
        return {
            "per_rater": per_rater,
            "pairs": pairs,
            "strata": strata,
            "deviations": [d.to_dict() for d in self.deviations],
        }


@dataclass(frozen=True)
class Design:
    """The allocation plan: ``assignments`` (``session_id, rater, purpose``; fixed rows
    included; sorted by session_id, main before double) and its balance ``report``."""

    assignments: pd.DataFrame
    report: BalanceReport


# ----------------------------------------------------------------------------- input


@dataclass
class _Study:
    session_codes: np.ndarray  # eligible sessions' codes, canonical order
    codes: dict[str, np.ndarray]  # kind -> int code per session
    names: dict[str, np.ndarray]  # kind -> label per code
    cell: np.ndarray  # therapist x phase cell code per session
    raters: list[str]

    @property
    def n(self) -> int:
        return len(self.session_codes)

    @property
    def k(self) -> int:
        return len(self.raters)


def _validate_sessions(sessions: pd.DataFrame) -> pd.DataFrame:
    required = {"session_id", "therapist", "patient", "phase", "status"}
    missing = required - set(sessions.columns)
    if missing:
        raise ValueError(f"sessions lack columns: {sorted(missing)}")
    if sessions["session_id"].duplicated().any():
        raise ValueError("session_id values must be unique")
    bad = set(sessions["status"]) - set(SessionStatus)
    if bad:
        raise ValueError(f"status must be 'eligible' or 'excluded', got {sorted(map(str, bad))}")
    return sessions


def _study(sessions: pd.DataFrame, raters: list[str]) -> _Study:
    _validate_sessions(sessions)
    if len(raters) < 2 or len(set(raters)) != len(raters):
        raise ValueError("need at least two distinct raters")
    eligible = sessions[sessions["status"] == SessionStatus.ELIGIBLE]
    eligible = eligible.sort_values(["therapist", "patient", "session_id"], kind="mergesort")
    codes: dict[str, np.ndarray] = {}
    names: dict[str, np.ndarray] = {}
    for kind in _KINDS:
        code, uniq = pd.factorize(eligible[kind], sort=True)
        codes[kind], names[kind] = code.astype(np.int64), np.asarray(uniq, dtype=object)
    cell = _cell_codes(codes, names)
    return _Study(eligible["session_id"].to_numpy(), codes, names, cell, list(raters))


def _cell_codes(codes: dict[str, np.ndarray], names: dict[str, np.ndarray]) -> np.ndarray:
    """Each session's therapist x phase cell as one integer (therapist-major, in label order:
    cell // phases is the therapist, cell % phases the phase)."""
    return codes["therapist"] * _phases(names) + codes["phase"]


def _phases(names: dict[str, np.ndarray]) -> int:
    """Phases per therapist in the cell code (at least one, so that no study divides by 0)."""
    return max(len(names["phase"]), 1)


def _parse_fixed(fixed: pd.DataFrame | None, study: _Study, sessions: pd.DataFrame) -> np.ndarray:
    """Fixed rows as an (n, 2) array of rater indices: column 0 main, column 1 double."""
    out = np.full((study.n, 2), -1, dtype=np.int64)
    if fixed is None or len(fixed) == 0:
        return out
    design_rows = fixed[fixed["purpose"] != Purpose.CALIBRATION]
    if not set(design_rows["purpose"]) <= set(SLOT_PURPOSES):
        raise ValueError("fixed purposes must be main, double or calibration")
    pos = {session_code: i for i, session_code in enumerate(study.session_codes)}
    rix = {r: i for i, r in enumerate(study.raters)}
    known = set(sessions["session_id"])
    for session_code, rater, purpose in design_rows[["session_id", "rater", "purpose"]].itertuples(
        index=False
    ):
        if session_code not in pos:
            what = "excluded" if session_code in known else "unknown"
            raise ValueError(f"fixed assignment for {what} session {session_code!r}")
        if rater not in rix:
            raise ValueError(f"fixed assignment for unknown rater {rater!r}")
        col = SLOT_PURPOSES.index(purpose)
        i = pos[session_code]
        if out[i, col] >= 0:
            raise ValueError(f"session {session_code!r} has two fixed {purpose} assignments")
        if rix[rater] in out[i]:
            raise ValueError(f"rater {rater!r} fixed twice on session {session_code!r}")
        out[i, col] = rix[rater]
    return out


# ----------------------------------------------------------------------------- small helpers


def target_doubles(n: int, double_fraction: float) -> int:
    """D = round half up of f x N."""
    return math.floor(double_fraction * n + 0.5)


def _cell_bounds(n_c: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
    q = f * n_c
    return np.floor(q + _TOL).astype(np.int64), np.ceil(q - _TOL).astype(np.int64)


def _water_fill(base: np.ndarray, total: int, prio: np.ndarray) -> np.ndarray:
    """Targets >= base summing to ``total`` whose raised entries differ by at most 1
    (extra units to the lowest base first; ties by ``prio``, smaller first)."""
    base = base.astype(np.int64)
    if total <= base.sum():
        return base.copy()
    lo, hi = int(base.min()), int(base.max()) + total
    while lo < hi:  # largest level L with sum(max(base, L)) <= total
        mid = (lo + hi + 1) // 2
        if np.maximum(base, mid).sum() <= total:
            lo = mid
        else:
            hi = mid - 1
    targets = np.maximum(base, lo)
    rest = total - int(targets.sum())
    at_level = np.flatnonzero(targets == lo)
    at_level = at_level[np.argsort(prio[at_level], kind="stable")]
    targets[at_level[:rest]] += 1
    return targets


def _near_regular_pairs(k: int, e: int, prio: np.ndarray) -> np.ndarray:
    """Adjacency (k x k bool) of a simple graph with e edges and degrees within 1
    (Havel-Hakimi on the near-regular degree sequence; such sequences are graphic)."""
    q, rem = divmod(2 * e, k)
    deg = np.full(k, q, dtype=np.int64)
    deg[np.argsort(prio, kind="stable")[:rem]] += 1
    adj = np.zeros((k, k), dtype=bool)
    while deg.max() > 0:
        order = np.lexsort((prio, -deg))
        v = order[0]
        d, deg[v] = int(deg[v]), 0
        others = [u for u in order[1:] if deg[u] > 0][:d]
        if len(others) < d:  # pragma: no cover - impossible for near-regular sequences
            raise RuntimeError("degree sequence not graphic")
        for u in others:
            adj[v, u] = adj[u, v] = True
            deg[u] -= 1
    return adj


def _pen(x: np.ndarray | float, w: np.ndarray | float) -> np.ndarray:
    """Penalty of a stratum count c - F = x: huge beyond 1 (if guaranteed), then x^2."""
    ax = np.abs(x)
    return _BIG * w * np.maximum(ax - 1.0 - 1e-7, 0.0) + ax * ax


# ----------------------------------------------------------------------------- the engine


class _Engine:
    """Mutable state of one allocation run; numpy counters, no DataFrame work per step."""

    def __init__(self, study: _Study, f: float, seed: Any, fixed: np.ndarray) -> None:
        self.study, self.f, self.fixed = study, f, fixed
        self.rng = np.random.default_rng(seed)
        self.prio = self.rng.permutation(study.k).astype(np.float64)  # seeded tie-breaks
        self.has_fixed = bool((fixed >= 0).any())
        self.score = math.inf  # strata violation left after repair
        self.r = fixed.copy()  # column 0: main-or-first rater, column 1: second rater

    # -- step 1: which sessions are double-coded
    def choose_doubles(self) -> None:
        study, f = self.study, self.f
        forced = self.fixed[:, 1] >= 0
        ncell = int(study.cell.max()) + 1 if study.n else 0
        n_c = np.bincount(study.cell, minlength=ncell)
        lo, hi = _cell_bounds(n_c, f)
        d_c = np.maximum(lo, np.bincount(study.cell[forced], minlength=ncell))
        extra = target_doubles(study.n, f) - int(d_c.sum())
        remainder = f * n_c - lo + self.rng.random(ncell) * 1e-6
        for cap in (hi, n_c):  # first within the cell bounds; beyond them only if forced to
            if extra <= 0:
                break
            room = np.flatnonzero(d_c < cap)
            take = room[np.argsort(-remainder[room], kind="stable")][:extra]
            d_c[take] += 1
            extra -= len(take)
        self.cell_min = np.maximum(lo, np.bincount(study.cell[forced], minlength=ncell))
        self.cell_max = np.maximum(hi, self.cell_min)
        self.d_c = d_c
        dbl = forced.copy()
        for c in np.flatnonzero(d_c):
            members = np.flatnonzero(study.cell == c)  # ordered by patient, session id
            free = members[~forced[members]]
            k = int(d_c[c]) - int(forced[members].sum())
            if k > 0:  # systematic sample with a seeded start
                step = len(free) / k
                dbl[free[np.floor((np.arange(k) + self.rng.random()) * step).astype(int)]] = True
        self.dbl = dbl
        self.n_assign = study.n + int(dbl.sum())

    # -- step 2: targets and counters
    def setup_counters(self) -> None:
        study, k = self.study, self.study.k
        self.pair_first, self.pair_second = np.triu_indices(k, 1)
        self.total = np.bincount(self.r[self.r >= 0], minlength=k)
        self.pair_count = np.zeros((k, k), dtype=np.int64)
        both = (self.r >= 0).all(axis=1)
        np.add.at(self.pair_count, (self.r[both].min(1), self.r[both].max(1)), 1)
        self.targets = self._total_targets()
        self.c: dict[str, np.ndarray] = {}
        self.w: dict[str, np.ndarray] = {}
        self.set_fair_shares(self.targets)
        for kind in _KINDS:
            code = study.codes[kind]
            m = len(study.names[kind])
            c = np.zeros((k, m))
            held = self.r >= 0
            np.add.at(c, (self.r[held], np.broadcast_to(code[:, None], self.r.shape)[held]), 1)
            self.c[kind] = c
            w = np.ones(m)
            if kind == "patient":
                w = (np.bincount(code, minlength=m) >= k).astype(np.float64)
            self.w[kind] = w

    def set_fair_shares(self, loads: np.ndarray) -> None:
        """F(r, S) = T_r * A_S / A for the current double-coded set and the given loads."""
        mult = 1 + self.dbl.astype(np.int64)
        share = loads / max(self.n_assign, 1)
        self.fair: dict[str, np.ndarray] = {}
        for kind in _KINDS:
            m = len(self.study.names[kind])
            a_s = np.bincount(self.study.codes[kind], weights=mult, minlength=m)
            self.fair[kind] = np.outer(share, a_s)

    def _total_targets(self) -> np.ndarray:
        k, a = self.study.k, self.n_assign
        if self.has_fixed:
            return _water_fill(self.total, a, self.prio)
        d = int(self.dbl.sum())
        p = k * (k - 1) // 2
        base, extra = divmod(d, p)
        adj = _near_regular_pairs(k, extra, self.prio)
        self.pair_quota = np.triu(np.where(adj, base + 1, base), 1)
        dcount = self.pair_quota.sum(0) + self.pair_quota.sum(1)
        targets = np.full(k, a // k, dtype=np.int64)
        targets[np.lexsort((self.prio, -dcount))[: a - (a // k) * k]] += 1
        self.single_cap = targets - dcount
        return targets

    # -- step 3: greedy dealing
    def need(self, s: int) -> np.ndarray:
        """How far each rater is below its fair share in the strata of session s."""
        out = self.rng.random(self.study.k) * 1e-3
        for kind in _KINDS:
            j = self.study.codes[kind][s]
            out += self.fair[kind][:, j] - self.c[kind][:, j]
        return out

    def add(self, s: int, rater: int, sign: int = 1) -> None:
        for kind in _KINDS:
            self.c[kind][rater, self.study.codes[kind][s]] += sign
        self.total[rater] += sign

    def deal(self) -> None:
        r, dbl = self.r, self.dbl
        held = (r >= 0).sum(1)
        partial = np.flatnonzero(dbl & (held == 1))
        free_dbl = np.flatnonzero(dbl & (held == 0))
        singles = np.flatnonzero(~dbl & (held == 0))
        for s in self.rng.permutation(partial):
            self._deal_partner(s)
        for s in self.rng.permutation(free_dbl):
            self._deal_pair(s)
        if self.has_fixed:
            remaining = len(singles)
            self.single_cap = _water_fill(self.total, int(self.total.sum()) + remaining, self.prio)
            self.single_cap = self.single_cap - self.total
        for s in self.rng.permutation(singles):
            need = self.need(s)
            need[self.single_cap <= 0] -= 1e12
            x = int(np.argmax(need))
            self.single_cap[x] -= 1
            r[s, 0] = x
            self.add(s, x)
        self.movable_single = singles
        self.movable_double = free_dbl

    def _deal_partner(self, s: int) -> None:
        x = int(self.r[s, 0] if self.r[s, 0] >= 0 else self.r[s, 1])
        others = np.arange(self.study.k)
        pc = self.pair_count[np.minimum(x, others), np.maximum(x, others)]
        cap = self.targets - self.total
        score = -1e12 * (cap <= 0) - 1e9 * pc + 1e4 * cap + self.need(s)
        score[x] = -np.inf
        y = int(np.argmax(score))
        self.r[s, 0 if self.r[s, 0] < 0 else 1] = y
        self.pair_count[min(x, y), max(x, y)] += 1
        self.add(s, y)

    def _deal_pair(self, s: int) -> None:
        need = self.need(s)
        pair_first, pair_second = self.pair_first, self.pair_second
        score = need[pair_first] + need[pair_second]
        if self.has_fixed:
            pc = self.pair_count[pair_first, pair_second]
            cap = self.targets - self.total
            full = (cap[pair_first] <= 0).astype(float) + (
                cap[pair_second] <= 0
            )  # load before pair balance
            score = (
                score
                - 1e12 * full
                - 1e9 * (pc - pc.min())
                + 1e4 * (cap[pair_first] + cap[pair_second])
            )
        else:
            score = np.where(self.pair_quota[pair_first, pair_second] > 0, score, -np.inf)
        j = int(np.argmax(score))
        u, v = int(pair_first[j]), int(pair_second[j])
        if not self.has_fixed:
            self.pair_quota[u, v] -= 1
        self.r[s] = (u, v)
        self.pair_count[u, v] += 1
        self.add(s, u)
        self.add(s, v)

    # -- step 4: loads (only needed with fixed rows; without them the deal is exact)
    def balance_loads(self) -> None:
        """Move new assignments along augmenting paths until no rater has 2 or more above one
        it can pass work to; then every load is as even as any completion of ``fixed`` allows.

        The completions form a flow network: a new (not fixed) slot of session s may go to any
        rater not on s, and a session that is not fixed double may swap its double-coding with
        a single session of its cell, or of another cell while both stay within their bounds
        (so ``double_count`` and ``double_per_cell`` are kept). The load vectors of its
        feasible flows are the integer points of a base polyhedron (an M-convex set): there, a
        vector that no exchange improves (one unit from a rater with load x along a residual
        path to a rater with load <= x - 2) minimises the sum of squares, and that vector also
        has the smallest maximum and the largest minimum load (the lexicographically optimal
        base; Fujishige, *Submodular Functions and Optimization*). Hence: loads within 1
        whenever any completion has them. ``test_design`` checks it by enumeration.
        """
        while int(self.total.max() - self.total.min()) > 1:
            starts = np.lexsort((self.prio, -self.total))  # the fullest raters first
            path = next(filter(None, map(self._improving_path, starts)), None)
            if path is None:
                return
            self._shift(path)

    def _improving_path(self, u: int) -> list[tuple] | None:
        """Breadth-first search of the residual network from rater u to a rater whose load is
        at most load(u) - 2; the path as steps (see ``_shift``) from u's end, or None."""
        study, r, k = self.study, self.r, self.study.k
        new = (r >= 0) & (self.fixed < 0)
        toggles = self.fixed[:, 1] < 0  # double-coding may change (not fixed double)
        seen_r, seen_s = np.zeros(k, bool), np.zeros(study.n, bool)
        seen_c = np.zeros(len(self.d_c), bool)
        via_s = np.full(k, -1)  # rater <- session it takes a slot on
        from_rater = np.full(study.n, -1)  # session <- rater that gives up its slot
        via_c = np.full(study.n, -1)  # session <- cell that makes it double-coded
        cell_from = np.full(len(self.d_c), -1)  # cell <- dropped session, or -2: the hub
        hub_from = -1  # the cell that gave up a double-coded session to another cell
        seen_r[u], frontier = True, np.array([u])
        while len(frontier):
            hold = np.isin(r, frontier) & new
            ss = np.flatnonzero(hold.any(1) & ~seen_s)
            seen_s[ss] = True
            from_rater[ss] = r[ss, np.argmax(hold[ss], axis=1)]
            drop = ss[self.dbl[ss] & toggles[ss]]
            cells, first = np.unique(study.cell[drop], return_index=True)
            fresh = ~seen_c[cells]
            cells, first = cells[fresh], drop[first[fresh]]
            seen_c[cells], cell_from[cells] = True, first
            if hub_from < 0:
                give = cells[self.d_c[cells] > self.cell_min[cells]]
                if len(give):
                    hub_from = int(give[0])
                    take = np.flatnonzero(~seen_c & (self.d_c < self.cell_max))
                    seen_c[take], cell_from[take] = True, -2
                    cells = np.r_[cells, take]
            grow = np.flatnonzero(np.isin(study.cell, cells) & ~self.dbl & toggles & ~seen_s)
            seen_s[grow], via_c[grow] = True, study.cell[grow]
            cand = np.r_[ss, grow]
            if not len(cand):
                return None
            ok = np.ones((len(cand), k), bool)
            rows = np.arange(len(cand))
            for col in (0, 1):
                on = r[cand, col] >= 0
                ok[rows[on], r[cand[on], col]] = False
            ok[:, seen_r] = False
            reached = np.flatnonzero(ok.any(0))
            via_s[reached] = cand[np.argmax(ok[:, reached], axis=0)]
            seen_r[reached] = True
            low = reached[self.total[reached] <= self.total[u] - 2]
            if len(low):
                w = int(low[np.lexsort((self.prio[low], self.total[low]))[0]])
                return self._path_to(w, via_s, from_rater, via_c, cell_from, hub_from)
            frontier = reached
        return None

    @staticmethod
    def _path_to(w: int, via_s, from_rater, via_c, cell_from, hub_from: int) -> list[tuple]:
        """The search's path into rater w as steps, each on its own session: ("move", s, a, b)
        passes a's new slot on s to b; ("add", s, b) double-codes s with b; ("drop", s, a)
        takes a's new slot off a double-coded s, which becomes single."""
        steps: list[tuple] = []
        v = w
        while via_s[v] >= 0:
            s = int(via_s[v])
            if via_c[s] < 0:
                steps.append(("move", s, int(from_rater[s]), v))
                v = int(from_rater[s])
                continue
            steps.append(("add", s, v))
            c = int(via_c[s])
            if cell_from[c] == -2:  # from another cell, through the hub
                c = hub_from
            dropped = int(cell_from[c])
            steps.append(("drop", dropped, int(from_rater[dropped])))
            v = int(from_rater[dropped])
        return steps

    def _shift(self, steps: list) -> None:
        r, cell = self.r, self.study.cell
        for step in steps:
            if step[0] == "move":
                _, s, a, b = step
                r[s, int(np.flatnonzero(r[s] == a)[0])] = b
                self.add(s, a, -1)
                self.add(s, b)
            elif step[0] == "add":
                _, s, b = step
                r[s, 1], self.dbl[s] = b, True
                self.d_c[cell[s]] += 1
                self.add(s, b)
            elif step[0] == "drop":
                _, s, a = step
                keep = r[s][r[s] != a]
                r[s] = (keep[0], -1)
                self.dbl[s] = False
                self.d_c[cell[s]] -= 1
                self.add(s, a, -1)

    def refresh(self) -> None:
        """After ``balance_loads`` and ``balance_pairs``: the double-coded set and the loads
        may have changed, and with them what the local search moves and the fair shares."""
        free = (self.fixed < 0).all(1)
        self.movable_single = np.flatnonzero(~self.dbl & free)
        self.movable_double = np.flatnonzero(self.dbl & free)
        self.set_fair_shares(self.total)

    def balance_pairs(self, max_rounds: int = 2000) -> None:
        """Trade new slots between sessions (so no load changes) while that lowers the sum of
        squared pair counts, starting from the most used pairs; only needed with fixed rows."""
        k, r = self.study.k, self.r
        both = self.dbl & (r >= 0).all(1)
        pairs = np.zeros((k, k), dtype=np.int64)
        np.add.at(pairs, (r[both, 0], r[both, 1]), 1)
        pairs += pairs.T
        upper = np.triu_indices(k, 1)
        for _ in range(max_rounds):
            counts = pairs[upper]
            if not len(counts) or counts.max() - counts.min() <= 1:
                return
            if not self._trade_pair(pairs, counts.max()):
                return

    def _trade_pair(self, pairs: np.ndarray, top: int) -> bool:
        """One load-neutral trade that lowers sum(P^2), on a session s1 of a most used pair
        {x1, b} where b's slot is new: b swaps places with the holder d of another new slot
        (P[x1, b] and P[x2, d] down, P[x1, d] and P[x2, b] up, x2 the other rater of d's
        session), or s1 becomes single and b double-codes a single session of x2 instead (within
        the cell bounds, as in ``balance_loads``)."""
        r, dbl, cell = self.r, self.dbl, self.study.cell
        slot_s, slot_c = np.nonzero((r >= 0) & (self.fixed < 0))
        holder = r[slot_s, slot_c]
        other = np.where(dbl[slot_s], r[slot_s, 1 - slot_c], -1)
        singles = np.flatnonzero(~dbl & (self.fixed[:, 1] < 0))
        for i in np.flatnonzero(dbl[slot_s] & (pairs[holder, np.maximum(other, 0)] == top)):
            s1, b, x1 = slot_s[i], holder[i], other[i]
            d, x2 = holder, np.maximum(other, 0)
            swap = 2 * (pairs[x1, d] - pairs[x1, b]) + 2
            swap += np.where(other >= 0, 2 * (pairs[x2, b] - pairs[x2, d]) + 2, 0)
            swap[(d == b) | (d == x1) | (other == x1) | (r[slot_s] == b).any(1)] = 1
            x2 = r[singles, 0]
            toggle = 2 * (pairs[x2, b] - pairs[x1, b]) + 2
            cells_ok = (cell[singles] == cell[s1]) | (
                (self.d_c[cell[s1]] > self.cell_min[cell[s1]])
                & (self.d_c[cell[singles]] < self.cell_max[cell[singles]])
            )
            toggle[(x2 == b) | (x2 == x1) | ~cells_ok | (self.fixed[s1, 1] >= 0)] = 1
            j, toggle_at = int(np.argmin(swap)), int(np.argmin(toggle)) if len(singles) else -1
            if swap[j] < 0 and (toggle_at < 0 or swap[j] <= toggle[toggle_at]):
                self._swap_slots((s1, slot_c[i]), (slot_s[j], slot_c[j]), pairs)
                return True
            if toggle_at >= 0 and toggle[toggle_at] < 0:
                self._shift([("add", singles[toggle_at], b), ("drop", s1, b)])
                for x, change in ((x1, -1), (x2[toggle_at], 1)):
                    pairs[x, b] += change
                    pairs[b, x] += change
                return True
        return False

    def _swap_slots(self, one: tuple[int, int], two: tuple[int, int], pairs: np.ndarray) -> None:
        """Exchange the raters of two new slots (session, column); loads stay."""
        (s1, c1), (s2, c2) = one, two
        b, d = self.r[s1, c1], self.r[s2, c2]
        for s, c, gone, came in ((s1, c1, b, d), (s2, c2, d, b)):
            self.r[s, c] = came
            self.add(s, gone, -1)
            self.add(s, came)
            x = self.r[s, 1 - c]
            if self.dbl[s] and x >= 0:
                pairs[x, gone] -= 1
                pairs[gone, x] -= 1
                pairs[x, came] += 1
                pairs[came, x] += 1

    # -- step 5: local search
    def gain(self, rater: Any, s_from: Any, s_to: Any) -> np.ndarray:
        """Change of penalty if ``rater`` gives up session s_from and takes s_to
        (broadcasts over array arguments)."""
        out: np.ndarray = np.zeros(())
        for kind in _KINDS:
            code, c, fair, w = self.study.codes[kind], self.c[kind], self.fair[kind], self.w[kind]
            a, b = code[s_from], code[s_to]
            xa, xb = c[rater, a] - fair[rater, a], c[rater, b] - fair[rater, b]
            d = _pen(xa - 1, w[a]) - _pen(xa, w[a]) + _pen(xb + 1, w[b]) - _pen(xb, w[b])
            out = out + np.where(a != b, d, 0.0)
        return out

    def violations(self) -> list[tuple[str, int, int, float]]:
        out = []
        for kind in _KINDS:
            x = self.c[kind] - self.fair[kind]
            bad = (np.abs(x) > 1 + 1e-7) & (self.w[kind] > 0)[None, :]
            out += [
                (kind, int(i), int(j), float(x[i, j]))
                for i, j in zip(*np.nonzero(bad), strict=True)
            ]
        return out

    def repair(self, max_rounds: int = 5000, tries: int = 40) -> None:
        singles, doubles = self.movable_single, self.movable_double
        for _ in range(max_rounds):
            viol = self.violations()
            if not viol:
                return
            order = self.rng.permutation(len(viol))
            if not any(self._fix(viol[i], singles, doubles, tries) for i in order):
                return

    def _fix(self, v: tuple[str, int, int, float], singles, doubles, tries: int) -> bool:
        kind, rater, j, x = v
        code = self.study.codes[kind]
        for pool, pair_move in ((singles, False), (doubles, True)):
            if len(pool) == 0:
                continue
            mine = pool[(self.r[pool] == rater).any(1)]
            mine = mine[(code[mine] == j) == (x > 0)]
            for s in self.rng.permutation(mine)[:tries]:
                if self._best_swap(s, pool, pair_move):
                    return True
        return False

    def _best_swap(self, s: int, pool: np.ndarray, pair_move: bool) -> bool:
        r = self.r
        if not pair_move:
            a, b = r[s, 0], r[pool, 0]
            delta = self.gain(a, s, pool) + self.gain(b, pool, s)
            delta = np.where(b == a, np.inf, delta)
        else:
            delta = np.zeros(len(pool))
            mine, theirs = r[s], r[pool]
            for q in mine:
                stay = (theirs == q).any(1)
                delta += np.where(stay, 0.0, self.gain(q, s, pool))
            for col in (0, 1):
                q = theirs[:, col]
                stay = (q == mine[0]) | (q == mine[1])
                delta += np.where(stay, 0.0, self.gain(q, pool, s))
        i = int(np.argmin(delta))
        if delta[i] >= -1e-9:
            return False
        partner = int(pool[i])
        old_s, old_t = r[s].copy(), r[partner].copy()
        for q in old_s[old_s >= 0]:
            self.add(s, q, -1)
        for q in old_t[old_t >= 0]:
            self.add(partner, q, -1)
        r[s], r[partner] = old_t, old_s
        for q in old_t[old_t >= 0]:
            self.add(s, q)
        for q in old_s[old_s >= 0]:
            self.add(partner, q)
        return True

    # -- step 6: who is main in a freely oriented pair
    def orient(self) -> np.ndarray:
        """Return (n, 2) array main, double (-1 for none), balancing main counts."""
        k, r = self.study.k, self.r
        main = np.full(self.study.n, -1, dtype=np.int64)
        second = np.full(self.study.n, -1, dtype=np.int64)
        fixed_slots = self.fixed
        for s in range(self.study.n):
            if not self.dbl[s]:
                main[s] = r[s, 0]
            elif fixed_slots[s, 0] >= 0:
                main[s], second[s] = (
                    fixed_slots[s, 0],
                    r[s, 1] if r[s, 0] == fixed_slots[s, 0] else r[s, 0],
                )
            elif fixed_slots[s, 1] >= 0:
                second[s], main[s] = (
                    fixed_slots[s, 1],
                    r[s, 1] if r[s, 0] == fixed_slots[s, 1] else r[s, 0],
                )
        free = self.movable_double
        mains = np.bincount(main[main >= 0], minlength=k)
        for s in (int(x) for x in free):
            u, v = (int(x) for x in r[s])
            if (mains[u], self.prio[u]) > (mains[v], self.prio[v]):
                u, v = v, u
            main[s], second[s] = u, v
            mains[u] += 1
        _balance_orientation(main, second, free, mains, k)
        return np.stack([main, second], axis=1)


def _balance_orientation(
    main: np.ndarray, second: np.ndarray, free: np.ndarray, mains: np.ndarray, k: int
) -> None:
    """Flip freely oriented pairs along augmenting paths until no rater has 2+ more main
    assignments than another one reachable by flips."""
    by_edge: dict[tuple[int, int], list[int]] = {}
    for s in free:
        by_edge.setdefault((int(main[s]), int(second[s])), []).append(int(s))
    for _ in range(len(free) + 1):
        src = int(np.argmax(mains))
        prev = {src: -1}
        queue, hit = deque([src]), -1
        while queue and hit < 0:
            u = queue.popleft()
            for v in range(k):
                if v not in prev and by_edge.get((u, v)):
                    prev[v] = u
                    if mains[v] <= mains[src] - 2:
                        hit = v
                        break
                    queue.append(v)
        if hit < 0:
            return
        v = hit
        while prev[v] >= 0:
            u = prev[v]
            s = by_edge[(u, v)].pop()
            main[s], second[s] = v, u
            by_edge.setdefault((v, u), []).append(s)
            v = u
        mains[src] -= 1
        mains[hit] += 1


# ----------------------------------------------------------------------------- public API


def design(
    sessions: pd.DataFrame,
    raters: list[str],
    double_fraction: float = 0.4,
    seed: int = 0,
    fixed: pd.DataFrame | None = None,
) -> Design:
    """Build a balanced stratified double-coding design (see the module docstring)."""
    if not 0.0 <= double_fraction <= 1.0:
        raise ValueError("double_fraction must lie in [0, 1]")
    study = _study(sessions, raters)
    fixed_slots = _parse_fixed(fixed, study, sessions)
    best: _Engine | None = None
    for attempt in range(_ATTEMPTS):
        engine = _Engine(
            study, float(double_fraction), seed if attempt == 0 else [seed, attempt], fixed_slots
        )
        engine.choose_doubles()
        engine.setup_counters()
        engine.deal()
        if engine.has_fixed:
            engine.balance_loads()
            engine.balance_pairs()
            engine.refresh()
        engine.repair()
        engine.score = sum(abs(v[3]) - 1 for v in engine.violations())
        if best is None or engine.score < best.score:
            best = engine
        if not best.score:
            break
    assert best is not None  # at least one restart ran
    pairs = best.orient()
    rows = [
        (study.session_codes[s], study.raters[pairs[s, col]], SLOT_PURPOSES[col])
        for s in range(study.n)
        for col in (0, 1)
        if pairs[s, col] >= 0
    ]
    assignments = _sorted(pd.DataFrame(rows, columns=["session_id", "rater", "purpose"]))
    report = balance_report(sessions, raters, assignments, double_fraction)
    return Design(assignments=assignments, report=report)


def _sorted(assignments: pd.DataFrame) -> pd.DataFrame:
    rank = assignments["purpose"].map({Purpose.MAIN: 0, Purpose.DOUBLE: 1, Purpose.CALIBRATION: 2})
    out = assignments.assign(_rank=rank).sort_values(
        ["session_id", "_rank", "rater"], kind="mergesort"
    )
    return out.drop(columns="_rank").reset_index(drop=True)


@dataclass
class _Tally:
    """Assignments of the design purposes, as integer codes against the eligible sessions."""

    eligible: pd.DataFrame
    raters: list[str]
    s: np.ndarray  # eligible-session position per row, -1 if not eligible
    r: np.ndarray  # rater position per row, -1 if unknown
    double: np.ndarray  # row purpose is double
    codes: dict[str, np.ndarray]
    names: dict[str, np.ndarray]

    @classmethod
    def of(cls, sessions: pd.DataFrame, raters: list[str], assignments: pd.DataFrame) -> _Tally:
        _validate_sessions(sessions)
        a = assignments[assignments["purpose"].isin(SLOT_PURPOSES)]
        eligible = sessions[sessions["status"] == SessionStatus.ELIGIBLE].reset_index(drop=True)
        codes, names = {}, {}
        for kind in _KINDS:
            code, uniq = pd.factorize(eligible[kind], sort=True)
            codes[kind], names[kind] = code, np.asarray(uniq, dtype=object)
        return cls(
            eligible,
            list(raters),
            pd.Index(eligible["session_id"]).get_indexer(a["session_id"]),
            pd.Index(raters).get_indexer(a["rater"]),
            (a["purpose"] == Purpose.DOUBLE).to_numpy(),
            codes,
            names,
        )

    @property
    def ok(self) -> np.ndarray:
        return (self.s >= 0) & (self.r >= 0)

    def totals(self) -> np.ndarray:
        return np.bincount(self.r[self.ok], minlength=len(self.raters))

    def doubled(self) -> np.ndarray:
        """Per eligible session: has a double row."""
        out = np.zeros(len(self.eligible), dtype=bool)
        out[self.s[(self.s >= 0) & self.double]] = True
        return out

    def by(self, kind: str, purpose_double: bool | None = None) -> np.ndarray:
        """K x (labels of kind) assignment counts."""
        keep = self.ok if purpose_double is None else self.ok & (self.double == purpose_double)
        out = np.zeros((len(self.raters), len(self.names[kind])), dtype=np.int64)
        np.add.at(out, (self.r[keep], self.codes[kind][self.s[keep]]), 1)
        return out

    def pairs(self) -> np.ndarray:
        """K x K counts of sessions rated by exactly two distinct known raters."""
        k = len(self.raters)
        s, r = self.s[self.ok], self.r[self.ok]
        order = np.lexsort((r, s))
        s, r = s[order], r[order]
        n_rows = np.bincount(s, minlength=len(self.eligible))
        first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.array([], int)
        two = first[n_rows[s[first]] == 2] if len(s) else first
        mat = np.zeros((k, k), dtype=np.int64)
        u, v = r[two], r[two + 1] if len(two) else r[two]
        keep = u != v
        np.add.at(mat, (u[keep], v[keep]), 1)
        return mat + mat.T

    def cells(self, dbl: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The therapist x phase cells that have eligible sessions, in label order: their
        labels (``therapist``, ``phase``), sessions and double-coded sessions (of ``dbl``)."""
        n_phases = _phases(self.names)
        cell = _cell_codes(self.codes, self.names)
        size = np.bincount(cell, minlength=len(self.names["therapist"]) * n_phases)
        doubled = np.bincount(cell, weights=dbl, minlength=len(size)).astype(np.int64)
        present = np.flatnonzero(size)
        labels = pd.DataFrame(
            {
                "therapist": self.names["therapist"][present // n_phases],
                "phase": self.names["phase"][present % n_phases],
            }
        )
        return labels, size[present], doubled[present]


def balance_report(
    sessions: pd.DataFrame, raters: list[str], assignments: pd.DataFrame, double_fraction: float
) -> BalanceReport:
    """Counts tables and deviations of any set of assignments."""
    tally = _Tally.of(sessions, raters, assignments)
    cols = {
        "main": tally.by("therapist", False).sum(1),
        "double": tally.by("therapist", True).sum(1),
    }
    cols["total"] = cols["main"] + cols["double"]
    for kind in ("therapist", "phase"):
        for j, label in enumerate(tally.names[kind]):
            cols[f"{kind} {label}"] = tally.by(kind)[:, j]
    per_rater = pd.DataFrame(cols, index=pd.Index(raters, name="rater"))
    pairs = pd.DataFrame(tally.pairs(), index=pd.Index(raters, name="rater"), columns=raters)
    strata, n_sessions, double_coded = tally.cells(tally.doubled())
    strata["sessions"], strata["double_coded"] = n_sessions, double_coded
    strata["target"] = strata["sessions"] * double_fraction
    return BalanceReport(
        per_rater=per_rater,
        pairs=pairs,
        strata=strata,
        deviations=_deviations(tally, assignments, double_fraction),
    )


def check_guarantees(
    sessions: pd.DataFrame, raters: list[str], assignments: pd.DataFrame, double_fraction: float
) -> list[Deviation]:
    """Every guarantee of the module docstring that ``assignments`` do not meet.

    ``calibration`` rows are ignored. Independent of how the assignments were made.
    """
    return _deviations(_Tally.of(sessions, raters, assignments), assignments, double_fraction)


def _deviations(
    tally: _Tally, assignments: pd.DataFrame, double_fraction: float
) -> list[Deviation]:
    out = _coverage(tally, assignments)
    dbl = tally.doubled()
    d_target = target_doubles(len(tally.eligible), double_fraction)
    if int(dbl.sum()) != d_target:
        diff = abs(int(dbl.sum()) - d_target)
        out.append(Deviation("double_count", "study", d_target, int(dbl.sum()), diff))
    out += _cell_deviations(tally, dbl, double_fraction)
    out += _spread("rater_load", "raters", tally.totals())
    pairs = tally.pairs()[np.triu_indices(len(tally.raters), 1)]
    out += _spread("pair_balance", "rater pairs", pairs)
    out += _strata_deviations(tally)
    return out


def _coverage(tally: _Tally, assignments: pd.DataFrame) -> list[Deviation]:
    a = assignments[assignments["purpose"].isin(SLOT_PURPOSES)]
    out = [
        Deviation("coverage", f"session {session_code} not eligible", 0, n, n)
        for session_code, n in a.loc[tally.s < 0, "session_id"].value_counts(sort=False).items()
    ]
    out += [
        Deviation("coverage", f"unknown rater {r}", 0, n, n)
        for r, n in a.loc[tally.r < 0, "rater"].value_counts(sort=False).items()
    ]
    n = len(tally.eligible)
    known = tally.s >= 0
    mains = np.bincount(tally.s[known & ~tally.double], minlength=n)
    doubles = np.bincount(tally.s[known & tally.double], minlength=n)
    both = known & (tally.r >= 0)
    pairs = np.unique(np.stack([tally.s[both], tally.r[both]]), axis=1)
    dup = np.bincount(tally.s[both], minlength=n) - np.bincount(pairs[0], minlength=n)
    excess = np.abs(mains - 1) + np.maximum(doubles - 1, 0) + dup
    session_codes = tally.eligible["session_id"].to_numpy()
    return out + [
        Deviation(
            "coverage", f"session {session_codes[i]}", 1, int(mains[i] + doubles[i]), int(excess[i])
        )
        for i in np.flatnonzero(excess)
    ]


def _cell_deviations(tally: _Tally, dbl: np.ndarray, f: float) -> list[Deviation]:
    labels, n_c, d_c = tally.cells(dbl)
    lo, hi = _cell_bounds(n_c, f)
    excess = np.maximum(np.maximum(lo - d_c, d_c - hi), 0)
    return [
        Deviation("double_per_cell", f"{th} x {ph}", float(f * n_c[i]), int(d_c[i]), int(excess[i]))
        for i, (th, ph) in enumerate(labels.itertuples(index=False))
        if excess[i]
    ]


def _spread(name: str, subject: str, values: np.ndarray) -> list[Deviation]:
    if len(values) == 0:
        return []
    spread = int(values.max() - values.min())
    return [Deviation(name, subject, 1, spread, spread - 1)] if spread > 1 else []


def _strata_deviations(tally: _Tally) -> list[Deviation]:
    out = []
    totals = tally.totals()
    n_assign = max(int(totals.sum()), 1)
    k = len(tally.raters)
    for kind in _KINDS:
        count = tally.by(kind)
        fair = np.outer(totals, count.sum(0)) / n_assign
        x = count - fair
        bad = np.abs(x) > 1 + 1e-7
        if kind == "patient":
            bad &= (np.bincount(tally.codes[kind], minlength=count.shape[1]) >= k)[None, :]
        for i, c in zip(*np.nonzero(bad), strict=True):
            out.append(
                Deviation(
                    f"rater_{kind}",
                    f"{tally.raters[i]} x {kind} {tally.names[kind][c]}",
                    round(float(fair[i, c]), 3),
                    int(count[i, c]),
                    round(float(abs(x[i, c]) - 1), 3),
                )
            )
    return out


# ----------------------------------------------------------------------------- calibration draw


def stratified_draw(candidates: pd.DataFrame, n: int, seed: int) -> list[str]:
    """Draw the codes of ``n`` calibration sessions spread over therapists, then phases, then
    patients.

    ``candidates``: columns ``session_id`` (the session code), ``therapist, phase, patient``.
    Each therapist gets floor or ceil of its proportional share (largest remainder, seeded
    ties), each phase within a therapist likewise, and within a stratum sessions of patients
    not yet drawn come first.
    """
    if n > len(candidates):
        raise CalibrationError(f"only {len(candidates)} sessions can be drawn, not {n}")
    rng = np.random.default_rng(seed)
    frame = candidates.sort_values("session_id", kind="mergesort").reset_index(drop=True)
    chosen: list[str] = []
    patients: set[str] = set()
    for therapist, k in _shares(frame["therapist"], n, rng).items():
        of_therapist = frame[frame["therapist"] == therapist]
        for phase, m in _shares(of_therapist["phase"], k, rng).items():
            pool = of_therapist[of_therapist["phase"] == phase]
            for i in _spread_patients(pool["patient"].to_numpy(), m, patients, rng):
                chosen.append(str(pool["session_id"].iloc[i]))
                patients.add(pool["patient"].iloc[i])
    return sorted(chosen)


def _spread_patients(
    patients: np.ndarray, m: int, used: set[str], rng: np.random.Generator
) -> list[int]:
    """m positions in random order: one session per patient first (patients not drawn in
    another stratum before those that were), then second sessions, and so on."""
    seen: set[str] = set()
    ranked: list[tuple[bool, bool, int, int]] = []
    for i in rng.permutation(len(patients)):
        patient = patients[i]
        ranked.append((patient in seen, patient in used, len(ranked), int(i)))
        seen.add(patient)
    return [i for *_, i in sorted(ranked)[:m]]


def _shares(labels: pd.Series, n: int, rng: np.random.Generator) -> dict[str, int]:
    """Largest-remainder split of n over the labels, proportional to their counts; ties
    broken at random; never more than a label has."""
    sizes = labels.value_counts().sort_index()
    if n == 0 or sizes.empty:
        return {}
    quota = sizes.to_numpy() * n / sizes.sum()
    base = np.minimum(np.floor(quota).astype(int), sizes.to_numpy())
    rest = n - int(base.sum())
    order = np.lexsort((rng.random(len(sizes)), -(quota - base)))
    for i in order:
        if rest == 0:
            break
        if base[i] < sizes.iloc[i]:
            base[i] += 1
            rest -= 1
    return {str(label): int(k) for label, k in zip(sizes.index, base, strict=True) if k}
