"""The database itself refuses bad data, even with the ORM bypassed (raw SQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from rater.extensions import db
from rater.study.instrument_store import current_versions


@pytest.fixture
def rating_id(app, factory) -> int:
    version = current_versions()["GHES"]
    rater = factory.user("r1")
    assignment = factory.assignment(factory.session(), rater)
    db.session.execute(
        text(
            "INSERT INTO ratings (assignment_id, status, audio_position, active_seconds, "
            "cannot_rate, version, created_at, updated_at) "
            "VALUES (:a, 'draft', 0, 0, false, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ),
        {"a": assignment.id},
    )
    rid = db.session.execute(text("SELECT id FROM ratings")).scalar_one()
    db.session.commit()
    app.config["_version_id"] = version.id
    return rid


def _insert_score(app, rating_id: int, item: str, score: int | None) -> None:
    db.session.execute(
        text(
            "INSERT INTO item_scores (rating_id, instrument_version_id, item_code, score, "
            "updated_at) VALUES (:r, :v, :i, :s, CURRENT_TIMESTAMP)"
        ),
        {"r": rating_id, "v": app.config["_version_id"], "i": item, "s": score},
    )
    db.session.flush()


def _refused(statement) -> None:
    with pytest.raises(IntegrityError):
        statement()
    db.session.rollback()


@pytest.mark.parametrize("score", [0, 4])
def test_scores_in_range_are_accepted(app, rating_id, score):
    _insert_score(app, rating_id, "GHES_1", score)
    db.session.commit()


def test_score_row_without_an_answer_is_refused(app, rating_id):
    """A score's range is its instrument's (checked by autosave and the importers, issue 16);
    the database refuses a row with no score, value or "not applicable"."""
    _refused(lambda: _insert_score(app, rating_id, "GHES_1", None))


def test_second_score_for_same_item_is_refused(app, rating_id):
    _insert_score(app, rating_id, "GHES_1", 2)
    db.session.commit()
    _refused(lambda: _insert_score(app, rating_id, "GHES_1", 3))


@pytest.mark.usefixtures("app")
def test_second_assignment_of_session_to_same_rater_is_refused(factory):
    rater = factory.user("r1")
    session = factory.session()
    factory.assignment(session, rater)
    _refused(
        lambda: db.session.execute(
            text(
                "INSERT INTO assignments (session_id, rater_id, purpose, status, created_at) "
                "VALUES (:s, :r, 'double', 'pending', CURRENT_TIMESTAMP)"
            ),
            {"s": session.id, "r": rater.id},
        )
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [("purpose", "'extra'"), ("status", "'lost'")],
)
@pytest.mark.usefixtures("app")
def test_assignment_enumerations_are_checked(factory, column, value):
    rater = factory.user("r1")
    session = factory.session()
    values = {"purpose": "'main'", "status": "'pending'", column: value}
    _refused(
        lambda: db.session.execute(
            text(
                "INSERT INTO assignments (session_id, rater_id, purpose, status, created_at) "
                f"VALUES (:s, :r, {values['purpose']}, {values['status']}, CURRENT_TIMESTAMP)"
            ),
            {"s": session.id, "r": rater.id},
        )
    )


@pytest.mark.usefixtures("app")
def test_phq9_out_of_range_is_refused(factory):
    session = factory.session()
    _refused(
        lambda: db.session.execute(
            text("UPDATE sessions SET phq9 = 28 WHERE id = :i"), {"i": session.id}
        )
    )


@pytest.mark.usefixtures("app")
def test_user_role_is_checked():
    _refused(
        lambda: db.session.execute(
            text(
                "INSERT INTO users (username, password_hash, role, active, created_at) "
                "VALUES ('x', 'h', 'admin', true, CURRENT_TIMESTAMP)"
            )
        )
    )


@pytest.mark.usefixtures("rating_id")
def test_consensus_score_needs_an_answer(app, factory):
    """Its range is the instrument's (issue 16); a row without any answer is refused."""
    coordinator = factory.user("c", "coordinator")
    session_id = db.session.execute(text("SELECT id FROM sessions")).scalar_one()
    _refused(
        lambda: db.session.execute(
            text(
                "INSERT INTO consensus_scores (session_id, instrument_version_id, item_code, "
                "score, decided_by_id, decided_at) VALUES (:s, :v, 'GHES_1', NULL, :u, "
                "CURRENT_TIMESTAMP)"
            ),
            {"s": session_id, "v": app.config["_version_id"], "u": coordinator.id},
        )
    )


@pytest.mark.usefixtures("app")
def test_homework_entry_kind_and_owner_are_checked(factory):
    user = factory.user("c", "coordinator")
    session = factory.session()
    # A rater's "reported completed" entry must belong to a rating.
    _refused(
        lambda: db.session.execute(
            text(
                "INSERT INTO homework_entries (session_id, entered_by_id, kind, homework_type, "
                "description, created_at, updated_at) VALUES (:s, :u, 'reported_completed', "
                "'cognitive', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"s": session.id, "u": user.id},
        )
    )
