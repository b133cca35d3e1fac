"""A coordinator's day in headless Chromium: add a rater account that then logs in (through
the one-time link, and with a password shown once), and enter homework in a patient's grid."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from rater.extensions import db
from rater.rating.models import HomeworkEntry
from rater.study.instrument_store import sync_instruments
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

CHOSEN = "amber-kettle-seventy-lanes"


def log_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_a_coordinator_adds_a_rater_who_sets_a_password_and_logs_in(live_server, factory, new_page):
    factory.user("coord", "coordinator")
    url = live_server.url
    coordinator = new_page()
    log_in(coordinator, url, "coord", PASSWORD)
    coordinator.click("nav >> text=Users")
    coordinator.fill("#new-username", "rater9")
    coordinator.select_option("#new-role", "rater")
    coordinator.check("#add-user input[name=method][value=link]")
    coordinator.click("text=Add user")
    expect(coordinator.locator("h1")).to_have_text("Added rater rater9")
    link = coordinator.input_value("#set-password-link")
    assert link.startswith("http://") and "/set-password/" in link

    rater = new_page()
    rater.goto(link.replace("http://localhost", url))
    expect(rater.locator("h1")).to_have_text("Choose your password")
    rater.fill("#new-password", CHOSEN)
    rater.fill("#confirm-password", CHOSEN)
    rater.click("button[type=submit]")
    expect(rater.locator(".flash")).to_contain_text("Your password is set")
    log_in(rater, url, "rater9", CHOSEN)
    expect(rater.locator("h1")).to_have_text("My queue")
    expect(rater.locator("#queue-waiting")).to_contain_text("No sessions released to you yet")

    # A second rater with a password shown once; then deactivated, they cannot log in.
    coordinator.click("nav >> text=Users")
    coordinator.fill("#new-username", "rater10")
    coordinator.check("#add-user input[name=method][value=password]")
    coordinator.click("text=Add user")
    expect(coordinator.locator("h1")).to_have_text("Added rater rater10")
    shown = coordinator.input_value("#initial-password")
    other = new_page()
    log_in(other, url, "rater10", shown)
    expect(other.locator("h1")).to_have_text("My queue")
    coordinator.click("nav >> text=Users")
    coordinator.click("button[aria-label='Deactivate rater10']")
    expect(coordinator.locator(".flash")).to_contain_text("rater10 is deactivated")
    other.reload()
    expect(other.locator("h1")).to_have_text("Log in")


def test_a_coordinator_enters_homework_in_a_patients_grid(live_server, factory, browser_page):
    sync_instruments()
    db.session.commit()
    factory.user("coord", "coordinator")
    first = factory.session("P01-S01", number=1)
    second = factory.session("P01-S02", number=2)
    page = browser_page
    log_in(page, live_server.url, "coord", PASSWORD)
    page.click("nav >> text=Homework")
    page.click("a[title='All sessions of P01 in one grid'] >> nth=0")
    expect(page.locator("h1")).to_have_text("Homework assigned: patient P01")
    page.select_option(f"#n{first.id}-type", "behavioural")
    page.fill(f"#n{first.id}-description", "Plan two pleasant activities")
    page.fill(f"#n{second.id}-description", "Forgot the type")
    page.click("text=Save all")
    expect(page.locator(".flash.error")).to_contain_text("Nothing was saved")
    expect(page.locator(f"#n{first.id}-description")).to_have_value("Plan two pleasant activities")
    page.select_option(f"#n{second.id}-type", "self-monitoring")
    page.click("text=Save all")
    expect(page.locator(".flash.success")).to_contain_text("2 added")
    db.session.expire_all()
    stored = db.session.execute(
        select(HomeworkEntry.session_id, HomeworkEntry.homework_type).order_by(
            HomeworkEntry.session_id
        )
    ).all()
    assert [tuple(r) for r in stored] == [
        (first.id, "behavioural"),
        (second.id, "self-monitoring"),
    ]
