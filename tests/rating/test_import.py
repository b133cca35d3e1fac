"""``rater ratings import``: the design's invariants (one main rater per session, complete
ratings), values no column can hold, and files longer than one statement can carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy import text as sql

from rater.audit import AuditEvent
from rater.auth.models import User
from rater.csvinput import ImportFailed
from rater.extensions import db
from rater.instruments import load_instruments
from rater.rating.importer import import_ratings
from rater.rating.models import Assignment, ItemScore, Rating
from rater.study.models import TherapySession
from tests.support.imports import (
    count,
    rows_beyond_one_statement,
)

ROOT = Path(__file__).resolve().parents[2]
HEADER = "session_id,rater,instrument,item,score,purpose\n"
GHES = [
    item.code
    for i in load_instruments(ROOT / "instruments")
    if i.code == "GHES"
    for item in i.items
]


def rating_rows(session: str, rater: str, purpose: str = "", items=GHES, score: int = 2) -> str:
    """A complete GHES rating (every item is required) as CSV rows."""
    return "".join(f"{session},{rater},GHES,{item},{score},{purpose}\n" for item in items)


@pytest.fixture
def study(factory):
    """Two sessions and three raters."""
    sessions = [factory.session("P01-S01", number=1), factory.session("P01-S02", number=2)]
    raters = [factory.user(name) for name in ("r1", "r2", "r3")]
    return sessions, raters


def _import(text: str, **options):
    result = import_ratings(text.encode("utf-8", errors="surrogatepass"), "ratings.csv", **options)
    db.session.commit()
    return result


def _refused(text: str, **options) -> list[str]:
    """The problems of a refused import; checks that nothing was written."""
    before = (count(Assignment), count(Rating), count(ItemScore), count(AuditEvent))
    with pytest.raises(ImportFailed) as info:
        import_ratings(text.encode("utf-8", errors="surrogatepass"), "ratings.csv", **options)
    db.session.rollback()
    assert (count(Assignment), count(Rating), count(ItemScore), count(AuditEvent)) == before
    return [str(p) for p in info.value.problems]


def _purposes(session: str = "P01-S01") -> dict[str, str]:
    return dict(
        db.session.execute(
            select(User.username, Assignment.purpose)
            .join(Assignment, Assignment.rater_id == User.id)
            .join(TherapySession, Assignment.session_id == TherapySession.id)
            .where(TherapySession.code == session)
        ).all()
    )


# --- one main rater per session -----------------------------------------------------------


@pytest.mark.usefixtures("app", "study")
def test_two_main_raters_of_a_session_in_the_file_are_refused():
    text = HEADER + rating_rows("P01-S01", "r1", "main") + rating_rows("P01-S01", "r2", "main")
    assert _refused(text) == [
        "ratings.csv, line 9, column 'purpose': second main rater of session P01-S01: r1 is its "
        "main rater on line 2 (value 'main')"
    ]


@pytest.mark.usefixtures("app", "study")
def test_the_second_main_is_named_on_the_line_that_states_it():
    """r2's first rows leave the purpose open; line 12 makes it a second main."""
    r2 = rating_rows("P01-S01", "r2", items=GHES[:3]) + rating_rows(
        "P01-S01", "r2", "main", GHES[3:]
    )
    text = HEADER + rating_rows("P01-S01", "r1", "main") + r2
    assert _refused(text) == [
        "ratings.csv, line 12, column 'purpose': second main rater of session P01-S01: r1 is "
        "its main rater on line 2 (value 'main')"
    ]


@pytest.mark.usefixtures("app", "study")
def test_every_further_main_rater_is_named():
    text = (
        HEADER
        + rating_rows("P01-S01", "r1", "main")
        + rating_rows("P01-S01", "r2", "main")
        + rating_rows("P01-S01", "r3", "main")
    )
    problems = _refused(text)
    assert [p.split(":")[0] for p in problems] == [
        "ratings.csv, line 9, column 'purpose'",
        "ratings.csv, line 16, column 'purpose'",
    ]


