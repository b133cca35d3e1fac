"""The queue and the rating page on a tablet (800 px) and a phone (390 px): no horizontal
scrolling, every anchor read in full, the options stacked, and a mini player in reach."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_rating_page import log_in, make_rater_with_sessions, wait_until_ready

pytestmark = pytest.mark.browser

SCREENS = {"tablet": (800, 1000), "phone": (390, 844)}

CLIPPED_ANCHORS = """() => [...document.querySelectorAll('.point .anchor')].filter((el) => {
  const r = el.getBoundingClientRect();
  return el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1
    || r.left < 0 || r.right > window.innerWidth;
}).map((el) => el.textContent)"""
STACKED = """() => [...document.querySelectorAll('[data-item]')].every((item) => {
  const points = [...item.querySelectorAll('.point')];
  const lefts = points.map((p) => Math.round(p.getBoundingClientRect().left));
  return new Set(lefts).size === 1;
})"""
IN_VIEW = """(selector) => {
  const r = document.querySelector(selector).getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0
    && r.right <= window.innerWidth;
}"""


def assert_no_horizontal_scroll(page: Page, where: str) -> None:
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{where}: the page is {width}px wide in a {inner}px window"


def audio_time(page: Page) -> float:
    return page.evaluate("document.getElementById('audio').currentTime")


def test_queue_and_rating_page_on_tablet_and_phone(live_server, browser_page, factory, artifacts):
    page = browser_page
    make_rater_with_sessions(factory)
    log_in(page, live_server.url)
    page.click("#next-session")
    wait_until_ready(page)
    rate_url = page.url
    for name, (width, height) in SCREENS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/queue")
        assert_no_horizontal_scroll(page, f"queue at {width}px")
        page.screenshot(path=str(artifacts / f"queue-{name}.png"), full_page=True)

        page.goto(rate_url)
        wait_until_ready(page)
        assert_no_horizontal_scroll(page, f"rating page at {width}px")
        assert page.evaluate(CLIPPED_ANCHORS) == []
        assert page.evaluate(STACKED), f"options side by side at {width}px"
        page.screenshot(path=str(artifacts / f"rating-page-{name}.png"), full_page=False)

        # Scrolled to the very end, the mini player is in view and works; nothing hides under it.
        page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
        for control in ("#play", "[data-jump='-5']", "[data-jump='5']", "#elapsed", "#speed"):
            assert page.evaluate(IN_VIEW, control), f"{control} out of view at {width}px"
        player_top = page.evaluate("document.querySelector('.player').getBoundingClientRect().top")
        finish_bottom = page.evaluate(
            "document.querySelector('.finish').getBoundingClientRect().bottom"
        )
        assert finish_bottom <= player_top, "the end of the page stays under the mini player"
        page.screenshot(path=str(artifacts / f"rating-page-{name}-end.png"), full_page=False)
        start = audio_time(page)
        page.click("[data-jump='5']")
        assert audio_time(page) == pytest.approx(start + 5, abs=0.5)
        page.click("#play")
        page.wait_for_function(
            f"() => document.getElementById('audio').currentTime > {start + 5.3}"
        )
        expect(page.locator("#play")).to_have_text("Pause")
        page.click("#play")
        expect(page.locator("#elapsed")).not_to_have_text("0:00")
        page.click("[data-jump='-5']")
        assert audio_time(page) < start + 5
