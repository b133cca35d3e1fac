"""The rating pages for four visitors: anonymous, the assigned rater, another rater, coordinator."""

from __future__ import annotations

import re

import pytest

from rater.extensions import db
from tests.rating.helpers import VISITORS, build_study, login_as, started

# The expected status per visitor, in the order of VISITORS.
PAGE_ACCESS = {
    "queue": ("/queue", (302, 200, 200, 403)),
    "rate": ("/assignments/{id}/rate", (302, 200, 404, 200)),
    "audio": ("/assignments/{id}/audio", (302, 200, 404, 200)),
    "flagged": ("/flagged", (302, 403, 403, 200)),
    "homework": ("/homework", (302, 403, 403, 200)),
    "homework_session": ("/homework/sessions/{session}", (302, 403, 403, 200)),
    "session_audio": ("/sessions/{session}/audio", (302, 403, 403, 200)),
}


def without_token(page: bytes) -> bytes:
    """The page without its CSRF meta tag, whose signature carries the second it was made."""
    return re.sub(rb'<meta name="csrf-token" content="[^"]*">', b"", page)


@pytest.mark.parametrize("visitor", VISITORS)
def test_get_pages_per_visitor(client, auth, factory, visitor):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, visitor)
    for page, (path, expected) in PAGE_ACCESS.items():
        url = path.format(id=study.id, session=study.assignment.session_id)
        response = client.get(url)
        assert response.status_code == expected[VISITORS.index(visitor)], (page, visitor)
        if response.status_code == 302:
            assert "/login" in response.headers["Location"]


def test_another_rater_learns_nothing(client, auth, factory):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, "other")
    missing = client.get("/assignments/99999/rate")
    for url in (f"/assignments/{study.id}/rate", f"/assignments/{study.id}/audio"):
        response = client.get(url)
        assert response.status_code == 404
        # indistinguishable from a missing assignment (but for the page's fresh CSRF token)
        assert without_token(response.data) == without_token(missing.data)
        assert b"P01-S02" not in response.data


def test_queue_groups_and_hides_what_raters_must_not_see(client, auth, factory):
    study = build_study(factory)
    r1 = study.assignment.rater
    s3 = factory.session("P01-S03", number=3)
    s4 = factory.session("P01-S04", number=4)
    s5 = factory.session("P01-S05", number=5)
    s6 = factory.session("P01-S06", number=6)
    factory.assignment(s3, r1, purpose="double")
    factory.assignment(s4, r1, status="held")
    factory.assignment(s5, r1, status="cannot_rate")
    done = factory.assignment(s6, r1, purpose="calibration", status="submitted")
    factory.assignment(s3, study.other_assignment.rater, purpose="double")
    login_as(auth, "rater")
    page = client.get("/queue").get_data(as_text=True)
    assert "P01-S02" in page and "P01-S03" in page and "P01-S06" in page
    assert "P01-S04" not in page  # held
    assert "P01-S05" not in page  # cannot be rated
    assert "1 of 3 done" in page
    table = page.split("<main")[1]
    assert "double" not in table and ">main<" not in table
    assert "calibration" in page and "rating" in page
    assert "r2" not in table and "23" not in table  # no other rater, no PHQ-9
    assert "Next session: P01-S02" in page
    assert f"/assignments/{done.id}/rate" in page


def test_start_pins_instruments_and_sets_in_progress(client, auth, factory):
    study = build_study(factory)
    login_as(auth, "rater")
    page = client.get(f"/assignments/{study.id}/rate").get_data(as_text=True)
    assert "Start rating" in page
    response = client.post(f"/assignments/{study.id}/start")
    assert response.status_code == 302
    db.session.expire_all()
    rating = study.assignment.rating
    assert study.assignment.status == "in_progress"
    assert sorted(v.code for v in rating.instrument_versions) == ["GHES", "StHAR"]
    assert client.post(f"/assignments/{study.id}/start").status_code == 302  # idempotent


@pytest.mark.parametrize("visitor", VISITORS)
def test_start_per_visitor(client, auth, factory, visitor):
    study = build_study(factory)
    login_as(auth, visitor)
    response = client.post(f"/assignments/{study.id}/start")
    expected = {"anonymous": 302, "rater": 302, "other": 404, "coordinator": 403}[visitor]
    assert response.status_code == expected
    db.session.expire_all()
    assert (study.assignment.rating is not None) == (visitor == "rater")


def test_rating_page_shows_form_and_context_but_no_phq9(client, auth, factory):
    from rater.rating.homework import add_assigned

    study = build_study(factory)
    coord_id = 1
    prev = db.session.get(type(study.assignment.session), study.previous_session_id)
    add_assigned(prev, "behavioural", "Walk for 20 minutes daily", coord_id)
    db.session.commit()
    started(study.assignment)
    login_as(auth, "rater")
    page = client.get(f"/assignments/{study.id}/rate").get_data(as_text=True)
    assert "Walk for 20 minutes daily" in page
    assert 'name="GHES_1" type="radio" value="0"' in page or 'type="radio"' in page
    assert page.count('type="radio"') == 15 * 5
    assert "Not engaged: no attempt, no interest in the homework" in page
    # one key (D) opens the full description: it is no Tab stop of its own
    assert '<details><summary tabindex="-1">Full description <kbd>D</kbd></summary>' in page
    assert "Reviewing the previous homework" in page  # StHAR subscale heading
    assert "23" not in page.split('id="rating-state"')[0].split("<main")[1]  # no PHQ-9
    assert '"phq9"' not in page
    assert "<script>" not in page  # no inline scripts (CSP)


def test_rating_page_is_read_only_for_coordinator(client, auth, factory):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, "coordinator")
    page = client.get(f"/assignments/{study.id}/rate").get_data(as_text=True)
    assert 'data-editable="false"' in page
    assert "Submit rating" not in page


def test_page_queries_do_not_grow_with_content(client, auth, factory):
    """A fixed number of queries however many notes and scores a rating has (no N+1)."""
    from sqlalchemy import event

    from rater.rating.models import ItemScore, Note

    study = build_study(factory)
    rating = started(study.assignment)
    login_as(auth, "rater")

    def count() -> int:
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(f"/assignments/{study.id}/rate").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    few = count()
    version = rating.instrument_versions[0]
    for i, code in enumerate(["GHES_1", "GHES_2", "GHES_3", "GHES_4"]):
        db.session.add(
            ItemScore(
                rating_id=rating.id, instrument_version_id=version.id, item_code=code, score=i
            )
        )
    for i in range(30):
        db.session.add(Note(rating_id=rating.id, client_id=f"n{i}", audio_seconds=i, text="x"))
    db.session.commit()
    assert count() == few
    assert few <= 10


def test_rating_page_counts_scored_items_per_instrument(client, auth, factory):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, "rater")
    changes = [{"op": "score", "item": c, "value": 1} for c in ("GHES_1", "GHES_4", "StHAR_R1")]
    saved = client.post(
        f"/assignments/{study.id}/autosave", json={"base_version": 1, "changes": changes}
    )
    assert saved.status_code == 200
    page = client.get(f"/assignments/{study.id}/rate").get_data(as_text=True)
    counts = dict(re.findall(r'class="count" data-count-for="(\w+)">([^<]+)<', page))
    assert counts == {"GHES": "2 of 7 scored", "StHAR": "1 of 8 scored"}
