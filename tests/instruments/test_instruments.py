"""Instrument files: the shipped scales load; each kind of invalid file is refused by name."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rater.instruments import InstrumentError, load_instrument, load_instruments, parse_instrument

ROOT = Path(__file__).resolve().parents[2]

SMALL = """
code = "WAI"
name = "Working alliance (short)"
[[items]]
code = "WAI_1"
label = "Agreement on tasks"
description = "Patient and therapist agree on the tasks of therapy."
anchors = { 0 = "none", 1 = "little", 2 = "some", 3 = "much", 4 = "full" }
[[items]]
code = "WAI_2"
label = "Bond"
description = "Mutual trust and liking."
anchors = { 0 = "none", 1 = "little", 2 = "some", 3 = "much", 4 = "full" }
reverse = true
[[scores]]
code = "WAI_score"
label = "WAI score"
rule = "mean"
items = ["WAI_1", "WAI_2"]
"""


def test_shipped_instruments_load():
    ghes, sthar = load_instruments(ROOT / "instruments")
    assert ghes.code == "GHES" and sthar.code == "StHAR"
    assert ghes.item_codes == [f"GHES_{i}" for i in range(1, 8)]
    assert [i.code for i in ghes.items if i.reverse] == ["GHES_5"]
    assert sthar.subscale_items() == {
        "StH-A": [f"StHAR_A{i}" for i in range(1, 6)],
        "StH-R": [f"StHAR_R{i}" for i in range(1, 4)],
    }
    for instrument in (ghes, sthar):
        for item in instrument.items:
            assert sorted(item.anchors) == [0, 1, 2, 3, 4]
            assert len(set(item.anchors.values())) == 5, item.code
    assert {s.code: s.rule for s in sthar.scores}["StHAR_total"] == "cross_session_mean"
    assert "relapse prevention" in ghes.homework_types
    assert "lack of time" in ghes.difficulty_types
    assert {li.kind for li in ghes.log_items} == {"reported_completed", "assigned_next"}


def test_ghes_score_reverse_keys_difficulties():
    ghes = load_instrument(ROOT / "instruments" / "ghes.toml")
    scores = {f"GHES_{i}": 4 for i in range(1, 8)}
    rows = [dict(scores, GHES_5=0), dict(scores, GHES_5=4), dict(scores, GHES_1=None)]
    # no difficulties (GHES_5 = 0) counts as full engagement; a missing item: no score
    result = ghes.scale_scores(pd.DataFrame(rows))["GHES_score"]
    assert result.iloc[0] == 4.0
    assert result.iloc[1] == pytest.approx(24 / 7)
    assert math.isnan(result.iloc[2])


def test_content_hash_changes_with_content():
    a = parse_instrument(SMALL.encode(), "wai.toml")
    b = parse_instrument(SMALL.replace("Bond", "Bond!").encode(), "wai.toml")
    assert a.content_hash != b.content_hash
    assert a.definition() != b.definition()


def _problems(text: str) -> str:
    with pytest.raises(InstrumentError) as info:
        parse_instrument(text.encode(), "broken.toml")
    message = str(info.value)
    assert message.startswith("broken.toml: ")
    return message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s.replace('4 = "full" }\n[[items]]', '4 = " " }\n[[items]]', 1),
            "item WAI_1: field anchors: Value error, anchors without text for score points [4]",
        ),
        (lambda s: s.replace('label = "Bond"\n', ""), "item WAI_2: field label: Field required"),
        (lambda s: s.replace('code = "WAI_2"', 'code = "WAI_1"'), "item WAI_1: code used twice"),
        (
            lambda s: s.replace('items = ["WAI_1", "WAI_2"]', 'items = ["WAI_1", "WAI_9"]'),
            "score WAI_score: unknown item 'WAI_9'",
        ),
        (
            lambda s: s.replace("reverse = true", 'reverse = "sometimes"'),
            "item WAI_2: field reverse",
        ),
        (lambda s: s.replace('rule = "mean"', 'rule = "median"'), "score WAI_score: field rule"),
        (
            lambda s: s.replace('label = "Bond"', 'label = "Bond"\nsubscale = "X"'),
            "item WAI_2: field 'subscale': unknown 'X'",
        ),
        (
            lambda s: s.replace('label = "Bond"', 'label = "Bond"\ncolour = "red"'),
            "item WAI_2: field colour: Extra inputs are not permitted",
        ),
        (
            lambda s: s.replace('4 = "full" }\nreverse', '4 = "full", 5 = "more" }\nreverse'),
            "item WAI_2: Value error, anchors given for score points outside 0-4: [5]",
        ),
        (lambda s: s + "\n[[[", "not valid TOML"),
        (
            lambda s: s.replace('name = "Working alliance (short)"\n', ""),
            "broken.toml: field name: Field required",
        ),
    ],
)
def test_invalid_files_name_file_item_and_field(change, expected):
    assert expected in _problems(change(SMALL))


def test_not_utf8_is_refused():
    with pytest.raises(InstrumentError, match="not UTF-8"):
        parse_instrument(SMALL.encode("utf-16"), "x.toml")


def test_third_instrument_dropped_into_the_folder(tmp_path):
    for name in ("ghes.toml", "sthar.toml"):
        shutil.copy(ROOT / "instruments" / name, tmp_path / name)
    (tmp_path / "wai.toml").write_text(SMALL, encoding="utf-8")
    codes = [i.code for i in load_instruments(tmp_path)]
    assert codes == ["GHES", "StHAR", "WAI"]


def test_item_codes_must_be_unique_across_instruments(tmp_path):
    (tmp_path / "a.toml").write_text(SMALL, encoding="utf-8")
    (tmp_path / "b.toml").write_text(SMALL.replace('code = "WAI"', 'code = "WAI2"'), "utf-8")
    with pytest.raises(InstrumentError, match=r"item WAI_1: code also used in a\.toml"):
        load_instruments(tmp_path)
