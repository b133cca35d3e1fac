"""The tidy ratings frame: one query, ordered in the database, streamed in chunks."""

from __future__ import annotations

import random
from contextlib import contextmanager
from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import event, text

from rater.extensions import db
from rater.rating.frame import (
    RATINGS_COLUMNS,
    count_ratings,
    iter_ratings_frames,
    ratings_frame,
)

# Codes whose order differs between locale collations and code points (Python's sorted):
# case ("p01" / "P02"), punctuation ("a-b" / "ab" / "a b") and a non-ASCII letter ("Ä1").
SESSION_CODES = ["p01", "P02", "a-b", "ab", "a b", "Ä1", "Z9"]
RATERS = ["zoe", "Alice", "émile", "bob", "b-ob"]


def build(factory, seed: int = 3) -> dict[str, list[str]]:
    """Ratings of every session by some raters, scores inserted in a shuffled order."""
    from rater.auth.models import User
    from rater.rating.models import Assignment, ItemScore, Rating
    from rater.study.instrument_store import instrument_of, sync_instruments

    rng = random.Random(seed)
    versions = list(sync_instruments())
    # Made directly, not by the service: "émile" is a name from before the user-name rule
    # (ASCII only), which must still sort as Python sorts it.
    raters = [User(username=name, role="rater", password_hash="unused") for name in RATERS]
    db.session.add_all(raters)
    db.session.flush()
    sessions = [
        factory.session(code, f"pt{n % 3}", "T1", n + 1, audio=None)
        for n, code in enumerate(SESSION_CODES)
    ]
    pairs = [(s, r) for s in sessions for r in raters if rng.random() < 0.7]
    rng.shuffle(pairs)
    for session, rater in pairs:
        assignment = Assignment(session_id=session.id, rater_id=rater.id, purpose="main")
        db.session.add(assignment)
        db.session.flush()
        draft = rng.random() < 0.25
        rating = Rating(
            assignment_id=assignment.id,
            status="draft" if draft else "submitted",
            submitted_at=None if draft else datetime(2024, 5, 1, 10, rng.randrange(60)),
        )
        rating.instrument_versions = versions
        items = [(v, item) for v in versions for item in instrument_of(v).items]
        rng.shuffle(items)
        for version, item in items:
            rating.scores.append(
                ItemScore(
                    instrument_version_id=version.id,
                    item_code=item.code,
                    score=rng.randrange(5),
                )
            )
        db.session.add(rating)
    db.session.commit()
    return {v.code: instrument_of(v).item_codes for v in versions}


def order_of(frame: pd.DataFrame, items: dict[str, list[str]]) -> list[tuple]:
    return [
        (s, r, i, items[i].index(item))
        for s, r, i, item in zip(
            frame["session_id"], frame["rater"], frame["instrument"], frame["item"], strict=True
        )
    ]


@contextmanager
def locale_collation_on_postgresql():
    """On PostgreSQL, give the code columns a locale (ICU) collation for the test's duration.

    Without an explicit binary collation in the query, the rows would then come back in the
    locale's order ("a b", "a-b", "ab", "Ä1", "p01", "P02", ...), not Python's.
    """
    if db.engine.dialect.name != "postgresql":
        yield
        return
    set_collation("und-x-icu")
    try:
        locale = db.session.scalars(text("SELECT code FROM sessions ORDER BY code")).all()
        assert locale != sorted(locale)  # the locale really orders differently
        yield
    finally:
        db.session.rollback()
        set_collation("default")


def set_collation(collation: str) -> None:
    for table, column, size in [("sessions", "code", 64), ("users", "username", 80)]:
        db.session.execute(
            text(
                f"ALTER TABLE {table} ALTER COLUMN {column} "
                f'TYPE varchar({size}) COLLATE "{collation}"'
            )
        )
    db.session.commit()


def test_rows_are_ordered_as_python_sorts_them(factory) -> None:
    items = build(factory)
    with locale_collation_on_postgresql():
        for include_drafts in (False, True):
            frame = ratings_frame(include_drafts=include_drafts)
            assert len(frame) > 100
            assert order_of(frame, items) == sorted(order_of(frame, items))
            assert set(frame["session_id"]) == set(SESSION_CODES)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 100_000])
def test_chunks_concatenate_to_the_frame(factory, chunk_rows: int) -> None:
    build(factory, seed=chunk_rows)
    for include_drafts in (False, True):
        whole = ratings_frame(include_drafts=include_drafts)
        chunks = list(iter_ratings_frames(include_drafts=include_drafts, chunk_rows=chunk_rows))
        assert all(0 < len(c) <= chunk_rows for c in chunks)
        assert len(chunks) == -(-len(whole) // chunk_rows)
        for chunk in chunks:
            assert list(chunk.columns) == RATINGS_COLUMNS
            assert chunk.dtypes.to_dict() == whole.dtypes.to_dict()
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
        assert count_ratings(include_drafts) == len(whole)


def test_types_and_values(factory) -> None:
    items = build(factory)
    frame = ratings_frame(include_drafts=True)
    # nullable: N/A and nominal/text answers have no score (issue 16)
    assert frame["score"].dtype == "Int64" and frame["score"].between(0, 4).all()
    assert frame["not_applicable"].dtype == "int64" and (frame["not_applicable"] == 0).all()
    assert frame["session_number"].dtype == "int64"
    assert frame["rating_id"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(frame["submitted_at"])
    drafts = frame["rating_status"] == "draft"
    assert frame.loc[drafts, "submitted_at"].isna().all()
    assert frame.loc[~drafts, "submitted_at"].notna().all()
    sthar = frame[frame["instrument"] == "StHAR"]
    assert set(sthar["subscale"]) == {"StH-A", "StH-R"}
    assert frame.loc[frame["instrument"] == "GHES", "subscale"].isna().all()
    assert set(frame["item"]) == {code for codes in items.values() for code in codes}
    submitted = ratings_frame()
    assert (submitted["rating_status"] == "submitted").all()
    assert len(submitted) == (~drafts).sum()


@pytest.mark.usefixtures("app")
def test_an_empty_study_gives_one_empty_typed_frame() -> None:
    chunks = list(iter_ratings_frames())
    assert len(chunks) == 1 and chunks[0].empty
    frame = ratings_frame()
    assert list(frame.columns) == RATINGS_COLUMNS and frame.empty
    assert frame["score"].dtype == "Int64"
    assert count_ratings() == 0


def test_the_frame_is_read_with_one_query_after_the_instrument_lookup(factory) -> None:
    build(factory)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        chunks = list(iter_ratings_frames(include_drafts=True, chunk_rows=5))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(chunks) > 10
    assert len(selects) == 2, selects  # the instrument versions, then the rows
    assert "item_scores" in selects[1] and "ORDER BY" in selects[1]


@pytest.mark.usefixtures("app")
def test_chunk_rows_must_be_positive() -> None:
    with pytest.raises(ValueError):
        next(iter_ratings_frames(chunk_rows=0))
