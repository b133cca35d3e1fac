"""A rater rates the example competence scale (0-6, anchors on even points) and the coding sheet
(1-5 with N/A, a category, a count, a text) in headless Chromium at 1366x768."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rater.extensions import db
from rater.instruments import NOT_APPLICABLE
from rater.rating.models import Rating
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

SAVED = "All changes saved"
TCS = [f"TCS_{i}" for i in range(1, 12)]


def _log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", "rater1")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("My queue")


def _point(page: Page, code: str, index: int) -> None:
    """Click the visible box of a choice (the radio itself is hidden), as a rater does."""
    page.click(f"label.point:has(#{code}-{index})")


def _rating() -> Rating:
    db.session.expire_all()
    return db.session.scalars(db.select(Rating)).one()


def test_rating_the_example_scales(live_server, browser_page, factory, artifacts):
    page = browser_page
    rater = factory.user("rater1")
    factory.assignment(factory.session("P01-S01"), rater)
    _log_in(page, live_server.url)
    page.click("#next-session")
    page.wait_for_selector("#rating-page[data-ready=true]", state="attached")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366

    for point in range(7):  # every point of a 0-6 item is clickable, anchored or not
        _point(page, "TCS_1", point)
        expect(page.locator(f"#TCS_1-{point}")).to_be_checked()
    expect(page.locator("label.point:has(#TCS_1-2)")).to_contain_text("set by the therapist")
    expect(page.locator("label.point:has(#TCS_1-3) .anchor")).to_have_count(0)
    for i, code in enumerate(TCS[1:-1], start=1):
        _point(page, code, i % 7)
    _point(page, "HWS_rationale", "na")
    page.click("label.category:has(#HWS_type-2)")  # cognitive
    page.fill("#HWS_tasks", "3")
    page.fill("#HWS_comment", "Clear plan")
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=8000)
    page.screenshot(path=str(artifacts / "rating-any-scale.png"), full_page=True)

    page.click("#submit-open")  # TCS_11 is still open
    missing = page.locator("#missing")
    expect(missing).to_be_visible()
    expect(missing).to_contain_text("TCS_11")
    expect(missing).not_to_contain_text("HWS_rationale")  # N/A counts as answered
    expect(page.locator("#item-TCS_11")).to_have_class(re.compile("missing"))

    _point(page, "HWS_rationale", 3)  # from N/A to a score and back
    expect(page.locator("#HWS_rationale-na")).not_to_be_checked()
    _point(page, "HWS_rationale", "na")
    _point(page, "TCS_11", 6)
    page.click("#submit-open")
    expect(page.locator("#submit-dialog")).to_be_visible()
    page.click("#submit-confirm")
    expect(page.locator("#locked-note")).to_be_visible()

    answers = {s.item_code: s.answer for s in _rating().scores}
    assert answers == {
        "TCS_1": 6,
        **{code: i % 7 for i, code in enumerate(TCS[1:-1], start=1)},
        "TCS_11": 6,
        "HWS_rationale": NOT_APPLICABLE,
        "HWS_type": "cognitive",
        "HWS_tasks": 3,
        "HWS_comment": "Clear plan",
    }