@pytest.mark.usefixtures("app")
def test_a_main_rater_beside_a_stored_main_assignment_is_refused(study, factory):
    (session, _), (r1, _, _) = study
    factory.assignment(session, r1, "main")
    assert _refused(HEADER + rating_rows("P01-S01", "r2", "main")) == [
        "ratings.csv, line 2, column 'purpose': second main rater of session P01-S01: r1 is its "
        "main rater in the database (value 'main')"
    ]


@pytest.mark.usefixtures("app", "study")
def test_a_main_rater_beside_an_imported_main_rating_is_refused():
    _import(HEADER + rating_rows("P01-S01", "r1", "main"))
    assert _refused(HEADER + rating_rows("P01-S01", "r2", "main")) == [
        "ratings.csv, line 2, column 'purpose': second main rater of session P01-S01: r1 is its "
        "main rater in the database (value 'main')"
    ]
    assert _purposes() == {"r1": "main"}


@pytest.mark.usefixtures("app", "study")
def test_an_open_purpose_is_double_when_the_file_names_the_main_rater_later():
    """Before, r1 became main as the session's first rater and r2 a second main."""
    _import(HEADER + rating_rows("P01-S01", "r1") + rating_rows("P01-S01", "r2", "main"))
    assert _purposes() == {"r1": "double", "r2": "main"}


@pytest.mark.usefixtures("app")
def test_open_purposes_make_the_first_rater_main_and_the_others_double(study, factory):
    (_, s2), (r1, _, _) = study
    factory.assignment(s2, r1, "main")
    _import(
        HEADER
        + rating_rows("P01-S01", "r2")
        + rating_rows("P01-S01", "r3")
        + rating_rows("P01-S02", "r2")
    )
    assert _purposes("P01-S01") == {"r2": "main", "r3": "double"}
    assert _purposes("P01-S02") == {"r1": "main", "r2": "double"}


@pytest.mark.usefixtures("app")
def test_a_stored_main_assignment_takes_its_rating_from_the_file(study, factory):
    (session, _), (r1, _, _) = study
    factory.assignment(session, r1, "main")
    result = _import(HEADER + rating_rows("P01-S01", "r1", "main") + rating_rows("P01-S01", "r2"))
    assert (result.ratings, result.assignments_created) == (2, 1)
    assert _purposes() == {"r1": "main", "r2": "double"}
    assert {a.status for a in db.session.scalars(select(Assignment))} == {"submitted"}


@pytest.mark.usefixtures("app", "study")
def test_calibration_and_double_raters_may_be_many():
    _import(
        HEADER
        + rating_rows("P01-S01", "r1", "calibration")
        + rating_rows("P01-S01", "r2", "calibration")
        + rating_rows("P01-S02", "r1", "double")
        + rating_rows("P01-S02", "r2", "double")
    )
    assert _purposes("P01-S01") == {"r1": "calibration", "r2": "calibration"}
    assert _purposes("P01-S02") == {"r1": "double", "r2": "double"}


# --- required items -----------------------------------------------------------------------


@pytest.mark.usefixtures("app", "study")
def test_a_rating_without_its_required_items_is_refused_at_its_first_line():
    text = (
        HEADER
        + rating_rows("P01-S01", "r1")
        + rating_rows("P01-S01", "r2", items=["GHES_1", "GHES_4"])
        + rating_rows("P01-S02", "r2", items=["StHAR_A1"]).replace("GHES", "StHAR")
    )
    assert _refused(text) == [
        "ratings.csv, line 9: the rating of session P01-S01 by r2 lacks required items GHES_2, "
        "GHES_3, GHES_5, GHES_6, GHES_7 (import it anyway with --allow-incomplete)",
        "ratings.csv, line 11: the rating of session P01-S02 by r2 lacks required items "
        "StHAR_A2, StHAR_A3, StHAR_A4, StHAR_A5, StHAR_R1, StHAR_R2, StHAR_R3 (import it anyway "
        "with --allow-incomplete)",
    ]


