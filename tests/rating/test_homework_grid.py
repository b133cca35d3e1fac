"""Homework for many sessions at once: the grid of one patient, and ``rater homework import``."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from rater.audit import AuditEvent
from rater.extensions import db
from rater.rating.models import HomeworkEntry
from rater.study.instrument_store import sync_instruments


@pytest.fixture
def patient(factory, auth):
    sync_instruments()
    db.session.commit()
    user = factory.user("coord", "coordinator")
    sessions = [factory.session(f"P01-S{n:02d}", number=n) for n in (1, 2, 3)]
    factory.session("P02-S01", patient="P02", number=1)
    auth.login("coord")
    return user, sessions


def _entries() -> list[tuple[str, str, str]]:
    from rater.study.models import TherapySession

    rows = db.session.execute(
        select(TherapySession.code, HomeworkEntry.homework_type, HomeworkEntry.description)
        .join(TherapySession, TherapySession.id == HomeworkEntry.session_id)
        .order_by(TherapySession.code, HomeworkEntry.id)
    )
    return [tuple(row) for row in rows]


def _actions() -> list[str]:
    query = select(AuditEvent.action).where(AuditEvent.action.startswith("homework."))
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def test_the_grid_adds_changes_and_deletes_in_one_save(client, patient):
    _, (s1, s2, s3) = patient
    url = f"/homework/patients/{s1.patient_id}"
    page = client.get(url).get_data(as_text=True)
    blank = re.findall(r'<input type="text" id="n(\d+)-description"', page)
    assert blank == [str(s.id) for s in (s1, s2, s3)] and "P02-S01" not in page
    add = {
        f"n{s1.id}-type": "behavioural", f"n{s1.id}-description": "Walk daily",
        f"n{s3.id}-type": "cognitive", f"n{s3.id}-description": "Thought record",
    }  # fmt: skip
    assert client.post(url, data=add).status_code == 302
    assert _entries() == [
        ("P01-S01", "behavioural", "Walk daily"),
        ("P01-S03", "cognitive", "Thought record"),
    ]
    first, third = db.session.scalars(select(HomeworkEntry).order_by(HomeworkEntry.id))
    edit = {
        f"e{first.id}-type": "behavioural", f"e{first.id}-description": "Walk twice daily",
        f"e{third.id}-type": "cognitive", f"e{third.id}-description": "Thought record",
        f"e{third.id}-delete": "on",
        f"n{s2.id}-type": "self-monitoring", f"n{s2.id}-description": "Mood diary",
    }  # fmt: skip
    response = client.post(url, data=edit, follow_redirects=True)
    assert "1 added, 1 changed, 1 deleted" in response.get_data(as_text=True)
    assert _entries() == [
        ("P01-S01", "behavioural", "Walk twice daily"),
        ("P01-S02", "self-monitoring", "Mood diary"),
    ]
    assert _actions() == [
        "homework.assign", "homework.assign",  # first save
        "homework.update", "homework.assign", "homework.delete",  # second, in session order
    ]  # fmt: skip


def test_a_grid_with_a_problem_saves_nothing_and_keeps_what_was_typed(client, patient):
    _, (s1, s2, _) = patient
    url = f"/homework/patients/{s1.patient_id}"
    data = {
        f"n{s1.id}-type": "behavioural", f"n{s1.id}-description": "Walk daily",
        f"n{s2.id}-type": "", f"n{s2.id}-description": "No type chosen",
    }  # fmt: skip
    response = client.post(url, data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "P01-S02: choose a homework type" in page and 'value="Walk daily"' in page
    assert "Nothing was saved" in page
    assert _entries() == []


@pytest.mark.usefixtures("patient")
def test_csv_import_is_all_or_nothing_and_names_line_column_and_value(runner, tmp_path):
    bad = tmp_path / "homework.csv"
    bad.write_text(
        "session_id,homework_type,description\n"
        "P01-S01,behavioural,Walk daily\n"
        "P09-S01,behavioural,Unknown session\n"
        "P01-S02,gardening,Unknown type\n"
        "P01-S01,behavioural,Walk daily\n"
    )
    result = runner.invoke(args=["homework", "import", str(bad), "--by", "coord"])
    assert result.exit_code == 1
    assert "homework.csv, line 3, column 'session_id': no session has this code" in result.output
    assert "(value 'P09-S01')" in result.output
    assert "line 4, column 'homework_type': must be one of" in result.output
    assert "(value 'gardening')" in result.output
    assert "line 5, column 'description': the same entry is on line 2" in result.output
    assert _entries() == []

    good = tmp_path / "good.csv"
    good.write_text(
        "session_id,homework_type,description\n"
        "P01-S01,behavioural,Walk daily\n"
        "P02-S01,cognitive,Thought record\n"
    )
    result = runner.invoke(args=["homework", "import", str(good), "--by", "coord"])
    assert result.exit_code == 0, result.output
    assert "2 entries added, 0 already present" in result.output
    again = runner.invoke(args=["homework", "import", str(good), "--by", "coord"])
    assert "0 entries added, 2 already present" in again.output
    assert _entries() == [
        ("P01-S01", "behavioural", "Walk daily"),
        ("P02-S01", "cognitive", "Thought record"),
    ]


@pytest.mark.usefixtures("patient")
def test_csv_import_needs_an_active_coordinator(runner, factory, tmp_path):
    factory.user("r1")
    path = tmp_path / "h.csv"
    path.write_text("session_id,homework_type,description\nP01-S01,behavioural,Walk\n")
    for by in ("r1", "nobody"):
        result = runner.invoke(args=["homework", "import", str(path), "--by", by])
        assert result.exit_code == 1 and "is not an active coordinator" in result.output
    assert _entries() == []
