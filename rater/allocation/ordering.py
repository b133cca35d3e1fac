"""The order in which a rater meets their sessions, and which of them a batch releases (pure).

A rater who hears one patient's sessions back to back rates them against each other; the
seeded order interleaves patients, therapists and phases instead. ``interleave`` shuffles
with the seed, then never puts two sessions of one patient next to each other when that can
be avoided (the greedy "most remaining first" rule, ties broken by the shuffle), and prefers a
change of therapist and of phase between neighbours as well. ``session_order`` is the plain
order (patient, session number) a coordinator may ask for instead.

Plain data in and out: no Flask, no database.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class QueueOrder(StrEnum):
    SHUFFLED = "shuffled"
    SESSION = "session"


@dataclass(frozen=True)
class Item:
    """One held assignment as the batch planner sees it."""

    key: int  # the assignment id
    rater: str
    patient: str
    therapist: str
    phase: str
    number: int  # session number
    code: str  # session code


def session_order(items: Sequence[Item]) -> list[Item]:
    """Patient by patient, each in session order."""
    return sorted(items, key=lambda i: (i.patient, i.number, i.code, i.key))


def interleave(items: Sequence[Item], seed: int) -> list[Item]:
    """A seeded order with no two sessions of one patient in a row where that is possible.

    At each step the patient with the most sessions left (other than the previous one) goes
    next, which is the rule that avoids neighbours whenever any order can; among equals the
    seeded shuffle decides, after preferring another therapist and another phase.
    """
    rng = random.Random(seed)
    pool = sorted(items, key=lambda i: (i.patient, i.number, i.code, i.key))
    rng.shuffle(pool)
    rank = {item.key: n for n, item in enumerate(pool)}
    left: dict[str, list[Item]] = {}
    for item in pool:
        left.setdefault(item.patient, []).append(item)
    out: list[Item] = []
    while left:
        prev = out[-1] if out else None

        def score(patient: str, prev: Item | None = prev) -> tuple[int, int, int, int, int]:
            head = left[patient][0]
            return (
                int(prev is not None and patient == prev.patient),
                -len(left[patient]),
                int(prev is not None and head.therapist == prev.therapist),
                int(prev is not None and head.phase == prev.phase),
                rank[head.key],
            )

        patient = min(left, key=score)
        out.append(left[patient].pop(0))
        if not left[patient]:
            del left[patient]
    return out


def ordered(items: Sequence[Item], order: QueueOrder, seed: int) -> list[Item]:
    """The items in the requested order (per rater: call it with one rater's items)."""
    return interleave(items, seed) if order == QueueOrder.SHUFFLED else session_order(items)


def pick_batch(
    items: Sequence[Item],
    order: QueueOrder,
    seed: int,
    *,
    per_rater: int | None = None,
    phase: str | None = None,
    therapist: str | None = None,
) -> dict[str, list[Item]]:
    """Per rater, the held items a release opens, in queue order.

    Each rater's held items that match ``phase`` and ``therapist`` are put in order and the
    batch takes the first ``per_rater`` of them (all without a limit). The greedy order starts
    with the patients who have most sessions left, so a small batch spreads over patients.
    """
    by_rater: dict[str, list[Item]] = {}
    for item in items:
        by_rater.setdefault(item.rater, []).append(item)
    out: dict[str, list[Item]] = {}
    for rater in sorted(by_rater):
        rater_seed = seed * 1_000_003 + sum(map(ord, rater))
        matching = [
            i
            for i in by_rater[rater]
            if (phase is None or i.phase == phase)
            and (therapist is None or i.therapist == therapist)
        ]
        chosen = ordered(matching, order, rater_seed)
        if per_rater is not None:
            chosen = chosen[:per_rater]
        if chosen:
            out[rater] = chosen
    return out


def adjacent_same_patient(items: Sequence[Item]) -> int:
    """How many neighbours in a sequence share a patient (0 is the goal of ``interleave``)."""
    return sum(a.patient == b.patient for a, b in itertools.pairwise(items))
