"""Disagreements by each instrument's threshold and consensus on any scale: N/A and categories
agreed on the consensus page reach the sessions export."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rater.export.service import Options, build
from rater.extensions import db
from rater.instruments import NOT_APPLICABLE, parse_instrument
from rater.rating.frame import ratings_frame
from rater.rating.importer import import_ratings
from rater.rating.models import ConsensusScore
from rater.reliability import consensus
from rater.study.instrument_store import current_versions

TCS = {f"TCS_{i}": 3 for i in range(1, 12)}
R1 = {**TCS, "HWS_rationale": "na", "HWS_type": "cognitive", "HWS_tasks": 2}
R2 = {**TCS, "TCS_1": 5, "TCS_2": 4, "HWS_rationale": 3, "HWS_type": "monitoring", "HWS_tasks": 2}


def _rows(rater: str, purpose: str, answers: dict) -> str:
    out = []
    for item, answer in answers.items():
        inst = item.split("_")[0]
        if answer == "na":
            cells = ",,1"
        elif isinstance(answer, str):
            cells = f",{answer},0"
        else:
            cells = f"{answer},,0"
        out.append(f"P01-S01,{rater},{inst},{item},{cells},{purpose}\n")
    return "".join(out)


@pytest.fixture
def double_coded(factory):
    factory.user("coord", "coordinator")
    for name in ("r1", "r2"):
        factory.user(name)
    factory.session("P01-S01")
    current_versions()
    head = "session_id,rater,instrument,item,score,value,not_applicable,purpose\n"
    text = head + _rows("r1", "main", R1) + _rows("r2", "double", R2)
    import_ratings(text.encode(), "in.csv", allow_incomplete=True)
    db.session.commit()


@pytest.mark.usefixtures("double_coded")
def test_disagreements_use_each_instruments_threshold():
    instruments = consensus.current_instruments()
    [found] = consensus.disagreements(ratings_frame(), instruments)
    assert found.items == (("TCS_1", 2),)  # TCS_2 differs by 1
    assert found.mismatches == (
        ("HWS_rationale", "N/A ≠ 3"),
        ("HWS_type", "cognitive ≠ monitoring"),
    )
    assert consensus.disagreements(ratings_frame(), instruments, points=1)[0].items == (
        ("TCS_1", 2),
    )  # points apply only without instruments
    assert [i for i, _ in consensus.disagreements(ratings_frame(), points=1)[0].items] == [
        "TCS_1",
        "TCS_2",
    ]


def test_threshold_is_half_the_items_range_unless_the_file_says():
    text = b'code = "X"\nname = "X"\nscale = { min = 1, max = 7 }\n'
    text += b'[[items]]\ncode = "A"\nlabel = "A"\n'
    inst = parse_instrument(text, "x.toml")
    assert inst.disagreement_of(inst.item("A")) == 3
    inst = parse_instrument(text.replace(b'name = "X"', b'name = "X"\ndisagreement = 1.5'), "x")
    assert inst.disagreement_of(inst.item("A")) == 1.5


@pytest.mark.usefixtures("double_coded")
def test_consensus_page_settles_categories_and_not_applicable(client, auth):
    assert auth.login("coord").status_code == 302
    page = client.get("/reliability/consensus/P01-S01").get_data(as_text=True)
    assert "N/A" in page and "cognitive" in page and "monitoring" in page
    assert "differs by 2" in page
    data = {"item_HWS_rationale": "na", "item_HWS_type": "monitoring", "item_HWS_tasks": "2",
            "item_TCS_1": "4"}  # fmt: skip
    response = client.post("/reliability/consensus/P01-S01", data=data)
    assert response.status_code == 302
    rows = {c.item_code: c.answer for c in db.session.scalars(select(ConsensusScore)).all()}
    assert rows["HWS_rationale"] is NOT_APPLICABLE
    assert rows["HWS_type"] == "monitoring" and rows["TCS_1"] == 4 and rows["HWS_tasks"] == 2
    sessions = build("sessions", Options()).iloc[0]
    assert sessions["HWS_type"] == "monitoring"  # the raters differ: the consensus decides
    assert sessions["TCS_1"] == 4
    assert sessions["HWS_rationale"] != sessions["HWS_rationale"]  # agreed N/A: missing
    assert sessions["resolution"] == "consensus+mean"


@pytest.mark.usefixtures("double_coded")
def test_reliability_pages_show_every_kind(client, auth):
    assert auth.login("coord").status_code == 302
    urls = ["/reliability/", "/reliability/instrument/HWS", "/reliability/disagreements"]
    urls += [f"/reliability/measure/HWS/{code}" for code in ("HWS_type", "HWS_tasks")]
    urls += [f"/reliability/plot/HWS/HWS_type/{plot}.svg" for plot in ("heatmap", "drift")]
    urls.append("/reliability/plot/HWS/HWS_tasks/bland-altman.svg?rater_1=r1&rater_2=r2")
    for url in urls:
        assert client.get(url).status_code == 200, url
    page = client.get("/reliability/disagreements").get_data(as_text=True)
    assert "TCS: 2 points" in page and "HWS: 2 points" in page
