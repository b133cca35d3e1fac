"""The reliability pages show a nominal item with its own coefficients (Cohen's kappa and
percent agreement across pairs, Fleiss' kappa of the calibration panel, alpha nominal), never
ICC columns reading "not computed for a nominal item"."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from rater.extensions import db
from rater.rating.importer import import_ratings
from rater.reliability import consensus
from rater.study.instrument_store import current_versions

TYPES_1 = ["behavioural", "cognitive", "monitoring", "behavioural", "relapse", "cognitive"]
TYPES_2 = ["behavioural", "cognitive", "behavioural", "behavioural", "relapse", "monitoring"]


@pytest.fixture
def coded(factory):
    factory.user("coord", "coordinator")
    for name in ("r1", "r2"):
        factory.user(name)
    rows = []
    for n, (a, b) in enumerate(zip(TYPES_1, TYPES_2, strict=True), start=1):
        code = f"P01-S{n:02d}"
        factory.session(code, number=n)
        rows.append(f"{code},r1,HWS,HWS_type,,{a},0,main\n")
        rows.append(f"{code},r2,HWS,HWS_type,,{b},0,double\n")
    current_versions()
    head = "session_id,rater,instrument,item,score,value,not_applicable,purpose\n"
    import_ratings((head + "".join(rows)).encode(), "in.csv", allow_incomplete=True)
    db.session.commit()


@pytest.mark.usefixtures("coded")
def test_instrument_page_shows_kind_appropriate_columns(client, auth):
    rep = consensus.load_report(instrument="HWS")
    kappa = rep.pair_mean("HWS", "HWS_type", "kappa")
    assert kappa.value == pytest.approx(cohen_kappa_score(TYPES_1, TYPES_2))
    agreement = rep.pair_mean("HWS", "HWS_type", "percent_agreement")
    same = sum(a == b for a, b in zip(TYPES_1, TYPES_2, strict=True))
    assert agreement.value == pytest.approx(100 * same / len(TYPES_1))
    assert auth.login("coord").status_code == 302
    page = " ".join(client.get("/reliability/instrument/HWS").get_data(as_text=True).split())
    assert "not computed for a nominal item" not in page
    section = page.split("Nominal items (categories)")[1].split("</table>")[0]
    assert "HWS_type" in section and "Cohen&#39;s κ" in section and "Fleiss&#39; κ" in section
    assert "α nominal" in section and "% agreement" in section
    assert f"{kappa.value:.2f}".lstrip("0") in section or f"{kappa.value:.2f}" in section
    ordinal = page.split("Rater pairs and the whole design")[1].split("</table>")[0]
    assert "HWS_type" not in ordinal and "HWS_tasks" in ordinal
    dashboard = client.get("/reliability/").get_data(as_text=True)
    assert "not computed for a nominal item" not in dashboard
