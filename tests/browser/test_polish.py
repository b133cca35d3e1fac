"""Layout checks in headless Chromium found on a new user's walkthrough: the event-agreement
timeline's labels never overlap, a coding sheet's progress counts its events, and on a phone the
save indicator never floats over the waveform."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rater.extensions import db
from rater.rating import service
from rater.timeutil import utcnow
from tests.coding.test_import_export import HEADER, run_import
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CODING_SHEET = ROOT / "instruments" / "examples" / "homework_coding.toml"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def app_config(app_config, tmp_path: Path):
    """The reference instruments plus the example coding sheet (HWC)."""
    folder = tmp_path / "instruments"
    folder.mkdir()
    for path in [*(ROOT / "instruments").glob("*.toml"), CODING_SHEET]:
        shutil.copy(path, folder / path.name)
    app_config.RATER_INSTRUMENTS_DIR = str(folder)
    app_config.RATER_PEAKS_DIR = str(tmp_path / "peaks")
    return app_config


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def open_first_session(page: Page, url: str, username: str) -> None:
    log_in(page, url, username)
    page.click("#next-session")
    page.wait_for_selector("#rating-page[data-ready=true]", state="attached")
    page.wait_for_selector("#coding-panel[data-ready=true]", state="attached")


# --- 1. the event-agreement timeline ------------------------------------------------------------

CODES = ("ASSIGN", "RATIONALE", "TAILOR", "OBSTACLE", "REVIEW", "EFFICACY")


@pytest.fixture
def crowded_double_coding(factory, runner, tmp_path):
    """Two coders of one 68 s session with an event every 0.8 s from 5 to 37 s."""
    factory.user("coord", "coordinator")
    ann, bob = factory.user("ann"), factory.user("bob")
    session = factory.session("P01-S01", number=1)
    for rater, purpose in ((ann, "main"), (bob, "double")):
        rating = service.start_rating(factory.assignment(session, rater, purpose))
        rating.status, rating.submitted_at = "submitted", utcnow()
    db.session.commit()
    rows = []
    for i in range(40):
        t = 5 + 0.8 * i
        rows.append(f"ann,{CODES[i % 6]},{t:.1f}")
        rows.append(f"bob,{CODES[(i + i // 7) % 6]},{t + 0.3:.1f}")
    text = HEADER + "".join(f"P01-S01,{r},,\n" for r in rows)
    assert run_import(runner, tmp_path, text).exit_code == 0
    return len(rows)


BOXES = """() => [...document.querySelectorAll('#agreement-timeline text')].map((t) => {
  const r = t.getBoundingClientRect();
  const g = t.closest('g.mark');
  return {label: t.textContent, lane: g ? g.dataset.lane : 'axis',
          left: r.left, right: r.right, top: r.top, bottom: r.bottom};
})"""


def _overlaps(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and (b["top"] < a["bottom"])
    )


@pytest.mark.parametrize("width", [1280, 800])
def test_agreement_timeline_labels_never_overlap(
    live_server, browser_page, crowded_double_coding, artifacts, width
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "coord")
    page.goto(f"{live_server.url}/coding/agreement/P01-S01")
    timeline = page.locator("#agreement-timeline")
    timeline.screenshot(path=str(artifacts / f"agreement-timeline-{width}.png"))

    # Every event keeps its mark and its tooltip, labelled or not.
    marks = page.locator("#agreement-timeline g.mark")
    expect(marks).to_have_count(crowded_double_coding)
    titles = page.eval_on_selector_all(
        "#agreement-timeline g.mark", "gs => gs.map((g) => g.querySelector('title')?.textContent)"
    )
    assert all(titles) and all(" at " in t for t in titles)

    boxes = page.evaluate(BOXES)
    labels = [b for b in boxes if b["lane"] != "axis" and b["label"] not in ("A", "B")]
    assert {b["lane"] for b in labels} == {"0", "1"}, "both coders keep labels"
    clashes = [
        (a["label"], b["label"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if _overlaps(a, b)
    ]
    assert clashes == [], f"{len(clashes)} overlapping labels, e.g. {clashes[:3]}"
    # Labels stay inside the drawing.
    frame = timeline.bounding_box()
    assert frame is not None
    for b in boxes:
        assert frame["y"] - 0.5 <= b["top"] and b["bottom"] <= frame["y"] + frame["height"] + 0.5


# --- 2. a coding sheet's progress on the rating page ---------------------------------------------


def test_coding_sheet_progress_counts_events_and_is_never_complete(
    live_server, browser_page, factory
):
    page = browser_page
    coder = factory.user("coder")
    factory.assignment(factory.session("P01-S01", number=1), coder)
    open_first_session(page, live_server.url, "coder")
    counters = page.locator("[data-events-for=HWC]")
    expect(counters).to_have_count(2)  # the progress card and the sheet's heading
    expect(counters.first).to_have_text("0 events coded")
    expect(page.get_by_text("0 of 0 scored")).to_have_count(0)

    page.click("#coding-mode")
    page.keyboard.press("a")
    expect(page.locator("#tally-total")).to_have_text("1")
    for i in range(2):
        expect(counters.nth(i)).to_have_text("1 event coded")
        expect(counters.nth(i)).not_to_have_class("complete")
    page.keyboard.press("r")
    expect(counters.first).to_have_text("2 events coded")
    expect(page.locator("[data-count-for=GHES]").first).to_have_text(
        re.compile(r"^0 of \d+ scored$")
    )


# --- 5. the save indicator on a phone -----------------------------------------------------------

RECTS = """() => Object.fromEntries(['#save-state', '#waveform', '.player'].map((s) => {
  const r = document.querySelector(s).getBoundingClientRect();
  return [s, {left: r.left, right: r.right, top: r.top, bottom: r.bottom}];
}))"""


def test_save_indicator_never_covers_the_waveform_on_a_phone(
    live_server, browser_page, factory, artifacts
):
    page = browser_page
    page.set_viewport_size(PHONE)
    coder = factory.user("coder")
    factory.assignment(factory.session("P01-S01", number=1), coder)
    open_first_session(page, live_server.url, "coder")
    expect(page.locator("#save-state")).to_be_visible()
    height = page.evaluate("document.scrollingElement.scrollHeight")
    for y in range(0, height, 120):
        page.evaluate(f"window.scrollTo(0, {y})")
        r = page.evaluate(RECTS)
        badge, wave, bar = r["#save-state"], r["#waveform"], r[".player"]
        wave["bottom"] = min(wave["bottom"], bar["top"])  # the part the bottom bar leaves in view
        assert not _overlaps(badge, wave), f"the save indicator covers the waveform at {y}px"
        # It sits in the bottom bar, so it never covers any of the page's content.
        assert bar["top"] <= badge["top"] and badge["bottom"] <= bar["bottom"]
        assert badge["left"] >= 0 and badge["right"] <= PHONE["width"]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "rating-page-phone-save-state.png"))
