"""A coder codes a session with the keyboard in headless Chromium: 20 events, one re-coded, one
deleted, an undo, an offline stretch, a reload: all 19 events are there, once each."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from rater.extensions import db
from rater.rating.models import CodedEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

SAVED = "All changes saved"
KEYS = "artovearto" * 2  # point codes: ASSIGN, RATIONALE, TAILOR, OBSTACLE, REVIEW, EFFICACY


def log_in_and_open(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", "coder")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.click("#next-session")
    page.wait_for_selector("#rating-page[data-ready=true]", state="attached")
    page.wait_for_selector("#coding-panel[data-ready=true]", state="attached")


def press_at(page: Page, seconds: float, key: str) -> None:
    page.evaluate(f"document.getElementById('audio').currentTime = {seconds}")
    page.keyboard.press(key)


def stored() -> list[tuple[str, str, float]]:
    db.session.expire_all()
    rows = db.session.scalars(select(CodedEvent).order_by(CodedEvent.time_s))
    return [(e.client_id, e.code, e.time_s) for e in rows]


def test_coding_with_keys_survives_offline_and_reload(
    live_server, browser_page, browser_context, factory, artifacts
):
    page = browser_page
    coder = factory.user("coder")
    factory.assignment(factory.session("P01-S01", number=1), coder)
    log_in_and_open(page, live_server.url)
    expect(page.locator("#coding-panel")).to_be_visible()
    page.wait_for_selector("#coding-panel[data-waveform=true]", state="attached")

    # Keys do nothing until coding mode is on, and never in a text field.
    page.keyboard.press("a")
    expect(page.locator("#tally-total")).to_have_text("0")
    page.click("#coding-mode")
    # Space right after turning coding on plays the audio; it does not press the toggle again.
    page.keyboard.press(" ")
    expect(page.locator("#coding-mode")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("() => !document.getElementById('audio').paused")
    page.keyboard.press(" ")
    page.wait_for_function("() => document.getElementById('audio').paused")
    page.focus("#note-text")
    page.keyboard.press("a")
    expect(page.locator("#tally-total")).to_have_text("0")
    page.locator("#note-text").fill("")
    page.click("#coding-h")  # focus away from the text field

    page.click("#play")
    page.wait_for_function("() => document.getElementById('audio').currentTime > 0.2")
    for i, key in enumerate(KEYS[:15]):
        press_at(page, 2 + 3 * i, key)
    expect(page.locator("#tally-total")).to_have_text("15")
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=8000)
    assert len(stored()) == 15

    browser_context.set_offline(True)
    for i, key in enumerate(KEYS[15:], start=15):
        press_at(page, 2 + 3 * i, key)
    expect(page.locator("#tally-total")).to_have_text("20")
    expect(page.locator(".wave-marker")).to_have_count(20)
    # re-code the first event (ASSIGN at 2 s) as REVIEW
    page.click("#event-list li >> nth=0")
    page.select_option("#recode", "REVIEW")
    # delete the second (RATIONALE at 5 s)
    page.click("#event-list li >> nth=1")
    page.click("#delete-event")
    # one more event, undone with Ctrl-Z
    press_at(page, 66, "e")
    expect(page.locator("#tally-total")).to_have_text("20")
    page.keyboard.press("Control+z")
    expect(page.locator("#tally-total")).to_have_text("19")
    expect(page.locator("#save-state")).to_contain_text("Not saved — retrying", timeout=8000)
    page.screenshot(path=str(artifacts / "coding-offline.png"))

    browser_context.set_offline(False)
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=10000)
    page.reload()
    page.wait_for_selector("#coding-panel[data-ready=true]", state="attached")
    expect(page.locator("#event-list li")).to_have_count(19)
    expect(page.locator("#tally-total")).to_have_text("19")
    reviews, rationales = KEYS.count("v") + 1, KEYS.count("r") - 1  # re-coded, deleted
    expect(page.locator('[data-tally="REVIEW"]')).to_have_text(str(reviews))
    expect(page.locator('[data-tally="RATIONALE"]')).to_have_text(str(rationales))
    page.screenshot(path=str(artifacts / "coding-reloaded.png"))

    events = stored()
    assert len(events) == 19 and len({cid for cid, _, _ in events}) == 19
    # The audio plays on between the seek and the key press: times are the seek's plus the
    # few hundredths a busy machine takes to deliver the key.
    assert events[0][1] == "REVIEW" and events[0][2] == pytest.approx(2.0, abs=0.25)
    assert not [t for _, _, t in events if abs(t - 5.0) < 0.25]

    # A marker seeks the audio to its event.
    page.click("#event-list li >> nth=3")
    assert abs(page.evaluate("document.getElementById('audio').currentTime") - events[3][2]) < 0.5
    # ... and so does a marker on the waveform.
    page.evaluate("document.getElementById('audio').currentTime = 0")
    last_review = max(t for _, code, t in events if code == "REVIEW")
    page.click(f'.wave-marker[title="REVIEW at 0:{int(last_review):02d}"]')
    assert abs(page.evaluate("document.getElementById('audio').currentTime") - last_review) < 0.5
    expect(page.locator("#selected-label")).to_contain_text("REVIEW")


def stored_notes() -> list[tuple[str, str]]:
    db.session.rollback()  # a new transaction sees what the server committed since
    rows = db.session.scalars(select(CodedEvent).order_by(CodedEvent.time_s))
    return [(e.code, e.note) for e in rows]


def notes_stored_become(expected: list[tuple[str, str]], timeout: float = 8.0) -> None:
    """Wait until the events' notes in the database are ``expected`` (the page saves them a
    moment after the change: 'All changes saved' may still show the previous save)."""
    deadline = time.monotonic() + timeout
    while (notes := stored_notes()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert notes == expected


def test_the_selected_events_note_is_edited_saved_and_restored(
    live_server, browser_page, factory, artifacts
):
    page = browser_page
    coder = factory.user("coder")
    factory.assignment(factory.session("P01-S01", number=1), coder)
    log_in_and_open(page, live_server.url)
    page.click("#coding-mode")
    press_at(page, 3, "a")
    press_at(page, 8, "r")
    expect(page.locator("#tally-total")).to_have_text("2")
    page.click("#event-list li >> nth=0")
    expect(page.locator("#event-note")).to_have_value("")
    page.fill("#event-note", "assigned a reading with a date")  # 'a' and 'r' must not code
    page.press("#event-note", "Enter")
    expect(page.locator("#tally-total")).to_have_text("2")
    expect(page.locator("#event-list li >> nth=0")).to_contain_text("assigned a reading")
    notes_stored_become([("ASSIGN", "assigned a reading with a date"), ("RATIONALE", "")])
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=8000)

    # Typing a note, then selecting another event, saves the note of the event it was for.
    page.fill("#event-note", "changed")
    page.click("#event-list li >> nth=1")
    expect(page.locator("#event-note")).to_have_value("")
    notes_stored_become([("ASSIGN", "changed"), ("RATIONALE", "")])
    expect(page.locator("#save-state")).to_have_text(SAVED, timeout=8000)
    page.screenshot(path=str(artifacts / "coding-note.png"))

    page.reload()
    page.wait_for_selector("#coding-panel[data-ready=true]", state="attached")
    expect(page.locator("#event-list li >> nth=0")).to_contain_text("changed")
    page.click("#event-list li >> nth=0")
    expect(page.locator("#event-note")).to_have_value("changed")
