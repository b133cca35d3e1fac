"""A coordinator's day with batches in headless Chromium: plan and commit the design through
its confirmation, release a first batch of 5 sessions per rater, and a rater's queue shows
those 5 in the shuffled order (no two sessions of one patient in a row)."""

from __future__ import annotations

import itertools

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from rater.auth.models import User
from rater.demo import DemoSizes, catalogue_csv
from rater.extensions import db
from rater.rating.models import Assignment
from rater.states import AssignmentStatus
from rater.study.catalogue import import_sessions
from tests.browser.test_accessibility import serious_violations
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_commit_with_confirmation_then_release_five_per_rater(live_server, factory, new_page):
    import_sessions(
        catalogue_csv(DemoSizes(therapists=2, patients=6)),
        "sessions.csv",
        live_server.app.config["RATER_AUDIO_DIR"],
    )
    factory.user("coord", "coordinator")
    for name in ("r1", "r2", "r3"):
        factory.user(name)
    db.session.commit()
    url = live_server.url
    coordinator = new_page()
    log_in(coordinator, url, "coord")
    coordinator.goto(f"{url}/allocation/?double_fraction=0.4&seed=4")
    coordinator.click("text=Commit this design…")
    expect(coordinator.locator("h1")).to_have_text("Commit this design?")
    summary = coordinator.locator(".confirm-summary")
    expect(summary).to_contain_text("assignments will be created, 0 will be moved")
    expect(summary).to_contain_text("no started work is touched")
    assert db.session.scalar(select(Assignment.id).limit(1)) is None  # nothing written yet
    assert serious_violations(coordinator) == []  # the confirmation pages pass axe too
    coordinator.check("input[name=release_in_batches]")
    coordinator.click("text=Yes, commit the design")
    expect(coordinator.locator("h1")).to_have_text("Batches")
    expect(coordinator.locator(".flash")).to_contain_text("New work is held until you release it")

    coordinator.fill("#per_rater", "5")
    coordinator.click("text=Preview the release")
    expect(coordinator.locator("h1")).to_have_text("Release this batch?")
    expect(coordinator.locator(".confirm-summary")).to_contain_text(
        "Batch 1 will release 15 assignments (r1 5, r2 5, r3 5)"
    )
    assert serious_violations(coordinator) == []
    coordinator.click("text=Yes, release batch 1")
    expect(coordinator.locator(".flash")).to_contain_text("Batch 1: 15 assignments released")
    expect(coordinator.locator("table.batches")).to_contain_text("0 of 15")

    rater = new_page()
    log_in(rater, url, "r1")
    expect(rater.locator("h1")).to_have_text("My queue")
    todo = rater.locator("#g-todo + table tbody tr td[data-label=Session]")
    expect(todo).to_have_count(5)
    shown = todo.all_inner_texts()
    db.session.expire_all()
    r1 = db.session.scalar(select(User.id).where(User.username == "r1"))
    released = db.session.scalars(
        select(Assignment)
        .where(Assignment.rater_id == r1, Assignment.status == AssignmentStatus.PENDING)
        .order_by(Assignment.queue_order)
    ).all()
    assert shown == [a.session.code for a in released]
    patients = [code.split("-")[0] for code in shown]
    assert all(a != b for a, b in itertools.pairwise(patients))
    assert shown != sorted(shown)  # shuffled, not session order
