"""A new rater rates a session in headless Chromium, end to end, and survives going offline."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rater.extensions import db
from rater.rating.models import HomeworkEntry, Note, Rating
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser]

SAVED = "All changes saved"


def item_codes() -> list[str]:
    from rater.study.instrument_store import current_versions, instrument_of

    return [c for v in current_versions().values() for c in instrument_of(v).item_codes]


def make_rater_with_sessions(factory):
    rater = factory.user("newbie")
    first = factory.session("P01-S01", number=1)
    second = factory.session("P01-S02", number=2, audio="demo-session-b.ogg")
    factory.assignment(first, rater, purpose="calibration")
    factory.assignment(second, rater)
    return rater


def log_in(page: Page, url: str, username: str = "newbie") -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("My queue")


def wait_until_ready(page: Page) -> None:
    """The page's scripts have run (the initial indicator text is rendered by the server)."""
    page.wait_for_selector("#rating-page[data-ready=true]", state="attached")


def score(page: Page, code: str, value: int) -> None:
    page.click(f"label.point:has(#{code}-{value})")


def assert_no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"page is {width}px wide"


def audio_time(page: Page) -> float:
    return page.evaluate("document.getElementById('audio').currentTime")


def current_rating() -> Rating:
    db.session.expire_all()
    return db.session.scalars(db.select(Rating)).one()


def test_a_new_rater_rates_a_session_end_to_end(live_server, browser_page, factory, artifacts):
    page = browser_page
    make_rater_with_sessions(factory)
    log_in(page, live_server.url)
    assert_no_horizontal_scroll(page)
    page.screenshot(path=str(artifacts / "queue.png"))
    page.click("#next-session")  # the first queued session: the calibration one
    expect(page.locator("h1")).to_have_text("Session P01-S01")
    wait_until_ready(page)
    assert_no_horizontal_scroll(page)

    # Play, see the time advance, pause; seek with the buttons and the keyboard.
    page.click("#play")
    page.wait_for_function("() => document.getElementById('audio').currentTime > 0.5")
    expect(page.locator("#elapsed")).not_to_have_text("0:00", timeout=5000)
    page.click("#play")
    page.click("[data-jump='30']")
    assert audio_time(page) >= 30
    page.keyboard.press("ArrowLeft")
    assert 25 <= audio_time(page) < 30

    # Two timestamped notes, at two different times.
    page.fill("#note-text", "Reviews the activity diary")
    page.click("#note-add")
    page.click("[data-jump='30']")
    page.keyboard.press("n")  # shortcut: note at the current time
    page.keyboard.type("Plans next homework")
    page.keyboard.press("Enter")
    expect(page.locator("#note-list .note")).to_have_count(2)
    times = page.locator("#note-list .note-time").all_inner_texts()
    assert times == sorted(times) and times[0] != times[1]

    # Score the first half of the items, then reload: everything must come back.
    codes = item_codes()
    half = len(codes) // 2
    for i, code in enumerate(codes[:half]):
        score(page, code, i % 5)
    page.click("#hw-add")
    page.fill(".hw-entry input[type=text]", "Activity diary")
    hw_type = page.locator(".hw-entry select").first
    expect(hw_type).to_have_value("")  # nothing preselected: the rater chooses the type
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=5000)
    assert db.session.scalars(db.select(HomeworkEntry)).all() == []  # not without a type
    hw_type.select_option("behavioural")
    page.check("#difficulties input[value='lack of time']")
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=5000)
    position = audio_time(page)
    page.screenshot(path=str(artifacts / "rating-page-draft.png"), full_page=False)
    page.reload()
    wait_until_ready(page)
    expect(page.locator("#note-list .note")).to_have_count(2)
    for i, code in enumerate(codes[:half]):
        expect(page.locator(f"#{code}-{i % 5}")).to_be_checked()
    expect(page.locator(".hw-entry input[type=text]")).to_have_value("Activity diary")
    expect(page.locator(".hw-entry select").first).to_have_value("behavioural")
    expect(page.locator("#difficulties input[value='lack of time']")).to_be_checked()
    page.wait_for_function("() => document.getElementById('audio').readyState >= 1")
    assert abs(audio_time(page) - position) < 1  # resumes where the rater left off

    # Score the rest but one; submitting names the missing item.
    for i, code in enumerate(codes[half:-1]):
        score(page, code, (i + 1) % 5)
    page.click("#submit-open")
    missing = page.locator("#missing")
    expect(missing).to_be_visible()
    expect(missing).to_contain_text(codes[-1])
    expect(page.locator(f"#item-{codes[-1]}")).to_have_class(re.compile("missing"))
    page.screenshot(path=str(artifacts / "rating-page-missing.png"), full_page=False)

    # Complete and submit: confirm, then the page is locked.
    score(page, codes[-1], 4)
    page.click("#submit-open")
    expect(page.locator("#submit-dialog")).to_be_visible()
    page.click("#submit-confirm")
    expect(page.locator("#locked-note")).to_be_visible()
    expect(page.locator(f"#{codes[0]}-0")).to_be_disabled()
    assert page.locator("#submit-open").count() == 0
    assert_no_horizontal_scroll(page)
    page.screenshot(path=str(artifacts / "rating-page-submitted.png"), full_page=True)

    rating = current_rating()
    assert rating.status == "submitted" and len(rating.scores) == len(codes)
    assert {n.text for n in rating.notes} == {"Reviews the activity diary", "Plans next homework"}
    assert rating.active_seconds >= 1


def test_autosave_survives_an_offline_period_and_a_closed_tab(
    live_server, browser_context, browser_page, factory, artifacts
):
    page = browser_page
    make_rater_with_sessions(factory)
    log_in(page, live_server.url)
    page.click("#next-session")
    wait_until_ready(page)
    url = page.url

    browser_context.set_offline(True)
    score(page, "GHES_1", 1)
    score(page, "GHES_2", 2)
    page.fill("#note-text", "Said while offline")
    page.click("#note-add")
    expect(page.locator("#save-state")).to_contain_text("Not saved — retrying", timeout=8000)
    page.screenshot(path=str(artifacts / "rating-page-offline.png"))
    score(page, "GHES_3", 3)  # a change made while retrying is kept as well
    page.close()  # the tab is closed before the connection comes back

    browser_context.set_offline(False)
    page = browser_context.new_page()
    page.goto(url)
    wait_until_ready(page)
    expect(page.locator("#GHES_1-1")).to_be_checked()  # restored from the unsent queue
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=8000)
    rating = current_rating()
    assert {s.item_code: s.score for s in rating.scores} == {"GHES_1": 1, "GHES_2": 2, "GHES_3": 3}
    assert [n.text for n in db.session.scalars(db.select(Note))] == ["Said while offline"]
    assert rating.assignment.status == "in_progress"
