"""The rating page's answer to a save the server refuses (400, 413) or cannot take (5xx).

A refused save is never resent as it is: the page names the changes and why, keeps them on the
page and in localStorage, and saves again with the rater's next change. A 5xx is retried until
it goes through, so nothing typed is lost.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, Route, expect

from rater.extensions import db
from rater.rating.autosave import MAX_NOTE_LENGTH
from rater.rating.models import Note
from tests.browser.test_rating_page import (
    SAVED,
    current_rating,
    item_codes,
    log_in,
    make_rater_with_sessions,
    score,
    wait_until_ready,
)

pytestmark = [pytest.mark.browser]

# Longer than any first retry (1 s) and the debounce: a resend would have happened by then.
LONGER_THAN_A_RETRY_MS = 3000


def open_rating_page(page: Page, live_server, factory) -> list[str]:
    """Log in, open the first session; returns the list that collects autosave requests."""
    make_rater_with_sessions(factory)
    log_in(page, live_server.url)
    page.click("#next-session")
    wait_until_ready(page)
    saves: list[str] = []
    page.on("request", lambda r: saves.append(r.url) if r.url.endswith("/autosave") else None)
    return saves


def test_a_refused_save_is_named_kept_and_not_resent(live_server, browser_page, factory, artifacts):
    page = browser_page
    saves = open_rating_page(page, live_server, factory)
    page.fill("#note-text", "x" * (MAX_NOTE_LENGTH + 1))  # the server's limit, not the page's
    page.click("#note-add")
    banner = page.locator("#banner")
    expect(banner).to_contain_text("These changes were NOT saved: the note at 0:00", timeout=8000)
    expect(banner).to_contain_text(f"at most {MAX_NOTE_LENGTH} are allowed")
    expect(page.locator("#save-state")).to_have_text("Not saved — see the message above")
    page.screenshot(path=str(artifacts / "rating-page-refused-save.png"))
    page.wait_for_timeout(LONGER_THAN_A_RETRY_MS)
    assert len(saves) == 1, saves  # not resent

    page.reload()  # the refused change is still queued in localStorage and shown again
    wait_until_ready(page)
    note = page.locator("#note-list textarea")
    expect(note).to_have_value("x" * (MAX_NOTE_LENGTH + 1))
    expect(banner).to_contain_text("NOT saved", timeout=8000)

    note.fill("Reviews the diary")  # the rater corrects it: saving starts again
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=8000)
    assert [n.text for n in db.session.scalars(db.select(Note))] == ["Reviews the diary"]


def test_a_save_too_large_is_not_resent(live_server, browser_page, factory):
    page = browser_page
    saves = open_rating_page(page, live_server, factory)
    too_large = {"error": "The JSON body is larger than 2 MB.", "status": 413}
    body = json.dumps(too_large)
    page.route(
        "**/autosave",
        lambda route: route.fulfill(status=413, body=body, content_type="application/json"),
    )
    score(page, "GHES_1", 2)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("NOT saved: The JSON body is larger than 2 MB.", timeout=8000)
    expect(banner).to_contain_text("Shorten the longest notes")
    page.wait_for_timeout(LONGER_THAN_A_RETRY_MS)
    assert len(saves) == 1, saves
    page.unroute("**/autosave")
    score(page, "GHES_2", 3)  # the next change sends both
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=8000)
    assert {s.item_code: s.score for s in current_rating().scores} == {"GHES_1": 2, "GHES_2": 3}


def test_server_errors_are_retried_until_the_save_goes_through(live_server, browser_page, factory):
    page = browser_page
    saves = open_rating_page(page, live_server, factory)
    failures = {"left": 2}

    def fail_twice(route: Route) -> None:
        if failures["left"]:
            failures["left"] -= 1
            route.fulfill(status=500, body='{"error": "boom", "status": 500}',
                          content_type="application/json")  # fmt: skip
        else:
            route.continue_()

    page.route("**/autosave", fail_twice)
    score(page, "GHES_1", 4)
    expect(page.locator("#save-state")).to_contain_text("retrying", timeout=8000)
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=15000)
    assert len(saves) == 3
    assert {s.item_code: s.score for s in current_rating().scores} == {"GHES_1": 4}


IN_VIEW = """(el) => {
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
}"""


def test_a_two_tab_conflict_offers_reload_where_the_rater_is(
    live_server, browser_context, browser_page, factory, artifacts
):
    first = browser_page
    open_rating_page(first, live_server, factory)
    second = browser_context.new_page()
    second.goto(first.url)
    wait_until_ready(second)
    last = item_codes()[-1]
    score(first, last, 1)
    expect(first.locator("#save-state")).to_have_text(SAVED, timeout=8000)

    score(second, last, 3)  # far down the page, changed meanwhile in the first tab
    toast = second.locator("#banner")
    expect(toast).to_be_visible(timeout=8000)
    expect(second.locator("#save-state")).to_have_text("Not saved — changed in another tab")
    assert toast.evaluate(IN_VIEW), "the conflict's message is out of view"
    reload = toast.get_by_role("button", name="Reload the page")
    assert reload.evaluate(IN_VIEW)
    second.screenshot(path=str(artifacts / "rating-page-conflict-toast.png"))
    reload.click()
    wait_until_ready(second)
    expect(second.locator(f"#{last}-1")).to_be_checked()  # what the first tab saved
