"""Rating any scale end to end: the page renders each kind, autosave checks answers against the
item (range, categories, N/A), submit counts N/A as answered, and the answers reach the frame."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from rater.extensions import db
from rater.rating import service
from rater.rating.frame import ratings_frame
from rater.rating.models import ItemScore
from rater.study.instrument_store import current_versions, instrument_of

TCS = [f"TCS_{i}" for i in range(1, 12)]
JSON = {"Accept": "application/json"}


@pytest.fixture
def rated(client, auth, factory):  # noqa: ARG001 (a fixture requested for its setup)
    """r1's started rating of one session; r1 is logged in."""
    r1 = factory.user("r1")
    session = factory.session("P01-S01")
    assignment = factory.assignment(session, r1)
    service.start_rating(assignment)
    db.session.commit()
    assert auth.login("r1").status_code == 302
    return assignment


def _save(client, assignment, version, *changes):
    return client.post(
        f"/assignments/{assignment.id}/autosave",
        json={"base_version": version, "changes": list(changes)},
    )


def _score(item, value, **extra):
    return {"op": "score", "item": item, "value": value, **extra}


def _answers() -> dict[str, tuple]:
    rows = db.session.execute(
        select(ItemScore.item_code, ItemScore.score, ItemScore.value_text, ItemScore.not_applicable)
    )
    return {code: (score, text, bool(na)) for code, score, text, na in rows}


def test_page_renders_every_kind(client, rated):
    page = client.get(f"/assignments/{rated.id}/rate").get_data(as_text=True)
    for point in range(7):  # 0-6, every point a radio with the score as its value
        assert f'name="TCS_1" value="{point}"' in page
    assert 'name="TCS_1" value="7"' not in page
    assert "No agenda" in page  # an anchor on an even point
    for point in range(1, 6):
        assert f'name="HWS_rationale" value="{point}"' in page
    assert 'name="HWS_rationale" value="na"' in page and "No homework assigned" in page
    assert 'name="TCS_1" value="na"' not in page  # the competence scale has no N/A
    assert 'type="radio" id="HWS_type-1" name="HWS_type" value="behavioural"' in page
    assert 'type="number" id="HWS_tasks" name="HWS_tasks"' in page
    assert '<textarea id="HWS_comment" name="HWS_comment"' in page


def test_autosave_stores_every_kind_and_submit_counts_na_as_answered(client, rated):
    version = 1
    changes = [_score(code, i % 7) for i, code in enumerate(TCS)]
    changes += [
        _score("HWS_rationale", {"not_applicable": True}),
        _score("HWS_type", "cognitive"),
        _score("HWS_tasks", 3),
        _score("HWS_comment", "  set at the very end  "),
    ]
    answer = _save(client, rated, version, *changes)
    assert answer.status_code == 200, answer.get_json()
    stored = _answers()
    assert stored["TCS_7"] == (6, None, False)
    assert stored["HWS_rationale"] == (None, None, True)
    assert stored["HWS_type"] == (None, "cognitive", False)
    assert stored["HWS_tasks"] == (3, None, False)
    assert stored["HWS_comment"] == (None, "set at the very end", False)
    version = answer.get_json()["version"]
    # N/A -> a score and back, compare-and-set on the N/A base
    answer = _save(
        client, rated, version, _score("HWS_rationale", 4, base={"not_applicable": True})
    )
    assert answer.status_code == 200 and _answers()["HWS_rationale"] == (4, None, False)
    version = answer.get_json()["version"]
    answer = _save(
        client, rated, version, _score("HWS_rationale", {"not_applicable": True}, base=4)
    )
    assert answer.status_code == 200
    page = client.get(f"/assignments/{rated.id}/rate").get_data(as_text=True)
    assert 'value="na" checked' in page and 'value="cognitive" checked' in page
    response = client.post(
        f"/assignments/{rated.id}/submit", headers={"Accept": "application/json"}
    )
    assert response.status_code == 200, response.get_json()
    frame = ratings_frame()
    na = frame[frame["item"] == "HWS_rationale"].iloc[0]
    assert na["not_applicable"] == 1 and pd.isna(na["score"]) and pd.isna(na["value"])
    assert frame.loc[frame["item"] == "HWS_type", "value"].item() == "cognitive"
    assert frame.loc[frame["item"] == "TCS_7", "score"].item() == 6


def test_submit_names_the_missing_item(client, rated):
    changes = [_score(code, 3) for code in TCS if code != "TCS_5"]
    changes += [_score("HWS_rationale", 2), _score("HWS_type", "relapse"), _score("HWS_tasks", 0)]
    assert _save(client, rated, 1, *changes).status_code == 200
    response = client.post(
        f"/assignments/{rated.id}/submit", headers={"Accept": "application/json"}
    )
    assert response.status_code == 422
    assert [m["item"] for m in response.get_json()["missing"]] == ["TCS_5"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_score("TCS_1", 7), "must be an integer 0-6"),
        (_score("TCS_1", -1), "must be an integer 0-6"),
        (_score("TCS_1", {"not_applicable": True}), "cannot be 'not applicable'"),
        (_score("HWS_rationale", 0), "must be an integer 1-5"),
        (_score("HWS_type", "art"), "must be one of the categories"),
        (_score("HWS_type", 2), "must be one of the categories"),
        (_score("HWS_tasks", -2), "whole number of 0 or more"),
        (_score("HWS_tasks", 1.5), "whole number of 0 or more"),
        (_score("HWS_comment", 5), "must be text"),
        (_score("HWS_tasks", {"not_applicable": False}), "whole number"),
    ],
)
def test_autosave_refuses_what_the_item_does_not_take(client, rated, change, words):
    answer = _save(client, rated, 1, change)
    assert answer.status_code == 400
    assert words in " ".join(answer.get_json()["problems"])
    assert _answers() == {}


@pytest.mark.usefixtures("app")
def test_instruments_come_from_the_folder():
    versions = current_versions()
    assert sorted(versions) == ["HWS", "TCS"]
    assert instrument_of(versions["TCS"]).disagreement_threshold == 2
