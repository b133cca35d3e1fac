"""Keyboard-first rating: a whole session scored and submitted without the mouse, and the keys
on items of any range, with N/A and with named categories (keys.js on a page of its own)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rater.extensions import db
from rater.rating.models import Assignment, Rating
from rater.study.instrument_store import current_versions, instrument_of
from tests.browser.test_rating_page import make_rater_with_sessions, wait_until_ready
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def instruments() -> list:
    return [instrument_of(v) for v in sorted(current_versions().values(), key=lambda v: v.code)]


def focused_item(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement.closest('[data-item]')?.dataset.item")


def tab_to(page: Page, element_id: str, limit: int = 40) -> None:
    for _ in range(limit):
        if page.evaluate("() => document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} not reached with Tab")


def test_a_whole_session_rated_with_the_keyboard_alone(
    live_server, browser_page, factory, artifacts
):
    page = browser_page
    make_rater_with_sessions(factory)
    page.goto(f"{live_server.url}/login")
    page.wait_for_function("() => document.activeElement.id === 'username'")  # autofocus
    page.keyboard.type("newbie")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("My queue")
    expect(page.get_by_role("link", name="My queue")).to_have_attribute("aria-current", "page")
    page.keyboard.press("Tab")  # the first Tab stop skips the navigation
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")  # following the link to #content moves focus there (a task)
    page.wait_for_function("() => document.activeElement.id === 'content'", timeout=5000)
    tab_to(page, "next-session")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Session P01-S01")
    wait_until_ready(page)

    items = [item for inst in instruments() for item in inst.items]
    codes = [item.code for item in items]
    page.keyboard.press("j")
    assert focused_item(page) == codes[0]
    page.keyboard.press("Tab")  # the full description is no Tab stop: the next item is
    assert focused_item(page) == codes[1]
    page.keyboard.press("k")
    description = page.locator(f"#item-{codes[0]} details")
    page.keyboard.press("d")
    expect(description).to_have_attribute("open", "")
    page.keyboard.press("d")
    expect(description).not_to_have_attribute("open", "")

    # The player's keys work while an item has the focus, and do not score it.
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('audio').currentTime > 0.3")
    page.keyboard.press("Space")
    assert page.evaluate("() => document.getElementById('audio').paused")
    before = page.evaluate("() => document.getElementById('audio').currentTime")
    page.keyboard.press("ArrowRight")
    after = page.evaluate("() => document.getElementById('audio').currentTime")
    assert after == pytest.approx(before + 5, abs=0.5)
    page.keyboard.press("]")
    page.keyboard.press("]")
    expect(page.locator("#speed")).to_have_value("1.5")  # the menu shows the speed
    assert page.evaluate("() => document.getElementById('audio').playbackRate") == 1.5
    expect(page.locator(f"#item-{codes[0]} input:checked")).to_have_count(0)

    # Score every item with the number keys, leaving one out: it is marked once passed.
    skipped = codes[2]
    first = instruments()[0]
    for i, code in enumerate(codes):
        assert focused_item(page) == code
        if code != skipped:
            page.keyboard.press(str(i % 5))
            expect(page.locator(f"#{code}-{i % 5}")).to_be_checked()
        if i == 3:
            expect(page.locator(f"#item-{skipped}")).to_have_class(re.compile(r"\bmissing\b"))
            counter = page.locator(f".count[data-count-for={first.code}]")
            expect(counter).to_have_text(f"3 of {len(first.items)} scored")
        if i < len(codes) - 1:
            page.keyboard.press("ArrowDown" if i % 2 else "j")
    na_radio = page.locator("[data-item] input[type=radio][value=na]")
    if na_radio.count():  # instruments with N/A: X chooses it
        code = na_radio.first.get_attribute("name")
        while focused_item(page) != code:
            page.keyboard.press("k")
        page.keyboard.press("x")
        expect(na_radio.first).to_be_checked()
    else:  # no N/A in these instruments: X says so and changes nothing
        page.keyboard.press("x")
        expect(page.locator("#keys-hint")).to_contain_text("cannot be marked not applicable")

    page.keyboard.press("m")  # the first missing item
    assert focused_item(page) == skipped
    page.keyboard.press("4")
    expect(page.locator(f"#item-{skipped}")).not_to_have_class(re.compile(r"\bmissing\b"))
    for inst in instruments():
        expect(page.locator(f".count[data-count-for={inst.code}]")).to_have_text(
            f"{len(inst.items)} of {len(inst.items)} scored"
        )

    # A note: N, type (digits go into the note, not a score), Enter; Esc back to the item.
    page.keyboard.press("n")
    page.keyboard.type("Reviews the diary 3 times")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    assert focused_item(page) == skipped
    expect(page.locator(f"#{skipped}-4")).to_be_checked()

    page.keyboard.press("?")
    expect(page.locator("#keys-sheet")).to_be_visible()
    page.screenshot(path=str(artifacts / "rating-page-keys.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#keys-sheet")).to_be_hidden()

    page.keyboard.press("s")  # to Submit; Enter opens the dialog on "Submit & next session"
    page.keyboard.press("Enter")
    expect(page.locator("#submit-dialog")).to_be_visible()
    assert page.evaluate("() => document.activeElement.id") == "submit-next"
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Session P01-S02")
    expect(page.locator(".flashes")).to_contain_text("Rating of P01-S01 submitted")
    wait_until_ready(page)

    db.session.expire_all()
    first_rating = db.session.scalars(
        db.select(Rating).join(Assignment).where(Assignment.purpose == "calibration")
    ).one()
    assert first_rating.status == "submitted"
    expected = {code: (4 if code == skipped else i % 5) for i, code in enumerate(codes)}
    assert {s.item_code: s.score for s in first_rating.scores} == expected
    assert [n.text for n in first_rating.notes] == ["Reviews the diary 3 times"]
    following = db.session.scalars(db.select(Assignment).where(Assignment.purpose == "main")).one()
    assert following.status == "in_progress" and following.rating is not None


FIXTURE = """<!doctype html><html lang="en"><head><title>keys</title></head><body>
<div id="root">
  <fieldset data-item="A" data-required="true"><legend>1-7 and N/A</legend>
    <details><summary tabindex="-1">Full description</summary><p>About A</p></details>
    {a}</fieldset>
  <fieldset data-item="B"><legend>0-10</legend>{b}</fieldset>
  <fieldset data-item="C"><legend>-3 to 3</legend>{c}</fieldset>
  <fieldset data-item="D"><legend>Categories</legend>{d}</fieldset>
  <fieldset data-item="E"><legend>Text</legend><textarea aria-label="E"></textarea></fieldset>
