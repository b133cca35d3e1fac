"""Any observer scale: ranges, N/A, kinds of items, scoring rules (the pure core)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rater.instruments import (
    Instrument,
    InstrumentError,
    ItemKind,
    MeasureKind,
    load_instrument,
    load_instruments,
    parse_instrument,
    previous_session,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "instruments" / "examples"

HEAD = 'code = "X"\nname = "Example"\n'


def _item(code: str, **fields: object) -> str:
    lines = [f'[[items]]\ncode = "{code}"\nlabel = "{code} label"']
    for key, value in fields.items():
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def _parse(text: str) -> Instrument:
    return parse_instrument(text.encode(), "x.toml")


def _problem(text: str) -> str:
    with pytest.raises(InstrumentError) as info:
        _parse(text)
    return str(info.value)


# ------------------------------------------------------------------------------ files


def test_today_files_keep_their_meaning():
    ghes, sthar = load_instruments(ROOT / "instruments")
    for instrument in (ghes, sthar):
        assert str(instrument.scale) == "0-4"
        for item in instrument.items:
            assert item.kind == ItemKind.ORDINAL
            assert item.points == (0, 1, 2, 3, 4)
            assert not item.allows_not_applicable
    assert ghes.disagreement_threshold == 2


def test_examples_load_and_are_not_in_the_instruments_folder():
    competence = load_instrument(EXAMPLES / "competence.toml")
    assert len(competence.items) == 11
    for item in competence.items:
        assert item.points == tuple(range(7))
        assert sorted(item.anchors) == [0, 2, 4, 6]
        assert item.anchor(3) == "3" and item.anchor(4) == item.anchors[4]
    sheet = load_instrument(EXAMPLES / "homework_sheet.toml")
    kinds = {i.code: i.kind for i in sheet.items}
    assert set(kinds.values()) == set(ItemKind)
    rationale = sheet.item("HWS_rationale")
    assert rationale.points == (1, 2, 3, 4, 5) and rationale.allows_not_applicable
    codes = [i.code for i in load_instruments(ROOT / "instruments")]
    assert codes == ["GHES", "StHAR"]  # examples are loaded only when copied in


def test_instrument_scale_is_inherited_and_item_may_override():
    inst = _parse(
        HEAD
        + "scale = { min = 1, max = 7 }\n"
        + _item("A")
        + _item("B", scale="{ min = 0, max = 3 }", anchors='{ 0 = "none", 3 = "all" }')
    )
    assert inst.item("A").points == tuple(range(1, 8))
    assert inst.item("B").points == (0, 1, 2, 3)
    assert inst.item("A").anchor(4) == "4"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("scale = { min = 0, max = 0 }\n", "a scale needs 2 to 11 score points, 0-0 has 1"),
        ("scale = { min = 0, max = 11 }\n", "a scale needs 2 to 11 score points, 0-11 has 12"),
        ("scale = { min = 1 }\n", "field scale.max: Field required"),
    ],
)
def test_bad_scales_are_refused_by_field(fields, expected):
    assert expected in _problem(HEAD + fields + _item("A"))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"anchors": '{ 0 = "a", 7 = "b" }'}, "item A: Value error, anchors given for score "
         "points outside 0-4: [7]"),
        ({"kind": '"count"', "reverse": "true"}, "item A: Value error, reverse not allowed for a "
         "count item"),
        ({"kind": '"nominal"', "categories": '{ a = "A" }'}, "item A: Value error, a nominal "
         "item needs at least 2 categories"),
        ({"kind": '"ordinal"', "categories": '{ a = "A", b = "B" }'}, "item A: Value error, "
         "categories not allowed for a ordinal item"),
        ({"kind": '"text"', "per_minute": "true"}, "per_minute not allowed for a text item"),
        ({"kind": '"rating"'}, "item A: field kind: Input should be 'ordinal', 'nominal', "
         "'count' or 'text'"),
        ({"kind": '"nominal"', "categories": '{ "a b" = "A", b = "B" }'}, "item A: field "
         "categories.a b.[key]: String should match pattern"),
    ],
)  # fmt: skip
def test_fields_that_do_not_fit_the_kind_are_refused(fields, expected):
    assert expected in _problem(HEAD + _item("A", **fields))


def test_scores_take_numeric_items_only_and_prorating_is_bounded():
    text = HEAD + _item("A") + _item("T", kind='"text"')
    rule = '[[scores]]\ncode = "S"\nlabel = "S"\nrule = "sum"\nitems = ["A", "T"]\n'
    assert "score S: item 'T' is text, not a score or count" in _problem(text + rule)
    rule = '[[scores]]\ncode = "S"\nlabel = "S"\nrule = "mean"\nitems = ["A"]\nmax_missing = 1\n'
    assert "max_missing must be below the number of items (1)" in _problem(text + rule)


def test_not_applicable_instrument_wide_per_item_and_switched_off():
    inst = _parse(
        HEAD
        + 'not_applicable = "Not observed"\n'
        + _item("A")
        + _item("B", not_applicable="false")
        + _item("C", not_applicable='"No homework"')
    )
    assert inst.item("A").not_applicable == "Not observed"
    assert inst.item("B").not_applicable is None
    assert inst.item("C").not_applicable == "No homework"
    plain = _parse(HEAD + _item("A", not_applicable="true") + _item("B"))
    assert plain.item("A").not_applicable == "Not applicable"
    assert not plain.item("B").allows_not_applicable


def test_a_stored_definition_rebuilds_the_same_instrument():
    from rater.instruments import instrument_from_definition

    for path in [*EXAMPLES.glob("*.toml"), *(ROOT / "instruments").glob("*.toml")]:
        inst = load_instrument(path)
        again = instrument_from_definition(inst.definition())
        assert again.definition() == inst.definition()
        assert again.measures() == inst.measures()


def test_measure_codes_must_be_unique_within_and_across():
    text = HEAD + _item("A") + '[[scores]]\ncode = "A"\nlabel = "S"\nrule = "mean"\nitems = ["A"]\n'
    assert "measure A: code used twice" in _problem(text)


# ------------------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("fields", "good", "bad"),
    [
        ({"scale": "{ min = 1, max = 7 }"}, [1, 7], [0, 8, 2.5, True, "3", None]),
        ({"kind": '"count"'}, [0, 12], [-1, 1.5, False, "2"]),
        ({"kind": '"nominal"', "categories": '{ a = "A", b = "B" }'}, ["a", "b"], ["c", 1, ["a"]]),
        (
            {"kind": '"nominal"', "categories": '{ a = "A", b = "B" }', "multiple": "true"},
            [["a"], ["a", "b"]],
            ["a", [], ["a", "a"], ["c"]],
        ),
        ({"kind": '"text"'}, ["", "some words"], [1, None]),
    ],
)
def test_value_problem_by_kind(fields, good, bad):
    item = _parse(HEAD + _item("A", **fields)).item("A")
    assert [item.value_problem(v) for v in good] == [None] * len(good)
    assert all(item.value_problem(v) for v in bad)


# ------------------------------------------------------------------------------ scoring


def test_sum_with_prorating_and_mean_with_prorating():
    inst = _parse(
        HEAD
        + "scale = { min = 1, max = 5 }\n"
        + _item("A")
        + _item("B", reverse="true")
        + _item("C")
        + '[[scores]]\ncode = "S"\nlabel = "S"\nrule = "sum"\nitems = ["A", "B", "C"]\n'
        + "max_missing = 1\n"
        + '[[scores]]\ncode = "M"\nlabel = "M"\nrule = "mean"\nitems = ["A", "B", "C"]\n'
    )
    values = pd.DataFrame({"A": [5, 5, np.nan], "B": [1, np.nan, np.nan], "C": [3, 3, 3]})
    scores = inst.scale_scores(values)
    # B reverse-keyed on 1-5: 1 -> 5
    assert scores["S"].tolist()[0] == 13
    assert scores["S"].tolist()[1] == pytest.approx((5 + 3) / 2 * 3)  # prorated
    assert math.isnan(scores["S"].iloc[2])  # two missing > max_missing
    assert scores["M"].iloc[0] == pytest.approx(13 / 3)
    assert scores["M"].isna().tolist() == [False, True, True]


def test_cross_session_scores_use_session_t_minus_1_and_never_bridge_a_gap():
    sthar = load_instrument(ROOT / "instruments" / "sthar.toml")
    a_items, r_items = sthar.subscale_items()["StH-A"], sthar.subscale_items()["StH-R"]
    keys = pd.DataFrame({"patient": ["P1", "P1", "P1", "P2"], "session_number": [1, 2, 4, 2]})
    values = pd.DataFrame(
        [dict.fromkeys(a_items + r_items, v) for v in (4, 2, 0, 3)], index=[10, 11, 12, 13]
    )
    keys.index = values.index
    previous = previous_session(values, keys)
    total = sthar.scale_scores(values, previous=previous)["StHAR_total"]
    assert math.isnan(total[10])  # no session 0
    assert total[11] == pytest.approx((5 * 4 + 3 * 2) / 8)
    assert math.isnan(total[12])  # session 3 is missing: never shifted to session 2
    assert math.isnan(total[13])  # another patient's session 1 does not count
    assert math.isnan(sthar.scale_scores(values)["StHAR_total"][11])


def test_rates_per_minute_need_the_audio_length():
    inst = _parse(HEAD + _item("N", kind='"count"', per_minute="true"))
    assert [m.code for m in inst.measures()] == ["N", "N_per_minute"]
    assert inst.measures()[1].kind == MeasureKind.RATE
    values = pd.DataFrame({"N": [6, 0, 3]})
    rates = inst.scale_scores(values, minutes=pd.Series([30.0, 10.0, 0.0]))["N_per_minute"]
    assert rates.iloc[0] == 0.2 and rates.iloc[1] == 0
    assert math.isnan(rates.iloc[2])  # no length: no rate
    assert inst.scale_scores(values)["N_per_minute"].isna().all()


@st.composite
def instruments_and_values(draw):
    """A random instrument (range, reverse keying, N/A, counts, rules with prorating) and a
    frame of random item values with gaps."""
    low = draw(st.integers(-3, 3))
    points = draw(st.integers(2, 11))
    n_items = draw(st.integers(1, 7))
    items = []
    for i in range(n_items):
        kind = draw(st.sampled_from(["ordinal", "ordinal", "count"]))
        fields = {"kind": f'"{kind}"'}
        if kind == "ordinal" and draw(st.booleans()):
            fields["reverse"] = "true"
        if draw(st.booleans()):
            fields["not_applicable"] = "true"
        items.append((f"I{i}", kind, fields))
    text = HEAD + f"scale = {{ min = {low}, max = {low + points - 1} }}\n"
    text += "".join(_item(code, **fields) for code, _, fields in items)
    rules = []
    for r in range(draw(st.integers(1, 3))):
        members = draw(st.lists(st.sampled_from([c for c, _, _ in items]), min_size=1, unique=True))
        rule = draw(st.sampled_from(["mean", "sum"]))
        max_missing = draw(st.integers(0, len(members) - 1))
        rules.append((f"S{r}", rule, members, max_missing))
        listed = ", ".join(f'"{m}"' for m in members)
        text += (
            f'[[scores]]\ncode = "S{r}"\nlabel = "S"\nrule = "{rule}"\nitems = [{listed}]\n'
            f"max_missing = {max_missing}\n"
        )
    rows = draw(st.integers(1, 6))
    table = {}
    for code, kind, _ in items:
        high = low + points - 1 if kind == "ordinal" else 40
        start = low if kind == "ordinal" else 0
        table[code] = draw(
            st.lists(st.one_of(st.none(), st.integers(start, high)), min_size=rows, max_size=rows)
        )
    return _parse(text), rules, pd.DataFrame(table, dtype="float64")


@settings(max_examples=150, deadline=None)
@given(instruments_and_values())
def test_scale_scores_equal_a_direct_computation(case):
    inst, rules, values = case
    scores = inst.scale_scores(values)
    for code, rule, members, max_missing in rules:
        for row in range(len(values)):
            present = []
            for m in members:
                x = values.at[row, m]
                if not math.isnan(x):
                    item = inst.item(m)
                    present.append(item.scale.min + item.scale.max - x if item.reverse else x)
            if len(members) - len(present) > max_missing:
                assert math.isnan(scores.at[row, code])
                continue
            mean = sum(present) / len(present)
            expected = mean * len(members) if rule == "sum" else mean
            assert scores.at[row, code] == pytest.approx(expected)
