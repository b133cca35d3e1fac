"""axe-core finds no serious or critical violation on any page, for either role, and no page
asks for a file that is not there (the favicon).

Every GET page of the URL map that the permission table lets the role see is loaded in Chromium
(the HTML ones: files, audio and images are left out) and axe-core (vendored, tests/assets) runs
on it. The world is the permission matrix's, plus one double-coded session that both raters
submitted with different scores, so that the reliability, disagreement and consensus pages have
rows to show.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask import url_for
from playwright.sync_api import Page

from rater.extensions import db
from rater.rating.models import Assignment, ItemScore, Rating
from rater.study.instrument_store import current_versions, instrument_of
from rater.timeutil import utcnow
from tests.conftest import PASSWORD
from tests.security import route_table

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "assets" / "axe-core" / "axe.min.js"
# AXE_IMPACTS=minor,moderate,serious,critical lists every finding (all are fixed today).
SERIOUS = tuple(os.environ.get("AXE_IMPACTS", "serious,critical").split(","))
# axe-core 4.14 no longer checks ids; an id given twice still sends a label, a link or an ARIA
# reference to the wrong element. (Hidden inputs alone, such as each form's CSRF token, are
# neither labelled nor referenced.)
DUPLICATE_IDS = """() => {
  const seen = new Map();
  document.querySelectorAll('[id]').forEach((el) => {
    const entry = seen.get(el.id) || { n: 0, shown: false };
    entry.n += 1;
    entry.shown = entry.shown || !(el.matches('input[type=hidden]'));
    seen.set(el.id, entry);
  });
  return [...seen].filter(([, e]) => e.n > 1 && e.shown).map(([id]) => id);
}"""
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
}"""


def double_coded(world) -> int:
    """Session B rated by rater B and by rater A too, both submitted with scores apart (rater
    A's rating of session A stays a draft). Returns rater A's new assignment's id."""
    versions = current_versions()
    mine = Assignment(session_id=world.session_b.id, rater_id=world.rater_a.id, purpose="double")
    db.session.add(mine)
    db.session.flush()
    for offset, assignment in enumerate((mine, world.assignment_b)):
        assignment.status = "submitted"
        rating = Rating(assignment_id=assignment.id, status="submitted", submitted_at=utcnow())
        rating.instrument_versions = list(versions.values())
        rating.scores = [
            ItemScore(
                instrument_version_id=version.id, item_code=item.code, score=(i + 2 * offset) % 5
            )
            for version in versions.values()
            for i, item in enumerate(instrument_of(version).items)
        ]
        db.session.add(rating)
    db.session.commit()
    return mine.id


def html_pages(app, world, role: str, extra: list[str]) -> list[str]:
    """URLs of every GET page the role may see, and ``extra`` ones."""
    urls = list(extra)
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            access = route_table.ACCESS[rule.endpoint]
            if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
                continue
            if access.expected(role) == "ok":
                urls.append(url_for(rule.endpoint, **access.values(world)))
    return sorted(set(urls))


PREVIEW = "/allocation/?double_fraction=0.4&seed=7"  # the allocation preview: two forms

# Endpoints that answer with a file, audio or an image, not a page.
NOT_PAGES = {
    "static",
    "rating.audio",
    "rating.session_audio",
    "export.download",
    "export.meta",
    "reliability.heatmap_svg",
    "reliability.drift_svg",
    "reliability.bland_altman_svg",
    "auth.logout",
    "results.table_csv",  # downloads (CSV, workbook, R script), not pages
    "results.workbook",
    "results.r_file",
}


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)


def serious_violations(page: Page) -> list[dict]:
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = [v for v in page.evaluate(RUN_AXE) if v["impact"] in SERIOUS]
    if duplicates := page.evaluate(DUPLICATE_IDS):
        found.append({"id": "duplicate-id", "ids": duplicates})
    return found


def test_no_serious_axe_violation_on_any_page(live_server, new_page, factory):
    world = route_table.build_world(factory)
    submitted = f"/assignments/{double_coded(world)}/rate"
    extra = {"rater_a": [submitted], "coordinator": [submitted, PREVIEW]}
    page = new_page(bypass_csp=True)
    page.set_default_timeout(10_000)
    found: dict[str, list[dict]] = {}
    checked = 0
    missing_files: list[str] = []  # a page's own 404 may be right; its files' never (favicon)
    page.on(
        "response",
        lambda r: (
            missing_files.append(r.url)
            if r.status == 404 and r.request.resource_type != "document"
            else None
        ),
    )
    page.goto(f"{live_server.url}/login")
    found.update({"/login": v} if (v := serious_violations(page)) else {})
    for role, username in (("rater_a", "rater_a"), ("coordinator", "coord")):
        log_in(page, live_server.url, username)
        for path in html_pages(live_server.app, world, role, extra[role]):
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None and response.status < 500, path
            if "text/html" not in response.headers.get("content-type", ""):
                continue
            checked += 1
            if violations := serious_violations(page):
                found[f"{role} {path} ({response.status})"] = violations
        page.context.clear_cookies()
    assert checked >= 20, checked  # the walk reached the pages (not only the login page)
    assert not found, "\n".join(f"{where}: {v}" for where, v in found.items())
    assert missing_files == []
