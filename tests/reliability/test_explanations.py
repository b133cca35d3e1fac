"""The reliability pages explain what they show: every symbol links to the glossary, which
explains it; uncertain pair values carry a caution."""

from __future__ import annotations

import re

import pytest

from rater.reliability.glossary import TERMS


def _linked_terms(html: str) -> set[str]:
    return set(re.findall(r'href="/reliability/glossary#([a-z0-9-]+)"', html))


@pytest.mark.usefixtures("demo")
def test_every_linked_symbol_has_a_glossary_entry(client, auth):
    auth.login("coordinator", "demo-coordinator")
    glossary = client.get("/reliability/glossary").get_data(as_text=True)
    anchors = set(re.findall(r'<dt id="([a-z0-9-]+)"', glossary))
    assert anchors == {t.key for t in TERMS}
    pages = {
        "/reliability/": {"icc-a2", "icc-qk", "khat", "q", "pairs", "alpha-interval", "firm"},
        "/reliability/instrument/GHES": {"icc-a1", "alpha-ordinal", "cronbach", "omega"},
        "/reliability/measure/GHES/GHES_1": {"kappa", "mean-difference", "bland-altman"},
    }
    for url, expected in pages.items():
        linked = _linked_terms(client.get(url).get_data(as_text=True))
        assert expected <= linked, (url, expected - linked)
        assert linked <= anchors


@pytest.mark.usefixtures("shipped_demo")
def test_a_pair_from_few_sessions_carries_a_caution(client, auth):
    """The reference study's pairs share about 8 sessions each: values are flagged, and the
    dashboard also shows the summary over the firm pairs (there are none)."""
    auth.login("coordinator", "demo-coordinator")
    html = client.get("/reliability/measure/GHES/GHES_score").get_data(as_text=True)
    assert re.search(r'badge warn" title="only \d shared sessions', html)
    dashboard = client.get("/reliability/").get_data(as_text=True)
    firm = 'firm pairs</a> (0): <span class="muted">not enough data — no pair has 10+'
    assert firm in dashboard