@pytest.mark.usefixtures("app", "study")
def test_allow_incomplete_imports_them_and_lists_each():
    text = (
        HEADER
        + rating_rows("P01-S01", "r1", items=GHES[:6])
        + rating_rows("P01-S01", "r2")
        + rating_rows("P01-S02", "r2", items=["GHES_7"])
    )
    result = _import(text, allow_incomplete=True)
    assert (result.ratings, result.scores) == (3, 14)
    assert [str(r) for r in result.incomplete] == [
        "ratings.csv, line 2: session P01-S01 by r1 lacks GHES_7",
        "ratings.csv, line 15: session P01-S02 by r2 lacks GHES_1, GHES_2, GHES_3, GHES_4, "
        "GHES_5, GHES_6",
    ]
    assert count(ItemScore) == 14


@pytest.mark.usefixtures("app", "study")
def test_a_stored_rating_completed_by_the_file_is_complete():
    _import(HEADER + rating_rows("P01-S01", "r1", items=GHES[:3]), allow_incomplete=True)
    result = _import(HEADER + rating_rows("P01-S01", "r1", items=GHES[3:]))
    assert result.incomplete == [] and count(ItemScore) == 7
    assert _refused(HEADER + rating_rows("P01-S02", "r1", items=GHES[:3])) != []


@pytest.mark.usefixtures("app")
def test_a_stored_draft_needs_the_items_of_every_instrument_it_pinned(study, factory):
    """A rating started in the browser pins every instrument; the file completes only GHES."""
    from rater.rating.service import start_rating

    (session, _), (r1, _, _) = study
    start_rating(factory.assignment(session, r1, "main"))
    db.session.commit()
    [problem] = _refused(HEADER + rating_rows("P01-S01", "r1"))
    assert problem.startswith(
        "ratings.csv, line 2: the rating of session P01-S01 by r1 lacks required items StHAR_A1, "
    )


@pytest.mark.usefixtures("study")
def test_items_not_required_may_be_left_out(app, tmp_path):
    app.config["RATER_INSTRUMENTS_DIR"] = str(write_tiny_instrument(tmp_path))
    text = "session_id,rater,instrument,item,score\nP01-S01,r1,TINY,TINY_1,3\n"
    assert _import(text).incomplete == []
    assert _refused(text.replace("TINY_1", "TINY_2").replace("r1", "r2")) == [
        "ratings.csv, line 2: the rating of session P01-S01 by r2 lacks required items TINY_1 "
        "(import it anyway with --allow-incomplete)"
    ]


@pytest.mark.usefixtures("app", "study")
def test_the_command_refuses_or_lists_incomplete_ratings(runner, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + rating_rows("P01-S01", "r1", items=GHES[:5]), encoding="utf-8")
    refused = runner.invoke(args=["ratings", "import", str(path)])
    assert refused.exit_code == 1
    assert "line 2: the rating of session P01-S01 by r1 lacks required items GHES_6" in (
        refused.output
    )
    assert count(Rating) == 0
    allowed = runner.invoke(args=["ratings", "import", str(path), "--allow-incomplete"])
    assert allowed.exit_code == 0, allowed.output
    assert (
        "1 of them lack required items:\n  ratings.csv, line 2: session P01-S01 by r1 lacks "
        in (allowed.output)
    )
    assert count(Rating) == 1


# --- values no column can hold ------------------------------------------------------------

