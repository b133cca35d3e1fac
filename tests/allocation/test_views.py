"""Coordinator allocation pages: permissions, preview and commit, progress, sessions,
calibration, raters joining and leaving, moving by hand."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from rater.allocation import calibration, planning
from rater.allocation import sessions as session_list
from rater.allocation.settings import put_setting
from rater.audit import AuditEvent
from rater.auth.models import User
from rater.demo import DemoSizes, catalogue_csv
from rater.extensions import db
from rater.rating.models import Assignment
from rater.study.catalogue import import_sessions
from rater.study.models import Patient, TherapySession

PASSWORD = "correct-horse-battery"
HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")

GET_PAGES = [
    "/allocation/",
    "/allocation/progress",
    "/allocation/sessions",
    "/allocation/calibration",
    "/allocation/raters",
    "/allocation/assignments/1/move",
    "/allocation/batches",
]
POST_PAGES = [
    "/allocation/commit",
    "/allocation/calibration/draw",
    "/allocation/calibration/pick",
    "/allocation/calibration/gate",
    "/allocation/calibration/release",
    "/allocation/raters/join",
    "/allocation/raters/leave",
    "/allocation/assignments/1/move",
    "/allocation/batches/release",
]


def build(app) -> None:
    import_sessions(
        catalogue_csv(DemoSizes(therapists=2, patients=4)),
        "sessions.csv",
        app.config["RATER_AUDIO_DIR"],
    )
    for name, role in [("coord", "coordinator"), ("r1", "rater"), ("r2", "rater"), ("r3", "rater")]:
        db.session.add(User(username=name, role=role, active=True, password_hash=HASH))
    db.session.commit()


@pytest.fixture
def coordinator(app, client, auth):
    build(app)
    assert auth.login("coord").status_code == 302
    return client


def count(*where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Assignment.id)).where(*where))


def test_raters_get_403_on_every_allocation_page(app, client, auth):
    build(app)
    planning.allocate(0.4, 1)
    db.session.commit()
    auth.login("r1")
    for url in GET_PAGES:
        assert client.get(url).status_code == 403, url
    for url in POST_PAGES:
        assert client.post(url, data={}).status_code == 403, url
    assert count() == len(planning.plan(0.4, 1).design.assignments)


def test_anonymous_users_are_sent_to_login(app, client):
    build(app)
    for url in GET_PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    for url in POST_PAGES:
        response = client.post(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_preview_shows_the_balance_report_and_commit_writes_it(coordinator):
    page = coordinator.get("/allocation/?double_fraction=0.4&seed=3")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="grid pair-matrix"' in html and 'data-shade="' in html
    assert "Double-coding per therapist" in html and "All balance guarantees met" in html
    assert count() == 0  # a preview writes nothing
    digest = re.search(r'name="digest" type="hidden" value="([0-9a-f]+)"', html).group(1)
    data = {"double_fraction": "0.4", "seed": "3", "digest": digest}
    confirm = coordinator.post("/allocation/commit", data=data)
    text = confirm.get_data(as_text=True)
    planned = len(planning.plan(0.4, 3).design.assignments)
    assert confirm.status_code == 200 and count() == 0  # the first POST only asks
    assert f"{planned} assignments will be created, 0 will be moved" in text
    assert "no started work is touched" in text and 'name="confirmed"' in text
    response = coordinator.post("/allocation/commit", data={**data, "confirmed": "yes"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/progress")
    assert count() == planned > 0
    assert count(Assignment.status == "pending") == planned


def test_commit_refuses_a_plan_that_differs_from_the_preview(coordinator):
    response = coordinator.post(
        "/allocation/commit", data={"double_fraction": "0.4", "seed": "3", "digest": "stale"}
    )
    assert response.status_code == 302 and count() == 0
    follow = coordinator.get(response.headers["Location"])
    assert "study changed since the preview" in follow.get_data(as_text=True)


@pytest.mark.parametrize(
    "data", [{"double_fraction": "1.5", "seed": "1"}, {"double_fraction": "0.4", "seed": "-2"}]
)
def test_invalid_parameters_are_rejected_by_the_form(coordinator, data):
    html = coordinator.get("/allocation/", query_string=data).get_data(as_text=True)
    assert "Commit this design" not in html and "Number must be" in html
    response = coordinator.post("/allocation/commit", data={**data, "digest": "x"})
    assert response.status_code == 302 and count() == 0


def test_commit_needs_a_csrf_token(csrf_app):
    build(csrf_app)
    client = csrf_app.test_client()
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    client.post("/login", data={"username": "coord", "password": PASSWORD, "csrf_token": token})
    response = client.post("/allocation/commit", data={"double_fraction": "0.4", "seed": "1"})
    assert response.status_code == 400 and count() == 0


def test_progress_page_has_progress_bars_per_rater_and_cell(coordinator):
    planning.allocate(0.4, 1)
    a = db.session.scalar(select(Assignment).limit(1))
    a.status = "submitted"
    db.session.commit()
    html = coordinator.get("/allocation/progress?days=3").get_data(as_text=True)
    assert html.count("<progress") >= 3 + 4  # 3 raters, 2 therapists x 2 phases
    assert "Drafts untouched for 3 days" in html


def test_sessions_page_filters(coordinator):
    planning.allocate(0.4, 1)
    db.session.commit()
    html = coordinator.get("/allocation/sessions?therapist=T2&phase=I&rater=r1").get_data(
        as_text=True
    )
    codes = set(re.findall(r"<td>(P\d\d-S\d\d)</td>", html))
    expected = {
        r.code
        for r in session_list.session_page(
            session_list.SessionFilters(therapist="T2", phase="I", rater="r1"), per_page=500
        ).rows
    }
    assert codes == expected and codes
    assert "T1" not in re.findall(r"<td>(T\d)</td>", html)


def test_calibration_page_says_when_reliability_is_not_available(coordinator, monkeypatch):
    response = coordinator.post("/allocation/calibration/draw", data={"n": "2", "seed": "1"})
    assert response.status_code == 302
    assert count(Assignment.purpose == "calibration") == 6
    gate = {"enabled": "y", "threshold": "0.8"}
    coordinator.post("/allocation/calibration/gate", data={**gate, "confirmed": "yes"})
    html = coordinator.get("/allocation/calibration").get_data(as_text=True)
    assert "Calibration reliability: not yet available" in html
    assert "gate closed" in html
    coordinator.post("/allocation/calibration/pick", data={"sessions": "P01-S01, P02-S03"})
    assert count(Assignment.purpose == "calibration") == 12
    planning.allocate(0.4, 1)
    db.session.commit()
    assert count(Assignment.status == "held") > 0
    refused = coordinator.post("/allocation/calibration/release", follow_redirects=True)
    assert "Refused" in refused.get_data(as_text=True) and count(Assignment.status == "held") > 0
    for a in db.session.scalars(select(Assignment).where(Assignment.purpose == "calibration")):
        a.status = "submitted"
    db.session.commit()
    monkeypatch.setattr(calibration, "calibration_icc", lambda _frame: (0.95, "high"))
    coordinator.post("/allocation/calibration/release")
    assert count(Assignment.status == "held") == 0


def test_rater_join_and_leave_preview_then_apply(coordinator):
    planning.allocate(0.4, 1)
    db.session.commit()
    before = count()
    preview = coordinator.post("/allocation/raters/leave", data={"rater": "r3"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "preview only" in html
    assert html.count('class="grid pair-matrix"') == 2  # before and after
    assert count(Assignment.rater_id == _id("r3")) > 0
    applied = coordinator.post("/allocation/raters/leave", data={"rater": "r3", "confirm": "y"})
    assert "applied" in applied.get_data(as_text=True)
    assert count(Assignment.rater_id == _id("r3")) == 0 and count() == before
    coordinator.post("/allocation/raters/join", data={"rater": "r3", "confirm": "y"})
    assert count(Assignment.rater_id == _id("r3")) > 0


def test_a_join_preview_says_the_rater_calibrates_first_while_the_gate_is_on(
    coordinator, monkeypatch
):
    coordinator.post("/allocation/calibration/draw", data={"n": "2", "seed": "1"})
    for a in db.session.scalars(select(Assignment).where(Assignment.purpose == "calibration")):
        a.status = "submitted"
    db.session.commit()
    monkeypatch.setattr(calibration, "calibration_icc", lambda _frame: (0.95, "high"))
    gate = {"enabled": "y", "threshold": "0.8", "confirmed": "yes"}
    coordinator.post("/allocation/calibration/gate", data=gate)
    planning.allocate(0.4, 1)
    db.session.add(User(username="r4", role="rater", active=True, password_hash=HASH))
    db.session.commit()
    preview = coordinator.post("/allocation/raters/join", data={"rater": "r4"})
    html = preview.get_data(as_text=True)
    assert "r4 rates 2 calibration sessions first" in html and "preview only" in html
    coordinator.post("/allocation/raters/join", data={"rater": "r4", "confirm": "y"})
    assert count(Assignment.rater_id == _id("r4"), Assignment.purpose != "calibration") > 0
    assert count(Assignment.rater_id == _id("r4"), Assignment.status == "pending") == 2


def _id(name: str) -> int:
    return db.session.scalar(select(User.id).where(User.username == name))


def test_move_by_hand_and_refusal_for_started_work(coordinator):
    planning.allocate(0.4, 1)
    db.session.commit()
    a = db.session.scalar(
        select(Assignment).where(Assignment.purpose == "main", Assignment.rater_id == _id("r1"))
    )
    page = coordinator.get(f"/allocation/assignments/{a.id}/move").get_data(as_text=True)
    target = re.findall(r'<option value="(r\d)"', page)[0]
    url = f"/allocation/assignments/{a.id}/move"
    no_reason = coordinator.post(url, data={"rater": target}, follow_redirects=True)
    assert "Reason" in no_reason.get_data(as_text=True)
    data = {"rater": target, "reason": "r1 is on leave"}
    confirm = coordinator.post(url, data=data).get_data(as_text=True)
    assert f"moves from r1 to {target}: 1 assignment moved" in confirm
    db.session.expire_all()
    assert db.session.get(Assignment, a.id).rater.username == "r1"  # asked, not moved
    response = coordinator.post(url, data={**data, "confirmed": "yes"})
    assert response.status_code == 200 and "Before" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Assignment, a.id).rater.username == target
    event = db.session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == "assignment.move")
        .order_by(AuditEvent.id.desc())
    )
    assert event.after["reason"] == "r1 is on leave"
    a = db.session.get(Assignment, a.id)
    a.status = "in_progress"
    db.session.commit()
    refused = coordinator.post(
        url, data={"rater": "r1", "reason": "back", "confirmed": "yes"}, follow_redirects=True
    )
    assert "started" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Assignment, a.id).rater.username == target
    assert coordinator.get("/allocation/assignments/99999/move").status_code == 404


def test_pages_have_no_inline_script(coordinator):
    planning.allocate(0.4, 1)
    db.session.commit()
    for url in GET_PAGES:
        html = coordinator.get(url).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+=", html), url


def _keep_box(html: str) -> str:
    return re.search(r"<input[^>]*keep_unstarted[^>]*>", html).group(0)


def test_commit_keeps_unstarted_work_by_default_once_rating_started(coordinator):
    assert "checked" not in _keep_box(coordinator.get("/allocation/").get_data(as_text=True))
    planning.allocate(0.4, 1)
    a = db.session.scalar(select(Assignment).where(Assignment.purpose == "main").limit(1))
    a.status = "in_progress"
    db.session.commit()
    html = coordinator.get("/allocation/").get_data(as_text=True)
    assert "checked" in _keep_box(html)
    assert "Nothing changes: the assignments already match this design." in html
    html = coordinator.get("/allocation/?double_fraction=0.4&seed=9").get_data(as_text=True)
    assert "no started work is touched (1 started assignment stays as it is)." in html


def test_turning_the_gate_off_says_held_work_stays_held_and_offers_the_release(coordinator):
    coordinator.post("/allocation/calibration/draw", data={"n": "2", "seed": "1"})
    coordinator.post(
        "/allocation/calibration/gate",
        data={"enabled": "y", "threshold": "0.8", "confirmed": "yes"},
    )
    planning.allocate(0.4, 1)
    db.session.commit()
    held = count(Assignment.status == "held")
    assert held > 0
    confirm = coordinator.post("/allocation/calibration/gate", data={"threshold": "0.8"})
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and count(Assignment.status == "held") == held
    assert f"{held} main assignments are held now. Saving does not release them" in text
    assert 'name="release"' in text
    kept = coordinator.post(
        "/allocation/calibration/gate",
        data={"threshold": "0.8", "confirmed": "yes"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"{held} main assignments stay held" in kept and "0 held back" not in kept
    assert count(Assignment.status == "held") == held
    coordinator.post(
        "/allocation/calibration/gate",
        data={"threshold": "0.8", "confirmed": "yes", "release": "y"},
    )
    assert count(Assignment.status == "held") == 0


def test_turning_the_gate_on_says_how_much_work_it_holds(coordinator):
    coordinator.post("/allocation/calibration/draw", data={"n": "2", "seed": "1"})
    planning.allocate(0.4, 1)
    db.session.commit()
    pending = count(Assignment.status == "pending", Assignment.purpose != "calibration")
    text = coordinator.post(
        "/allocation/calibration/gate", data={"enabled": "y", "threshold": "0.8"}
    ).get_data(as_text=True)
    assert f"{pending} pending main assignments will be held back" in text
    assert count(Assignment.status == "held") == 0


def test_batches_page_previews_then_releases_five_per_rater(coordinator):
    coordinator.post("/allocation/calibration/draw", data={"n": "1", "seed": "1"})
    digest = re.search(
        r'name="digest" type="hidden" value="([0-9a-f]+)"',
        coordinator.get("/allocation/?double_fraction=0.4&seed=3").get_data(as_text=True),
    ).group(1)
    data = {"double_fraction": "0.4", "seed": "3", "digest": digest, "confirmed": "yes"}
    response = coordinator.post("/allocation/commit", data={**data, "release_in_batches": "y"})
    assert response.headers["Location"].endswith("/allocation/batches")
    total = count(Assignment.purpose != "calibration")
    assert count(Assignment.status == "held") == total
    page = coordinator.get("/allocation/batches").get_data(as_text=True)
    assert "No batch released yet" in page
    form = {"per_rater": "5", "phase": "", "therapist": "", "order": "shuffled"}
    confirm = coordinator.post("/allocation/batches/release", data=form).get_data(as_text=True)
    assert "Batch 1 will release 15 assignments (r1 5, r2 5, r3 5)" in confirm
    assert count(Assignment.status == "held") == total
    coordinator.post("/allocation/batches/release", data={**form, "confirmed": "yes"})
    assert count(Assignment.batch == 1) == 15 and count(Assignment.status == "held") == total - 15
    page = coordinator.get("/allocation/batches").get_data(as_text=True)
    assert "batch 1" in page and "0 of 15" in page and "held for later batches" in page


def test_balance_speaks_plainly_and_keeps_the_technical_line_in_details(coordinator):
    planning.allocate(0.4, 1)
    a = db.session.scalar(select(Assignment).where(Assignment.purpose == "main").limit(1))
    code = a.session.code
    for row in db.session.scalars(select(Assignment).where(Assignment.session_id == a.session_id)):
        db.session.delete(row)
    db.session.commit()
    html = coordinator.get("/allocation/?double_fraction=0.4&seed=1").get_data(as_text=True)
    assert f"Session {code} has no rater." in html
    assert "<details><summary>Technical detail</summary>" in html
    assert f"coverage [session {code}]: target 1, actual 0" in html


def _finish(assignment: Assignment, days_ago: int) -> None:
    from datetime import timedelta

    from rater.rating.models import Rating
    from rater.timeutil import utcnow

    assignment.status = "submitted"
    db.session.add(
        Rating(
            assignment_id=assignment.id,
            status="submitted",
            submitted_at=utcnow() - timedelta(days=days_ago),
        )
    )


def test_progress_and_overview_count_the_same_things_with_a_finish_date(coordinator):
    from datetime import timedelta

    from rater.timeutil import utcnow

    coordinator.post("/allocation/calibration/draw", data={"n": "1", "seed": "1"})
    planning.allocate(0.4, 1)
    main = db.session.scalars(
        select(Assignment).where(Assignment.purpose != "calibration").order_by(Assignment.id)
    ).all()
    for a in main[:7]:
        _finish(a, days_ago=3)
    _finish(main[7], days_ago=30)  # done, but outside the 14-day pace
    calib_row = db.session.scalar(select(Assignment).where(Assignment.purpose == "calibration"))
    calib_row.status = "submitted"
    db.session.commit()
    total, done = len(main), 8
    remaining = total - done
    expected = (utcnow() + timedelta(days=-(-remaining * 14 // 7))).date().isoformat()
    progress_html = coordinator.get("/allocation/progress").get_data(as_text=True)
    home_html = coordinator.get("/").get_data(as_text=True)
    for html in (progress_html, home_html):
        assert f"<strong>{done} of {total}</strong> assignments done" in html
        assert "Calibration round (counted apart): 1 of 3 done." in html
        assert f"(7 submitted, 0.5 a day) the remaining {remaining} will be done around" in html
        assert expected in html
    per_rater_done = re.findall(r'<td class="num">(\d+)</td>\s*<td><progress', home_html)
    assert sum(map(int, per_rater_done)) == done


def test_sessions_list_links_ratings_audio_and_moves_with_readable_states(coordinator):
    planning.allocate(0.4, 1)
    a = db.session.scalar(select(Assignment).where(Assignment.purpose == "main").limit(1))
    _finish(a, days_ago=1)
    a.status = "in_progress"
    db.session.commit()
    html = coordinator.get(f"/allocation/sessions?patient={a.session.patient.code}").get_data(
        as_text=True
    )
    assert f'href="/assignments/{a.id}/rate"' in html
    assert f'href="/allocation/assignments/{a.id}/move"' not in html  # started: never moved
    assert ">in progress</span>" in html and ">in_progress<" not in html
    assert 'class="card filters compact-filters"' in html
    assert '<option value="cannot_rate">cannot be rated</option>' in html
    others = db.session.scalars(
        select(Assignment).where(
            Assignment.session_id != a.session_id, Assignment.purpose == "main"
        )
    ).all()
    assert any(f'href="/allocation/assignments/{o.id}/move"' in html for o in others)
    read_only = coordinator.get(f"/assignments/{a.id}/rate")
    assert read_only.status_code == 200


def test_releasing_all_held_work_from_the_calibration_page_is_confirmed_first(coordinator):
    put_setting(calibration.RELEASE_IN_BATCHES, True)
    planning.allocate(0.4, 1)
    db.session.commit()
    held = count(Assignment.status == "held")
    page = coordinator.get("/allocation/calibration").get_data(as_text=True)
    assert f"Release all {held} held assignments…" in page
    assert 'action="/allocation/batches/release"' in page
    form = {"order": "shuffled", "phase": "", "therapist": ""}
    confirm = coordinator.post("/allocation/batches/release", data=form).get_data(as_text=True)
    assert (
        f"Batch 1 will release {held} assignments" in confirm
        and "0 assignments stay held" in confirm
    )
    assert count(Assignment.status == "held") == held
    coordinator.post("/allocation/batches/release", data={**form, "confirmed": "yes"})
    assert count(Assignment.status == "held") == 0


def test_plan_page_names_a_new_rater_without_work_and_offers_the_join(coordinator):
    planning.allocate(0.4, 1)
    a = db.session.scalar(select(Assignment).where(Assignment.purpose == "main").limit(1))
    a.status = "in_progress"
    db.session.add(User(username="r4", role="rater", active=True, password_hash=HASH))
    db.session.commit()
    kept = planning.plan(keep_unstarted=True)
    assert kept.idle == ["r4"] and not kept.changes
    assert planning.plan(keep_unstarted=False).idle == []  # re-planned: r4 gets a share
    html = coordinator.get("/allocation/").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Nothing changes: the assignments already match this design." not in text
    assert "Nothing changes in the assignments already made." in text
    assert "Active rater r4 has no work in this design" in text
    assert "Let r4 join allocation" in text and "1 active rater without work: r4." in text
    form = re.search(r'<form[^>]*action="(/allocation/raters/join)"[^>]*>(.*?)</form>', html, re.S)
    assert form and 'name="rater" value="r4"' in form.group(2)
    preview = coordinator.post(form.group(1), data={"rater": "r4"})
    assert "r4 joins allocation" in preview.get_data(as_text=True)
    assert count(Assignment.rater.has(username="r4")) == 0  # a preview writes nothing
    coordinator.post(form.group(1), data={"rater": "r4", "confirm": "y"})
    assert count(Assignment.rater.has(username="r4"), Assignment.purpose != "calibration") > 0
    html = coordinator.get("/allocation/").get_data(as_text=True)
    assert "without work" not in html and "no work in this design" not in html


def test_home_and_progress_count_the_same_sessions_with_calibration_apart(coordinator):
    """The home page's per-therapist totals are the progress page's eligible sessions; the
    calibration sessions (excluded from the main pool here) and other excluded sessions are
    labelled apart and never in a total."""
    coordinator.post("/allocation/calibration/draw", data={"n": "2", "seed": "1", "exclude": "y"})
    calibration_codes = {s.code for s in calibration.calibration_sessions()}
    assert len(calibration_codes) == 2
    other = db.session.scalar(
        select(TherapySession)
        .where(TherapySession.code.not_in(calibration_codes))
        .order_by(TherapySession.code)
    )
    other.status = "excluded"
    db.session.commit()
    planning.allocate(0.4, 1)
    n_sessions = db.session.scalar(select(func.count(TherapySession.id)))
    n_patients = db.session.scalar(select(func.count(Patient.id)))
    progress_html = coordinator.get("/allocation/progress").get_data(as_text=True)
    home_html = coordinator.get("/").get_data(as_text=True)

    eligible = defaultdict(int)
    cells = re.findall(
        r"<tr><td>(T\d+)</td><td>(I+)</td><td class=\"num\">(\d+)</td>", progress_html
    )
    for therapist, _phase, n in cells:
        eligible[therapist] += int(n)
    totals = dict(re.findall(r'<td data-total="(T\d+)">(\d+)</td>', home_html))
    assert {t: int(n) for t, n in totals.items()} == dict(eligible)
    main = db.session.scalar(
        select(func.count(TherapySession.id)).where(
            TherapySession.status == "eligible", TherapySession.code.not_in(calibration_codes)
        )
    )
    excluded = n_sessions - main - 2
    assert sum(eligible.values()) == main
    assert (
        f"{n_sessions} sessions of {n_patients} patients treated by 2 therapists: {main} in the"
        f" main study, 2 calibration sessions (counted apart), {excluded} excluded." in home_html
    )
    assert home_html.count("calibration)</span>") == len(
        {(s.therapist.code, s.phase) for s in calibration.calibration_sessions()}
    )
