"""Event-level agreement: the alignment rule on hand-built cases, kappa against scikit-learn."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from rater.coding.matching import NO_EVENT, Event, agreement, align, cohen_kappa


def E(code: str, time: float) -> Event:
    return Event(code, time)


def _codes(units):
    return [u.codes for u in units]


def test_exact_matches_agree_fully():
    a = [E("Q", 1), E("R", 5), E("Q", 9)]
    result = agreement(a, list(a))
    assert _codes(result.units) == [("Q", "Q"), ("R", "R"), ("Q", "Q")]
    assert result.kappa == 1 and result.percent == 1
    assert [(c.code, c.precision, c.recall, c.f1) for c in result.codes] == [
        ("Q", 1, 1, 1),
        ("R", 1, 1, 1),
    ]


def test_within_tolerance_pairs_beyond_it_does_not():
    a = [E("Q", 10.0), E("R", 20.0)]
    b = [E("Q", 11.9), E("R", 22.5)]
    assert _codes(align(a, b, tolerance=2)) == [("Q", "Q"), ("R", NO_EVENT), (NO_EVENT, "R")]
    assert _codes(align(a, b, tolerance=2.5)) == [("Q", "Q"), ("R", "R")]


def test_other_code_close_in_time_is_one_disagreement_not_two_omissions():
    units = align([E("Q", 3)], [E("R", 3.5)])
    assert _codes(units) == [("Q", "R")]


def test_one_to_many_pairs_the_closest_and_leaves_the_rest():
    a = [E("Q", 10)]
    b = [E("Q", 8.5), E("Q", 10.2), E("Q", 11.5)]
    units = align(a, b)
    assert [(u.codes, u.b.time if u.b else None) for u in units] == [
        ((NO_EVENT, "Q"), 8.5),
        (("Q", "Q"), 10.2),
        ((NO_EVENT, "Q"), 11.5),
    ]
    result = agreement(a, b)
    q = result.codes[0]
    assert (q.n_a, q.n_b, q.matched) == (1, 3, 1)
    assert q.precision == pytest.approx(1 / 3) and q.recall == 1 and q.f1 == pytest.approx(0.5)


def test_same_code_preferred_over_a_closer_event_of_another_code():
    a = [E("Q", 10)]
    b = [E("R", 10.1), E("Q", 11)]
    assert _codes(align(a, b)) == [(NO_EVENT, "R"), ("Q", "Q")]


def test_crossing_events_are_never_paired_across_each_other():
    # A: x then y; B: y then x, all within the tolerance. Pairing x-x and y-y would cross;
    # the alignment keeps time order: x-x paired, both y's alone (cost 2) ties with pairing
    # x-y and y-x (cost 2); the tie goes to the pairs closest in time.
    a = [E("x", 10.0), E("y", 11.0)]
    b = [E("y", 10.2), E("x", 11.4)]
    units = align(a, b)
    assert _codes(units) == [("x", "y"), ("y", "x")]
    times = [(u.a.time, u.b.time) for u in units]
    assert all(ta <= tb for ta, tb in times) or all(ta >= tb for ta, tb in times)


def test_kappa_and_f1_on_a_mixed_case_by_hand():
    a = [E("Q", 1), E("R", 5), E("Q", 9), E("R", 20)]
    b = [E("Q", 1.5), E("Q", 5.2), E("Q", 9), E("R", 30)]
    result = agreement(a, b)
    assert _codes(result.units) == [
        ("Q", "Q"),
        ("R", "Q"),
        ("Q", "Q"),
        ("R", NO_EVENT),
        (NO_EVENT, "R"),
    ]
    # table over (Q, R, -): observed 2/5; expected (2*3 + 2*1 + 1*1) / 25 = 9/25
    assert result.kappa == pytest.approx((2 / 5 - 9 / 25) / (1 - 9 / 25))
    r = next(c for c in result.codes if c.code == "R")
    assert (r.matched, r.f1) == (0, 0)
    assert result.percent == pytest.approx(2 / 5)


def test_no_events_at_all():
    result = agreement([], [])
    assert result.units == () and math.isnan(result.kappa) and math.isnan(result.percent)


def test_negative_tolerance_is_refused():
    with pytest.raises(ValueError, match="tolerance"):
        align([], [], tolerance=-1)


@st.composite
def two_coders(draw):
    codes = draw(st.lists(st.sampled_from("ABCD"), min_size=1, max_size=40))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    a = [E(c, round(rng.uniform(0, 120), 1)) for c in codes]
    b = []
    for event in a:
        if rng.random() < 0.8:
            code = event.code if rng.random() < 0.8 else rng.choice("ABCD")
            b.append(E(code, round(event.time + rng.uniform(-3, 3), 1)))
    b += [E(rng.choice("ABCD"), round(rng.uniform(0, 120), 1)) for _ in range(rng.randint(0, 4))]
    return a, b, draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))


@settings(max_examples=200, deadline=None)
@given(two_coders())
def test_alignment_is_valid_and_kappa_equals_scikit_learn(case):
    a, b, tolerance = case
    result = agreement(a, b, tolerance)
    units = result.units
    # every event appears exactly once
    assert sorted((e.code, e.time) for u in units if u.a for e in [u.a]) == sorted(
        (e.code, e.time) for e in a
    )
    assert sorted((e.code, e.time) for u in units if u.b for e in [u.b]) == sorted(
        (e.code, e.time) for e in b
    )
    pairs = [u for u in units if u.a and u.b]
    assert all(abs(u.a.time - u.b.time) <= tolerance + 1e-12 for u in pairs)
    # no crossing: paired events keep their order in both sequences
    assert [u.b.time for u in pairs] == sorted(u.b.time for u in pairs)
    assert [u.a.time for u in pairs] == sorted(u.a.time for u in pairs)
    labels = [u.codes for u in units]
    if len({c for pair in labels for c in pair}) > 1:
        expected = cohen_kappa_score([x for x, _ in labels], [y for _, y in labels])
        assert result.kappa == pytest.approx(expected) or (
            math.isnan(result.kappa) and math.isnan(expected)
        )


@settings(max_examples=60, deadline=None)
@given(two_coders())
def test_alignment_cost_is_minimal_against_brute_force_on_small_cases(case):
    a, b, tolerance = case
    a, b = a[:5], b[:5]
    units = align(a, b, tolerance)
    assert _cost(units) == _brute_force_cost(sorted(a, key=_key), sorted(b, key=_key), tolerance)


def _key(e: Event):
    return (e.time, e.code)


def _cost(units) -> int:
    return sum(0 if u.agrees else 1 for u in units)


def _brute_force_cost(a, b, tolerance) -> int:
    if not a or not b:
        return len(a) + len(b)
    best = 1 + _brute_force_cost(a[1:], b, tolerance)
    best = min(best, 1 + _brute_force_cost(a, b[1:], tolerance))
    if abs(a[0].time - b[0].time) <= tolerance:
        pair = 0 if a[0].code == b[0].code else 1
        best = min(best, pair + _brute_force_cost(a[1:], b[1:], tolerance))
    return best


def test_cohen_kappa_matches_scikit_learn_on_labels():
    rng = random.Random(7)
    for _ in range(50):
        x = [rng.choice("abc-") for _ in range(30)]
        y = [c if rng.random() < 0.6 else rng.choice("abc-") for c in x]
        assert cohen_kappa(list(zip(x, y, strict=True))) == pytest.approx(cohen_kappa_score(x, y))
