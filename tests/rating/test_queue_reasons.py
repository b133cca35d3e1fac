"""An empty queue says why: nothing released yet, the calibration round, or a later release."""

from __future__ import annotations

from rater.extensions import db
from rater.rating.service import NOTHING_RELEASED, WAITING_FOR_CALIBRATION, WAITING_FOR_RELEASE
from rater.study.models import StudySetting


def _queue(client) -> str:
    response = client.get("/queue")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_no_assignment_at_all_says_nothing_is_released(client, auth, factory):
    factory.user("r1")
    auth.login("r1")
    page = _queue(client)
    assert NOTHING_RELEASED in page and "All done" not in page


def test_held_work_behind_the_gate_says_it_waits_for_calibration(client, auth, factory):
    rater = factory.user("r1")
    calibration = factory.session("P09-S03", patient="P09", number=3)
    main = factory.session("P01-S01", number=1)
    factory.assignment(calibration, rater, purpose="calibration", status="submitted")
    factory.assignment(main, rater, status="held")
    db.session.add(StudySetting(key="calibration.gate_enabled", value=True))
    db.session.commit()
    auth.login("r1")
    page = _queue(client)
    assert WAITING_FOR_CALIBRATION in page and "All done" not in page


def test_held_work_without_the_gate_waits_for_a_release(client, auth, factory):
    rater = factory.user("r1")
    factory.assignment(factory.session("P01-S01", number=1), rater, status="held")
    auth.login("r1")
    assert WAITING_FOR_RELEASE in _queue(client)


def test_work_to_do_or_all_done_gives_no_reason(client, auth, factory):
    rater = factory.user("r1")
    assignment = factory.assignment(factory.session("P01-S01", number=1), rater)
    auth.login("r1")
    page = _queue(client)
    assert not any(text in page for text in (NOTHING_RELEASED, WAITING_FOR_RELEASE))
    assignment.status = "submitted"
    db.session.commit()
    page = _queue(client)
    assert "All done" in page and 'id="queue-waiting"' not in page
