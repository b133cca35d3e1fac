"""Arbitrary CSV files to both importers: a result or ImportFailed, never half-written, never a
crash (values no column can hold included); an imported file keeps one main rater per session."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from rater.csvinput import ImportFailed
from rater.extensions import db
from rater.rating.importer import import_ratings
from rater.rating.models import Assignment
from rater.study.catalogue import import_sessions

SESSION_COLUMNS = ["session_id", "patient", "therapist", "session_number", "phase", "audio",
                   "recorded_on", "status", "exclusion_reason", "phq9", "extra"]  # fmt: skip
RATING_COLUMNS = ["session_id", "rater", "instrument", "item", "score", "purpose",
                  "submitted_at", "extra"]  # fmt: skip
CELL = {
    "session_id": ["P01-S02", "P02-S03", "P09-S01", "P01-S02 ", "", "x" * 70, "P09\x00S1"],
    "patient": ["P01", "P02", "P09", "", "P\ud8000", "p" * 65],
    "therapist": ["T1", "T2", "", "T\x001"],
    "session_number": ["1", "2", "3", "0", "-4", "two", "9" * 30, "", str(2**40), "2147483647"],
    "phase": ["I", "II", "III", ""],
    "audio": ["demo-session-a.ogg", "missing.ogg", "../../etc/passwd", "/etc/passwd", ""],
    "recorded_on": ["2024-02-30", "2024-03-01", "yesterday", ""],
    "status": ["eligible", "excluded", "EXCLUDED", "maybe", ""],
    "exclusion_reason": ["no audio", ""],
    "phq9": ["0", "27", "28", "-1", "x", ""],
    "rater": ["rater_a", "rater_b", "coord", "nobody", "", "r" * 81, "rater_\udc80"],
    "instrument": ["GHES", "StHAR", "PHQ", ""],
    "item": ["GHES_1", "GHES_5", "StHAR_A1", "StHAR_R3", "GHES_99", "", "G" * 65],
    "score": ["0", "4", "5", "-1", "2.5", "x", ""],
    "purpose": ["main", "double", "calibration", "other", ""],
    "submitted_at": ["2024-03-01T10:00:00Z", "2024-13-01", "now", "", "0001-01-01T00:00+01:00"],
    "extra": ["", "anything"],
}
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def csv_files(draw, columns: list[str]) -> bytes:
    header = draw(st.lists(st.sampled_from(columns), min_size=0, max_size=len(columns)))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row = [draw(st.sampled_from(CELL[c]) | st.text(max_size=12)) for c in header]
        if draw(st.integers(0, 9)) == 0:  # ragged
            row = row[: draw(st.integers(0, len(row)))] + draw(st.lists(st.text(max_size=3)))
        if row and draw(st.integers(0, 19)) == 0:  # huge field
            row[0] = "é" * 100_001
        rows.append(row)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):
        text = text.replace('"', draw(st.sampled_from(['"', '""', "'", ""])), 1)  # broken quotes
    encoding = draw(st.sampled_from(ENCODINGS))  # UTF-8 keeps lone surrogates, as bytes
    data = text.encode(encoding, errors="surrogatepass" if "utf-8" in encoding else "replace")
    return data if draw(st.integers(0, 9)) else data + draw(st.binary(max_size=20))


def _counts() -> dict[str, int]:
    return {
        t.name: db.session.scalar(select(func.count()).select_from(t))
        for t in db.metadata.sorted_tables
    }


def _import_is_all_or_nothing(run) -> None:
    before = _counts()
    try:
        run()
    except ImportFailed as failed:
        db.session.rollback()
        assert failed.problems and all(str(p) for p in failed.problems)
        assert _counts() == before
        return
    db.session.commit()


@FUZZ
@given(data=csv_files(SESSION_COLUMNS))
@pytest.mark.usefixtures("world")
def test_session_catalogue_import(app, data):
    audio_dir = app.config["RATER_AUDIO_DIR"]
    _import_is_all_or_nothing(lambda: import_sessions(data, "sessions.csv", audio_dir))


@FUZZ
@given(data=csv_files(RATING_COLUMNS), allow_incomplete=st.booleans())
@pytest.mark.usefixtures("app", "world")
def test_ratings_import(data, allow_incomplete):
    _import_is_all_or_nothing(
        lambda: import_ratings(data, "ratings.csv", allow_incomplete=allow_incomplete)
    )
    mains = (
        select(Assignment.session_id)
        .where(Assignment.purpose == "main")
        .group_by(Assignment.session_id)
        .having(func.count() > 1)
    )
    assert db.session.scalars(mains).all() == []


@pytest.mark.usefixtures("world")
def test_failed_import_writes_nothing_even_before_rollback(app):
    """A file whose last row is bad: the good rows before it are not flushed either."""
    before = _counts()
    data = b"session_id,patient,therapist,session_number\nP05-S01,P05,T9,1\nP05-S02,P05,T9,x\n"
    with pytest.raises(ImportFailed):
        import_sessions(data, "sessions.csv", app.config["RATER_AUDIO_DIR"])
    assert _counts() == before