</div>
<script type="module">
  import {{ setupKeys }} from '/static/js/rating/keys.js';
  const root = document.getElementById('root');
  window.changes = [];
  root.addEventListener('change', (e) => {{
    if (e.target.type === 'radio') window.changes.push(e.target.name + '=' + e.target.value);
  }});
  setupKeys({{ root, editable: true, onMessage: (m) => {{ window.lastMessage = m; }} }});
  document.body.dataset.ready = 'true';
</script></body></html>"""


def radios(name: str, values: list[str]) -> str:
    return "".join(
        f'<label><input type="radio" name="{name}" value="{v}">{v}</label>' for v in values
    )


def test_number_keys_fit_any_range_na_and_categories(live_server, browser_page):
    """keys.js knows nothing of instruments: whatever radios an item offers, the keys fit."""
    page = browser_page
    html = FIXTURE.format(
        a=radios("A", [*map(str, range(1, 8)), "na"]),
        b=radios("B", [str(v) for v in range(0, 11)]),
        c=radios("C", [str(v) for v in range(-3, 4)]),
        d=radios("D", ["calm", "tense", "angry"]),
    )
    url = f"{live_server.url}/keys-fixture"
    page.route(url, lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", state="attached")
    checked = "(name) => document.querySelector(`input[name=${name}]:checked`)?.value ?? null"

    page.keyboard.press("j")  # the first item
    page.keyboard.press("5")
    assert page.evaluate(checked, "A") == "5"
    page.keyboard.press("x")  # N/A: the radio whose value is "na"
    assert page.evaluate(checked, "A") == "na"
    page.keyboard.press("9")  # no 9 on a 1-7 item: nothing changes, the rater is told
    assert page.evaluate(checked, "A") == "na"
    assert page.evaluate("() => window.lastMessage") == "A: no choice 9"
    page.keyboard.press("d")
    assert page.evaluate("() => document.querySelector('[data-item=A] details').open")

    page.keyboard.press("j")
    page.keyboard.press("1")
    page.keyboard.press("0")  # typed quickly after 1: ten
    assert page.evaluate(checked, "B") == "10"
    page.keyboard.press("x")  # this item has no N/A
    assert page.evaluate(checked, "B") == "10"
    assert "cannot be marked not applicable" in page.evaluate("() => window.lastMessage")

    page.keyboard.press("j")
    page.keyboard.press("-")
    page.keyboard.press("2")
    assert page.evaluate(checked, "C") == "-2"

    page.keyboard.press("j")
    page.keyboard.press("2")  # named choices: 2 = the second
    assert page.evaluate(checked, "D") == "tense"

    page.keyboard.press("j")  # a text item: the keys type into it
    page.keyboard.type("3 j k")
    assert page.evaluate("() => document.querySelector('textarea').value") == "3 j k"
    page.keyboard.press("Escape")  # back to item navigation
    page.keyboard.press("k")
    assert focused_item(page) == "D"
    changes = page.evaluate("() => window.changes")
    assert changes == ["A=5", "A=na", "B=1", "B=10", "C=-2", "D=tense"]  # each one announced