ROW = "P01-S01,r1,GHES,GHES_1,2,"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "S" * 65 + ",r1,GHES,GHES_1,2,",
            "column 'session_id': longer than 64 characters (value '" + "S" * 60 + "…')",
        ),
        (
            "P01-S01," + "r" * 81 + ",GHES,GHES_1,2,",
            "column 'rater': longer than 80 characters (value '" + "r" * 60 + "…')",
        ),
        (
            "P01-S01,r1,GHES," + "G" * 65 + ",2,",
            "column 'item': longer than 64 characters (value '" + "G" * 60 + "…')",
        ),
        (
            f"P01-S01,r1,GHES,GHES_1,{2**40},",
            "column 'score': out of range: GHES_1 takes whole numbers from 0 to 4 "
            "(value '1099511627776')",
        ),
        (
            "P01-S01,r\x001,GHES,GHES_1,2,",
            "column 'rater': contains a NUL character, which no database column can store "
            "(value 'r\\x001')",
        ),
        (
            "P01-S01,r1,GHES,GHES_\udc801,2,",
            "column 'item': contains a lone surrogate (U+DC80), which is not Unicode text; save "
            "the file as UTF-8 (value 'GHES_\\udc801')",
        ),
        (
            "P01-S01,r1,GHES,GHES_1,2,main,0001-01-01T00:00:00+01:00",
            "column 'submitted_at': must be an ISO 8601 date and time "
            "(value '0001-01-01T00:00:00+01:00')",
        ),
    ],
)
@pytest.mark.usefixtures("app", "study")
def test_values_beyond_a_column_are_named_alike_on_every_engine(row, problem):
    text = HEADER.replace("purpose", "purpose,submitted_at") + row
    text += "" if row.count(",") == 6 else ","
    assert _refused(text + "\n") == [f"ratings.csv, line 2, {problem}"]


# --- files longer than one statement takes ------------------------------------------------


TINY = """
code = "TINY"
name = "Tiny scale"

[[items]]
code = "TINY_1"
label = "One"
description = "Required."
anchors = { 0 = "none", 1 = "a little", 2 = "some", 3 = "much", 4 = "all" }

[[items]]
code = "TINY_2"
label = "Two"
description = "Optional."
anchors = { 0 = "none", 1 = "a little", 2 = "some", 3 = "much", 4 = "all" }
required = false
"""


def write_tiny_instrument(folder: Path) -> Path:
    """An instruments folder with one instrument: one required and one optional item."""
    (folder / "tiny.toml").write_text(TINY, encoding="utf-8")
    return folder


NUMBERS = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :last) "


def add_sessions(n: int) -> None:
    """Sessions S0 ... S{n-1} of patients P0 ... (ten each), built by the database itself."""
    db.session.execute(sql("INSERT INTO therapists (code) VALUES ('T1')"))
    db.session.execute(
        sql(NUMBERS + "INSERT INTO patients (code) SELECT 'P' || i FROM n"), {"last": n // 10}
    )
    db.session.execute(
        sql(
            NUMBERS + "INSERT INTO sessions (code, patient_id, therapist_id, session_number, "
            "phase, status) SELECT 'S' || i, "
            "(SELECT id FROM patients WHERE code = 'P' || (i / 10)), "
            "(SELECT id FROM therapists), i % 10 + 1, 'I', 'eligible' FROM n"
        ),
        {"last": n - 1},
    )
    db.session.commit()


def test_more_ratings_than_one_statement_takes_are_imported(
    app, factory, tmp_path, smallest_parameter_limit
):
    """A score for each of ten times more sessions than one statement takes parameters (70,000
    on PostgreSQL; the import read the file's sessions with one IN list before)."""
    n = rows_beyond_one_statement(smallest_parameter_limit)
    app.config["RATER_INSTRUMENTS_DIR"] = str(write_tiny_instrument(tmp_path))
    factory.user("r1")
    add_sessions(n)
    text = "session_id,rater,instrument,item,score\n" + "".join(
        f"S{i},r1,TINY,TINY_1,{i % 5}\n" for i in range(n)
    )
    result = _import(text)
    assert (result.ratings, result.scores, result.assignments_created) == (n, n, n)
    assert (count(Assignment), count(Rating), count(ItemScore)) == (n, n, n)
    imported = select(AuditEvent.entity_id).where(AuditEvent.action == "rating.import")
    assert len(set(db.session.scalars(imported))) == n
    assert set(db.session.scalars(select(Assignment.purpose).distinct())) == {"main"}
    last = db.session.execute(
        select(ItemScore.score, Rating.status)
        .join(Rating, Rating.id == ItemScore.rating_id)
        .join(Assignment, Assignment.id == Rating.assignment_id)
        .join(TherapySession, TherapySession.id == Assignment.session_id)
        .where(TherapySession.code == f"S{n - 1}")
    ).one()
    assert tuple(last) == ((n - 1) % 5, "submitted")
