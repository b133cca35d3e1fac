"""A coordinator's calibration and dashboard day in headless Chromium.

Turn the calibration gate on and draw the calibration sessions, commit the design through its
confirmation (main work is held by the closed gate), let the raters rate the calibration round
(one rating through the rating page, the others through the app's services), open the gate
through its confirmation and release the held work; the raters rate their main work; add a
rater account, see the allocation page name them as a rater without work and let them join
from there: the preview says they rate the calibration round first, and their queue holds only
the calibration sessions (their main work is held while the gate is on); read the reliability
dashboard: a coefficient with its
explanation, and the drift plot read by batch.
"""

from __future__ import annotations

import random
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from rater.auth.models import User
from rater.demo import DemoSizes, catalogue_csv
from rater.extensions import db
from rater.formatting import format_number
from rater.rating import service
from rater.rating.models import Assignment, ItemScore, Rating
from rater.reliability import consensus, plots
from rater.reliability.results import Estimate
from rater.states import AssignmentStatus, Purpose
from rater.study.catalogue import import_sessions
from rater.study.instrument_store import current_versions, instrument_of, sync_instruments
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

RATERS = ("r1", "r2", "r3")


def log_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def item_codes() -> list[str]:
    return [c for v in current_versions().values() for c in instrument_of(v).item_codes]


def calibration_score(session_index: int, item_index: int) -> int:
    """What every rater gives in the calibration round (they agree: the gate opens)."""
    return (item_index + 2 * session_index) % 5


def submit_through_services(assignments: list[Assignment], score_of) -> None:
    """Rate and submit as the rating page does: start, score every item, submit; one commit."""
    versions = sorted(current_versions().values(), key=lambda v: v.code)
    for a in assignments:
        rating = service.start_rating(a)
        for version in versions:
            for item in instrument_of(version).items:
                rating.scores.append(
                    ItemScore(
                        instrument_version_id=version.id,
                        item_code=item.code,
                        score=score_of(a, item.code),
                    )
                )
        db.session.flush()
        service.submit(rating)
    db.session.commit()


def assignments_of(*where) -> list[Assignment]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Assignment).join(User, Assignment.rater_id == User.id).where(*where)
        )
    )


def queue_codes(page: Page) -> list[str]:
    return page.locator("#g-todo + table tbody tr td[data-label=Session]").all_inner_texts()


