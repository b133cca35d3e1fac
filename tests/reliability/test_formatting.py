"""How numbers and counts are written: one formatter for the pages, the CLI text and the plots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rater.formatting import format_number, format_range, plural
from rater.reliability.output import show
from rater.reliability.results import Estimate, NotEnoughData


@pytest.mark.parametrize(
    ("value", "digits", "signed", "expected"),
    [
        (0.8249, 2, False, "0.82"),
        (-0.43, 2, False, "−0.43"),
        (0.4, 2, True, "+0.40"),
        (-0.4, 2, True, "−0.40"),
        (-0.0, 2, False, "0.00"),
        (-0.0, 2, True, "0.00"),
        (-1.586e-16, 2, False, "0.00"),  # round-off of an ICC that is 0 in exact arithmetic
        (-0.004, 2, False, "0.00"),
        (-0.004, 2, True, "0.00"),
        (0.004, 2, True, "0.00"),
        (-0.0004, 3, False, "0.000"),
        (-0.0005001, 3, False, "−0.001"),
        (np.float64(-0.0), 2, False, "0.00"),
        (-math.inf, 2, False, "−∞"),
        (math.inf, 2, False, "+∞"),
        (math.nan, 2, False, "–"),
        (None, 2, False, "–"),
        (3, 1, False, "3.0"),
    ],
)
def test_format_number(value, digits, signed, expected):
    assert format_number(value, digits, signed=signed) == expected


def test_negative_numbers_carry_the_minus_sign_never_a_hyphen():
    for value in (-0.43, -12.5, -1e-3, -math.inf):
        text = format_number(value, 3)
        assert "-" not in text and text.startswith("\u2212"), text
    assert show(Estimate(-0.12, -0.5, 0.3)) == "\u22120.12 [\u22120.50, 0.30]"


def test_ranges_use_an_en_dash():
    assert format_range(0.1, 0.9) == "0.10\u20130.90"
    assert format_range(-0.2, 0.4) == "\u22120.20 \u2013 0.40"  # spaced: not read as a minus
    assert format_range(None, 0.4) == "\u2013"
    assert "-" not in format_range(-0.9, -0.1)


def test_plural():
    assert [plural(n, "session") for n in (0, 1, 2)] == ["0 sessions", "1 session", "2 sessions"]
    assert plural(1, "analysis", "analyses") == "1 analysis"
    assert plural(3, "analysis", "analyses") == "3 analyses"


def test_show_writes_intervals_with_unbounded_and_undefined_limits():
    assert show(Estimate(0.14, -math.inf, 0.93)) == "0.14 [−∞, 0.93]"
    assert show(Estimate(-math.inf, -math.inf, -math.inf)) == "−∞ [−∞, −∞]"
    assert show(Estimate(-0.0, -0.0001, 0.0)) == "0.00 [0.00, 0.00]"
    assert show(Estimate(0.5, None, 0.9)) == "0.50 [–, 0.90]"
    assert show(Estimate(0.5)) == "0.50"  # a coefficient without an interval
    assert show(Estimate(0.5, 0.1, 0.9), ci=False) == "0.50"
    assert show(NotEnoughData("1 session rated by both (minimum 5)")) == (
        "not enough data — 1 session rated by both (minimum 5)"
    )


def test_jinja_filters_are_the_same_functions(app):
    render = app.jinja_env.from_string
    assert render("{{ x|number }}").render(x=-0.0) == "0.00"
    assert render("{{ x|number(signed=True) }}").render(x=-0.001) == "0.00"
    assert render("{{ x|number(3) }}").render(x=-math.inf) == "−∞"
    assert render("{{ x|number }}").render(x=-0.3) == "\u22120.30"  # e.g. a negative kappa
    assert render("{{ number_range(-0.2, 0.5) }}").render() == "\u22120.20 \u2013 0.50"
    assert render("{{ 1|plural('session') }}, {{ 2|plural('pair') }}").render() == (
        "1 session, 2 pairs"
    )
