"""The session catalogue import: good files, each kind of bad row, idempotence, all-or-nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rater.audit import AuditEvent
from rater.csvinput import ImportFailed
from rater.extensions import db
from rater.study.catalogue import import_sessions, phase_for
from rater.study.models import Patient, Therapist, TherapySession
from tests.support.imports import rows_beyond_one_statement

HEADER = (
    "session_id,patient,therapist,session_number,phase,audio,recorded_on,status,"
    "exclusion_reason,phq9\n"
)
GOOD = HEADER + (
    "P01-S01,P01,T1,1,,demo-session-a.ogg,2024-01-08,eligible,,18\n"
    "P01-S05,P01,T1,5,,demo-session-b.ogg,2024-02-05,,,12\n"
    "P02-S02,P02,T2,2,II,,,excluded,recording incomplete,\n"
)


def _import(app, text: str, name: str = "sessions.csv"):
    result = import_sessions(text.encode("utf-8"), name, app.config["RATER_AUDIO_DIR"])
    db.session.commit()
    return result


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_good_file_imports_every_field(app):
    result = _import(app, GOOD)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    s1 = db.session.scalar(select(TherapySession).filter_by(code="P01-S01"))
    assert (s1.patient.code, s1.therapist.code, s1.session_number, s1.phase) == (
        "P01",
        "T1",
        1,
        "I",
    )
    assert s1.recorded_on.isoformat() == "2024-01-08" and s1.phq9 == 18
    assert s1.duration_seconds == pytest.approx(68.28, abs=0.05)  # read from the Ogg file
    s5 = db.session.scalar(select(TherapySession).filter_by(code="P01-S05"))
    assert s5.phase == "II" and s5.status == "eligible"
    s2 = db.session.scalar(select(TherapySession).filter_by(code="P02-S02"))
    assert (s2.phase, s2.status, s2.exclusion_reason) == ("II", "excluded", "recording incomplete")
    assert s2.audio_path is None and s2.duration_seconds is None
    assert (_count(Patient), _count(Therapist)) == (2, 2)


def test_importing_the_same_file_again_changes_nothing(app):
    _import(app, GOOD)
    again = _import(app, GOOD)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert _count(TherapySession) == 3


def test_changed_row_is_updated_in_place(app):
    _import(app, GOOD)
    result = _import(app, GOOD.replace("2024-01-08,eligible,,18", "2024-01-08,eligible,,17"))
    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    assert db.session.scalar(select(TherapySession.phq9).filter_by(code="P01-S01")) == 17


def test_bom_and_crlf_are_accepted(app):
    data = ("\ufeff" + GOOD).replace("\n", "\r\n").encode("utf-8")
    result = import_sessions(data, "excel.csv", app.config["RATER_AUDIO_DIR"])
    assert result.created == 3


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("P03-S01,P03,T1,one,,,,,,", "session_number", "must be a whole number"),
        ("P03-S01,P03,T1,0,,,,,,", "session_number", "must be a whole number from 1 to"),
        ("P03-S01,P03,T1,1_0,,,,,,", "session_number", "must be a whole number from 1 to"),
        ("P03-S01,,T1,1,,,,,,", "patient", "is empty"),
        ("P03-S01,P03,T1,1,III,,,,,", "phase", "must be one of I, II"),
        ("P03-S01,P03,T1,1,,,,maybe,,", "status", "must be 'eligible' or 'excluded'"),
        ("P03-S01,P03,T1,1,,,,excluded,,", "exclusion_reason", "needs a reason"),
        ("P03-S01,P03,T1,1,,,08.01.2024,,,", "recorded_on", "YYYY-MM-DD"),
        ("P03-S01,P03,T1,1,,,,,,28", "phq9", "from 0 to 27"),
        ("P03-S01,P03,T1,1,,../secret.ogg,,,,", "audio", "must be relative"),
        ("P03-S01,P03,T1,1,,/etc/passwd,,,,", "audio", "must be relative"),
        ("P01-S01,P01,T1,1,,,,,,", "session_id", "duplicate of line 2"),
        ("P01-S09,P01,T1,1,,,,,,", "session_number", "already has this session number"),
    ],
)
def test_each_kind_of_bad_row_is_named_and_nothing_is_written(app, row, column, message):
    text = GOOD + row + "\n"
    with pytest.raises(ImportFailed) as info:
        import_sessions(text.encode(), "bad.csv", app.config["RATER_AUDIO_DIR"])
    db.session.rollback()
    problems = info.value.problems
    assert any(p.line == 5 and p.column == column and message in p.message for p in problems), [
        str(p) for p in problems
    ]
    assert all(str(p).startswith("bad.csv, line ") for p in problems)
    assert _count(TherapySession) == 0


@pytest.mark.usefixtures("app")
def test_missing_required_column_is_named():
    with pytest.raises(ImportFailed) as info:
        import_sessions(b"session_id,patient,session_number\nX,P,1\n", "f.csv", "audio")
    assert [(p.line, p.column) for p in info.value.problems] == [(1, "therapist")]


@pytest.mark.usefixtures("app")
def test_not_utf8_is_refused_with_line():
    data = GOOD.encode() + "P09-S01,Müller,T1,1,,,,,,\n".encode("latin-1")
    with pytest.raises(ImportFailed) as info:
        import_sessions(data, "latin.csv", "audio")
    assert info.value.problems[0].line == 5
    assert "not UTF-8" in info.value.problems[0].message


@pytest.mark.usefixtures("app")
def test_ragged_row_is_refused():
    with pytest.raises(ImportFailed, match="1 problem"):
        import_sessions((GOOD + "P04-S01,P04,T1\n").encode(), "f.csv", "audio")


def test_missing_audio_file_is_a_warning_not_an_error(app):
    result = _import(app, HEADER + "P05-S01,P05,T1,1,,nowhere.ogg,,,,\n")
    assert result.created == 1
    assert result.warnings == ["sessions.csv, line 2: audio file 'nowhere.ogg' not found"]


def test_existing_patient_session_number_is_a_conflict(app):
    _import(app, GOOD)
    with pytest.raises(ImportFailed, match="1 problem"):
        import_sessions(
            (HEADER + "OTHER,P01,T1,1,,,,,,\n").encode(),
            "second.csv",
            app.config["RATER_AUDIO_DIR"],
        )
    db.session.rollback()
    assert _count(TherapySession) == 3


@pytest.mark.parametrize(("number", "phase"), [(1, "I"), (4, "I"), (5, "II"), (12, "II")])
def test_phase_from_session_number(number, phase):
    assert phase_for(number) == phase


def test_phase_boundary_is_configurable():
    assert phase_for(5, boundary=6) == "I"


LONG, SHOWN = "S" * 65, "S" * 60 + "…"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            f"{LONG},P03,T1,1,,,,,,",
            f"bad.csv, line 5, column 'session_id': longer than 64 characters (value '{SHOWN}')",
        ),
        (
            f"P03-S01,{LONG},T1,1,,,,,,",
            f"bad.csv, line 5, column 'patient': longer than 64 characters (value '{SHOWN}')",
        ),
        (
            f"P03-S01,P03,{LONG},1,,,,,,",
            f"bad.csv, line 5, column 'therapist': longer than 64 characters (value '{SHOWN}')",
        ),
        (
            f"P03-S01,P03,T1,1,,{'a' * 509}.ogg,,,,",
            f"bad.csv, line 5, column 'audio': longer than 512 characters (value '{'a' * 60}…')",
        ),
        (
            f"P03-S01,P03,T1,1,,{'a' * 300}.ogg,,,,",
            "bad.csv, line 5, column 'audio': is not a usable file name here "
            f"(value '{'a' * 60}…')",
        ),
        (
            f"P03-S01,P03,T1,{2**40},,,,,,",
            "bad.csv, line 5, column 'session_number': must be a whole number from 1 to "
            "2147483647 (value '1099511627776')",
        ),
        (
            "P03-S01,P03,T1,2147483648,,,,,,",
            "bad.csv, line 5, column 'session_number': must be a whole number from 1 to "
            "2147483647 (value '2147483648')",
        ),
        (
            "P03-S01,P0\x003,T1,1,,,,,,",
            "bad.csv, line 5, column 'patient': contains a NUL character, which no database "
            "column can store (value 'P0\\x003')",
        ),
        (
            "P03-S01,P03,T1,1,,,,excluded,no\x00audio,",
            "bad.csv, line 5, column 'exclusion_reason': contains a NUL character, which no "
            "database column can store (value 'no\\x00audio')",
        ),
        (
            "P03-S01,P03,T\ud8001,1,,,,,,",
            "bad.csv, line 5, column 'therapist': contains a lone surrogate (U+D800), which is "
            "not Unicode text; save the file as UTF-8 (value 'T\\ud8001')",
        ),
    ],
)
def test_values_beyond_a_column_are_named_alike_on_every_engine(app, row, problem):
    """Values no column can hold: the same problem on SQLite and PostgreSQL, never a crash."""
    data = (GOOD + row + "\n").encode("utf-8", errors="surrogatepass")
    with pytest.raises(ImportFailed) as info:
        import_sessions(data, "bad.csv", app.config["RATER_AUDIO_DIR"])
    db.session.rollback()
    assert [str(p) for p in info.value.problems] == [problem]
    assert _count(TherapySession) == 0


def test_the_largest_session_number_both_engines_store_is_imported(app):
    _import(app, HEADER + "P03-S01,P03,T1,2147483647,,,,,,\n")
    assert db.session.scalar(select(TherapySession.session_number)) == 2_147_483_647


def _many_sessions(n: int, phq9: int = 9) -> str:
    rows = (
        f"P{i // 10:05d}-S{i % 10 + 1:02d},P{i // 10:05d},T{i % 7},{i % 10 + 1}" for i in range(n)
    )
    return "session_id,patient,therapist,session_number,phq9\n" + "".join(
        f"{row},{phq9}\n" for row in rows
    )


def test_more_sessions_than_one_statement_takes_import_and_reimport(app, smallest_parameter_limit):
    """Ten times more rows than one statement takes parameters (70,000 on PostgreSQL)."""
    n = rows_beyond_one_statement(smallest_parameter_limit)
    first = _import(app, _many_sessions(n))
    assert (first.created, first.updated, first.unchanged) == (n, 0, 0)
    assert (_count(TherapySession), _count(Patient), _count(Therapist)) == (n, n // 10, 7)
    assert _count(AuditEvent) == n
    patient = f"P{n // 10 - 1:05d}"
    last = db.session.scalar(select(TherapySession).filter_by(code=f"{patient}-S10"))
    assert (last.patient.code, last.therapist.code, last.session_number, last.phase, last.phq9) == (
        patient,
        f"T{(n - 1) % 7}",
        10,
        "II",
        9,
    )
    row = f"{patient}-S10,{patient},T{(n - 1) % 7},10"
    changed = _many_sessions(n).replace(f"{row},9", f"{row},3")
    again = _import(app, changed)
    assert (again.created, again.updated, again.unchanged) == (0, 1, n - 1)
    assert db.session.scalar(select(TherapySession.phq9).filter_by(code=f"{patient}-S10")) == 3
    assert _count(AuditEvent) == n + 1