def test_calibration_gate_join_and_dashboard(live_server, factory, new_page):
    sync_instruments()
    import_sessions(
        catalogue_csv(DemoSizes(therapists=2, patients=6)),
        "sessions.csv",
        live_server.app.config["RATER_AUDIO_DIR"],
    )
    factory.user("coord", "coordinator")
    for name in RATERS:
        factory.user(name)
    db.session.commit()
    url = live_server.url
    coordinator = new_page()
    coordinator.set_default_timeout(15_000)
    log_in(coordinator, url, "coord")

    # 1. The gate on (through its confirmation), then two calibration sessions drawn.
    coordinator.goto(f"{url}/allocation/calibration")
    coordinator.check("#enabled")
    coordinator.fill("#threshold", "0.75")
    coordinator.click("form[action$='/calibration/gate'] button[type=submit]")
    expect(coordinator.locator("h1")).to_have_text("Save the calibration gate?")
    expect(coordinator.locator(".confirm-summary")).to_contain_text(
        "The gate will hold main work until calibration reaches 0.75"
    )
    coordinator.click("text=Yes, save the gate")
    expect(coordinator.locator(".flash")).to_contain_text("Gate settings saved.")
    coordinator.fill("#n", "2")
    coordinator.check("#draw-exclude")
    coordinator.click("form[action$='/calibration/draw'] button[type=submit]")
    expect(coordinator.locator(".flash")).to_contain_text("6 assignment(s) created")
    expect(coordinator.locator(".gate")).to_contain_text("gate closed")
    calibration = sorted(
        assignments_of(Assignment.purpose == Purpose.CALIBRATION),
        key=lambda a: (a.session.code, a.rater.username),
    )
    sessions = sorted({a.session.code for a in calibration})
    assert len(calibration) == 6 and len(sessions) == 2

    # 2. The design, committed through its confirmation: the closed gate holds it.
    coordinator.goto(f"{url}/allocation/?double_fraction=0.4&seed=4")
    coordinator.click("text=Commit this design…")
    expect(coordinator.locator("h1")).to_have_text("Commit this design?")
    coordinator.click("text=Yes, commit the design")
    expect(coordinator.locator(".flash.success")).to_contain_text(
        "New work is held until you release it"
    )
    expect(coordinator.locator(".flash.error")).to_contain_text("The calibration gate is closed")
    held = assignments_of(Assignment.status == AssignmentStatus.HELD)
    assert len(held) > 30 and {a.purpose for a in held} == {"main", "double"}

    # 3. The calibration round: r1 rates the first session on the rating page ...
    r1 = new_page()
    log_in(r1, url, "r1")
    expect(r1.locator("h1")).to_have_text("My queue")
    assert queue_codes(r1) == sessions  # only calibration work: main work is held
    r1.click("#next-session")
    expect(r1.locator("h1")).to_have_text(f"Session {sessions[0]}")
    r1.wait_for_selector("#rating-page[data-ready=true]", state="attached")
    codes = item_codes()
    for i, code in enumerate(codes):
        r1.click(f"label.point:has(#{code}-{calibration_score(0, i)})")
    r1.click("#submit-open")
    expect(r1.locator("#submit-dialog")).to_be_visible()
    r1.click("#submit-confirm")
    expect(r1.locator("#locked-note")).to_be_visible()
    db.session.expire_all()
    first = db.session.scalar(
        select(Rating).join(Assignment).where(Assignment.id == calibration[0].id)
    )
    assert first is not None and first.status == "submitted"
    assert {s.item_code: s.score for s in first.scores} == {
        code: calibration_score(0, i) for i, code in enumerate(codes)
    }

    # ... the other five calibration ratings through the services (the same scores, so the
    # gate's ICC is high).
    coordinator.goto(f"{url}/allocation/calibration")
    expect(coordinator.locator(".gate")).to_contain_text("1 of 6 calibration assignments")
    rest = [a for a in assignments_of(Assignment.purpose == Purpose.CALIBRATION) if not a.rating]
    assert len(rest) == 5
    submit_through_services(
        rest,
        lambda a, code: calibration_score(sessions.index(a.session.code), codes.index(code)),
    )

    # 4. Open the gate through its confirmation and release the held work with it.
    coordinator.reload()
    gate = coordinator.locator(".gate")
    expect(gate).to_contain_text("6 of 6 calibration assignments finished")
    expect(gate).to_contain_text("gate open")
    expect(gate).to_contain_text("calibration complete")
    coordinator.click("form[action$='/calibration/gate'] button[type=submit]")
    expect(coordinator.locator("h1")).to_have_text("Save the calibration gate?")
    expect(coordinator.locator(".confirm")).to_contain_text(
        f"{len(held)} main assignments are held now"
    )
    coordinator.check("input[name=release]")
    coordinator.click("text=Yes, save the gate")
    flash = coordinator.locator(".flash.success")
    expect(flash).to_contain_text("Gate settings saved.")
    expect(flash).to_contain_text(f"Batch 1: {len(held)} assignments released")
    assert assignments_of(Assignment.status == AssignmentStatus.HELD) == []

    r1.goto(f"{url}/")
    expect(r1.locator("h1")).to_have_text("My queue")
    mine = assignments_of(User.username == "r1", Assignment.purpose.in_(Purpose.DESIGN))
    expect(r1.locator("#g-todo + table tbody tr")).to_have_count(len(mine))
    assert sorted(queue_codes(r1)) == sorted(a.session.code for a in mine)

    # 5. The raters rate their double-coded work (r3 a point above the others).
    double = {a.session_id for a in assignments_of(Assignment.purpose == Purpose.DOUBLE)}
    rng = random.Random(5)
    truth = {sid: rng.randrange(4) for sid in double}
    work = assignments_of(Assignment.session_id.in_(double), User.username.in_(RATERS))
    submit_through_services(
        work,
        lambda a, _code: min(
            4, truth[a.session_id] + (a.rater.username == "r3") + rng.randrange(2)
        ),
    )

    # 6. A new rater account, added in the browser (a password shown once) ...
    coordinator.click("nav >> text=Users")
    coordinator.fill("#new-username", "r4")
    coordinator.select_option("#new-role", "rater")
    coordinator.check("#add-user input[name=method][value=password]")
    coordinator.click("text=Add user")
    expect(coordinator.locator("h1")).to_have_text("Added rater r4")
    password = coordinator.input_value("#initial-password")

    # ... is named on the allocation page as an active rater without work, with the join.
    coordinator.goto(f"{url}/allocation/")
    idle = coordinator.locator(".idle-raters")
    expect(idle).to_contain_text("1 active rater without work: r4.")
    summary = coordinator.locator("section.card:has(h2:text('What committing changes'))")
    expect(summary).to_contain_text("Active rater r4 has no work in this design")
    expect(summary).not_to_contain_text("the assignments already match this design")
    idle.locator("text=Preview: r4 joins").click()
    expect(coordinator.locator("h1")).to_have_text("r4 joins allocation")
    expect(coordinator.locator(".badge.warn", has_text="preview only")).to_be_visible()
    expect(coordinator.locator("main")).to_contain_text("r4 rates 2 calibration sessions first")
    coordinator.click("text=Yes, apply this change")
    expect(coordinator.locator(".badge.ok")).to_contain_text("applied")
    coordinator.goto(f"{url}/allocation/")
    expect(coordinator.locator("h2:text('What committing changes')")).to_be_visible()
    expect(coordinator.locator(".idle-raters")).to_have_count(0)

    newcomer = new_page()
    log_in(newcomer, url, "r4", password)
    expect(newcomer.locator("h1")).to_have_text("My queue")
    theirs = assignments_of(User.username == "r4", Assignment.status == AssignmentStatus.PENDING)
    assert {a.purpose for a in theirs} == {"calibration"}  # the round first
    held_for_r4 = assignments_of(User.username == "r4", Assignment.status == AssignmentStatus.HELD)
    assert held_for_r4 and {a.purpose for a in held_for_r4} <= {"main", "double"}
    expect(newcomer.locator("#g-todo + table tbody tr")).to_have_count(len(theirs))
    assert sorted(queue_codes(newcomer)) == sessions

    # 7. The dashboard: a coefficient and its explanation; the drift plot by batch.
    rep = consensus.load_report(design="scales")
    mean = rep.summary("GHES", "GHES_score").statistics["mean"]
    assert isinstance(mean, Estimate)
    coordinator.click("nav >> text=Reliability")
    expect(coordinator.locator("h1")).to_have_text("Inter-rater reliability")
    ghes = coordinator.locator("section.card[aria-labelledby='inst-GHES']")
    row = ghes.locator("tbody tr:has(th:has-text('GHES score'))")
    expect(row.locator("td").nth(1)).to_contain_text(format_number(mean.value))
    header = ghes.locator("thead th:has-text('mean across pairs') a.term")
    expect(header).to_have_text("ICC(A,2)")
    expect(header).to_have_attribute("title", re.compile("agreement of the mean of two raters"))
    explanation = ghes.locator("details.explain")
    expect(explanation.locator("dd").first).not_to_be_visible()
    explanation.locator("summary").click()
    term = explanation.locator("dt:has-text('ICC(A,2)') + dd")
    expect(term).to_be_visible()
    expect(term).to_have_text("agreement of the mean of two raters (the study's ICC(2,2)).")
    header.click()
    expect(coordinator.locator("h1")).to_have_text("What the reliability pages show")
    expect(coordinator.locator("#icc-a2 + dd")).to_contain_text("(the pair mean)")

    coordinator.go_back()
    ghes = coordinator.locator("section.card[aria-labelledby='inst-GHES']")
    drift = ghes.locator("figure:has(figcaption:has-text('Drift on GHES score'))")
    expect(drift.locator("figcaption")).to_contain_text("by month of submission")
    drift.locator(".drift-by a:text-is('batch')").click()
    assert "drift=batch" in coordinator.url
    ghes = coordinator.locator("section.card[aria-labelledby='inst-GHES']")
    drift = ghes.locator("figure:has(figcaption:has-text('Drift on GHES score'))")
    expect(drift.locator("figcaption")).to_contain_text("from their partners by batch.")
    expect(drift.locator(".drift-by strong")).to_have_text("batch")
    image = drift.locator("img")
    expect(image).to_have_attribute("src", re.compile(r"drift\.svg\?by=batch$"))
    image.scroll_into_view_if_needed()
    coordinator.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    svg = coordinator.request.get(url + image.get_attribute("src"))
    text = svg.text()
    assert svg.ok and text.startswith("<svg")
    assert "batch 1" in text and ">batch<" in text and "no batch" not in text
    assert all(f">{name}<" in text for name in RATERS)  # one line per rater

    # The numbers behind the plot, on the measure's page: r3 (a point above the others)
    # drifts up in batch 1, and only r3.
    paired = rep.paired[rep.paired["measure"] == "GHES_score"]
    table = plots.drift_table(paired, by="batch")
    flagged = table[table["flagged"]]
    assert list(flagged["rater"]) == ["r3"] and list(flagged["period"]) == ["batch 1"]
    coordinator.goto(f"{url}/reliability/measure/GHES/GHES_score")
    coordinator.click("text=batch >> nth=-1")
    expect(coordinator.locator("strong[aria-current]")).to_have_text("batch")
    shift, n = format_number(flagged.iloc[0]["mean_difference"], signed=True), flagged.iloc[0]["n"]
    expect(coordinator.locator("section.card:has(h2:has-text('Drift'))")).to_contain_text(
        f"r3, batch 1: {shift} over {n} sessions"
    )
    # No request in flight when the server stops (the page draws its plots as it scrolls).
    coordinator.wait_for_load_state("networkidle")
    for page in (coordinator, r1, newcomer):
        page.context.close()
