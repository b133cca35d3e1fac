"""Submit (with missing items named), reopen, 'cannot be rated', and the coordinator's homework."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rater.audit import AuditEvent
from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import HomeworkEntry, Rating
from tests.rating.helpers import VISITORS, all_item_codes, build_study, login_as, started


def score_all(client, study, skip: tuple[str, ...] = ()) -> None:
    changes = [
        {"op": "score", "item": code, "value": 2} for code in all_item_codes() if code not in skip
    ]
    response = client.post(
        f"/assignments/{study.id}/autosave", json={"base_version": 1, "changes": changes}
    )
    assert response.status_code == 200


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.fixture
def study(auth, factory):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, "rater")
    return study


def test_submit_with_a_missing_item_names_it(client, study):
    score_all(client, study, skip=("StHAR_R2",))
    response = client.post(f"/assignments/{study.id}/submit", json={})
    assert response.status_code == 422
    assert response.json["missing"] == [{"item": "StHAR_R2", "label": "Drawing conclusions"}]
    assert "StHAR_R2" in response.json["error"]
    page = client.post(f"/assignments/{study.id}/submit", follow_redirects=True)
    assert "Missing: StHAR_R2 (Drawing conclusions)" in page.get_data(as_text=True)
    db.session.expire_all()
    assert study.assignment.rating.status == "draft"


def test_submit_locks_the_rating(client, study):
    score_all(client, study)
    response = client.post(f"/assignments/{study.id}/submit")
    assert response.status_code == 302
    db.session.expire_all()
    rating = study.assignment.rating
    assert rating.status == "submitted" and rating.submitted_at is not None
    assert study.assignment.status == "submitted"
    page = client.get(f"/assignments/{study.id}/rate").get_data(as_text=True)
    assert "is locked" in page and 'data-editable="false"' in page
    assert "Submit rating" not in page
    assert 'disabled id="GHES_1-0"' in page or "disabled" in page
    late = client.post(
        f"/assignments/{study.id}/autosave",
        json={"base_version": rating.version, "changes": [{"op": "position", "seconds": 3}]},
    )
    assert late.status_code == 423 and "locked" in late.json["error"]
    again = client.post(f"/assignments/{study.id}/submit", json={})
    assert again.status_code == 423
    assert "rating.submit" in actions()


def test_submit_and_next_starts_the_next_session_of_the_queue(client, factory, study):
    second = factory.assignment(factory.session("P01-S03", number=3), study.assignment.rater)
    third = factory.assignment(factory.session("P01-S04", number=4), study.assignment.rater)
    score_all(client, study)
    response = client.post(f"/assignments/{study.id}/submit", data={"next": "1"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/assignments/{second.id}/rate")
    db.session.expire_all()
    assert study.assignment.rating.status == "submitted"
    assert second.status == "in_progress" and second.rating is not None  # started for the rater
    assert third.status == "pending" and third.rating is None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Rating of P01-S02 submitted. Now: session P01-S03." in page


def test_submit_and_next_with_nothing_left_goes_to_the_queue(client, study):
    score_all(client, study)
    response = client.post(f"/assignments/{study.id}/submit", data={"next": "1"})
    assert response.headers["Location"].endswith("/queue")
    page = client.get("/queue").get_data(as_text=True)
    assert "Your queue is done" in page


def test_coordinator_reopens_with_a_reason(client, auth, study):
    score_all(client, study)
    client.post(f"/assignments/{study.id}/submit")
    auth.logout()
    login_as(auth, "coordinator")
    url = f"/assignments/{study.id}/reopen"
    assert client.post(url, data={"reason": ""}).status_code == 302
    db.session.expire_all()
    assert study.assignment.rating.status == "submitted"  # a reason is required
    assert client.post(url, data={"reason": "GHES_5 scored the wrong way"}).status_code == 302
    db.session.expire_all()
    assert study.assignment.rating.status == "draft"
    assert study.assignment.status == "in_progress"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "rating.reopen"))
    assert event.after["reason"] == "GHES_5 scored the wrong way"


@pytest.mark.parametrize("visitor", VISITORS)
def test_post_actions_per_visitor(client, auth, factory, visitor):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, visitor)
    expected = {
        "submit": {"anonymous": 302, "rater": 302, "other": 404, "coordinator": 403},
        "cannot-rate": {"anonymous": 302, "rater": 302, "other": 404, "coordinator": 403},
        "reopen": {"anonymous": 302, "rater": 403, "other": 403, "coordinator": 302},
        "unflag": {"anonymous": 302, "rater": 403, "other": 403, "coordinator": 302},
    }
    data = {"category": "other", "reason": "because"}
    for action, statuses in expected.items():
        response = client.post(f"/assignments/{study.id}/{action}", data=data)
        assert response.status_code == statuses[visitor], (action, visitor)


def test_cannot_rate_leaves_the_queue_and_is_flagged(client, auth, study):
    url = f"/assignments/{study.id}/cannot-rate"
    response = client.post(url, data={"category": "audio_unusable", "reason": "only noise"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/queue")
    db.session.expire_all()
    assert study.assignment.status == "cannot_rate"
    rating = study.assignment.rating
    assert (rating.cannot_rate, rating.cannot_rate_category) == (True, "audio_unusable")
    client.get("/queue")  # shows the flash once
    assert "P01-S02" not in client.get("/queue").get_data(as_text=True)
    assert client.get(f"/assignments/{study.id}/rate").status_code == 404
    auth.logout()
    login_as(auth, "coordinator")
    flagged = client.get("/flagged").get_data(as_text=True)
    assert "P01-S02" in flagged and "Audio unusable" in flagged and "only noise" in flagged
    assert client.post(f"/assignments/{study.id}/unflag").status_code == 302
    db.session.expire_all()
    assert study.assignment.status == "in_progress" and not study.assignment.rating.cannot_rate
    assert {"assignment.cannot_rate", "assignment.unflag"} <= set(actions())


def test_cannot_rate_needs_category_and_reason(client, study):
    url = f"/assignments/{study.id}/cannot-rate"
    client.post(url, data={"category": "audio_unusable", "reason": ""})
    client.post(url, data={"category": "bogus", "reason": "x"})
    db.session.expire_all()
    assert study.assignment.status == "in_progress"


def test_coordinator_manages_assigned_homework_and_raters_see_it(client, auth, factory):
    study = build_study(factory)
    started(study.assignment)
    login_as(auth, "coordinator")
    prev = study.previous_session_id
    index = client.get("/homework?patient=P01").get_data(as_text=True)
    assert "P01-S01" in index and "P02-S01" not in index
    url = f"/homework/sessions/{prev}"
    form = {"homework_type": "self-monitoring", "description": "Mood diary, 3x daily"}
    assert client.post(url, data=form).status_code == 302
    assert (
        client.post(url, data={"homework_type": "nonsense", "description": "x"}).status_code == 400
    )
    entry = db.session.scalar(select(HomeworkEntry))
    assert (entry.kind, entry.rating_id, entry.session_id) == ("assigned_next", None, prev)
    edit = {"homework_type": "behavioural", "description": "Walk daily"}
    assert client.post(f"/homework/entries/{entry.id}/edit", data=edit).status_code == 302
    auth.logout()
    login_as(auth, "rater")
    page = client.get(f"/assignments/{study.id}/rate").get_data(as_text=True)
    assert "Walk daily" in page
    auth.logout()
    login_as(auth, "coordinator")
    assert client.post(f"/homework/entries/{entry.id}/delete").status_code == 302
    assert db.session.scalar(select(HomeworkEntry)) is None
    assert [a for a in actions() if a.startswith("homework.")] == [
        "homework.assign",
        "homework.update",
        "homework.delete",
    ]


@pytest.mark.parametrize("visitor", VISITORS)
def test_homework_posts_per_visitor(client, auth, factory, visitor):
    study = build_study(factory)
    from rater.rating.homework import add_assigned

    coordinator = db.session.scalar(select(User).filter_by(username="coord"))
    entry = add_assigned(study.assignment.session, "cognitive", "x", coordinator.id)
    db.session.commit()
    login_as(auth, visitor)
    expected = {"anonymous": 302, "rater": 403, "other": 403, "coordinator": 302}[visitor]
    form = {"homework_type": "cognitive", "description": "y"}
    for url in (
        f"/homework/sessions/{study.assignment.session_id}",
        f"/homework/entries/{entry.id}/edit",
        f"/homework/entries/{entry.id}/delete",
    ):
        assert client.post(url, data=form).status_code == expected, url


def test_rater_never_sees_another_raters_homework_log(client, auth, factory):
    study = build_study(factory)
    rating = started(study.assignment)
    other = factory.assignment(study.assignment.session, study.other_assignment.rater, "double")
    other_rating = started(other)
    db.session.add(
        HomeworkEntry(
            session_id=other.session_id,
            rating_id=other_rating.id,
            entered_by_id=other.rater_id,
            client_id="theirs",
            kind="reported_completed",
            homework_type="cognitive",
            description="SECRET-OF-R2",
        )
    )
    db.session.commit()
    login_as(auth, "rater")
    page = client.get(f"/assignments/{study.id}/rate").get_data(as_text=True)
    assert "SECRET-OF-R2" not in page
    assert isinstance(rating, Rating)
