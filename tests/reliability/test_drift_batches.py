"""Drift per batch: the ratings frame carries each rating's batch (in its one query), and the
per-batch drift equals an independent pandas computation over that frame."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import event, select

from rater.extensions import db
from rater.rating.frame import ratings_frame
from rater.reliability import consensus, plots

RATERS = ["ann", "bob", "cid"]


def build(factory, sessions: int, seed: int = 11, start: int = 0) -> None:
    """Sessions double-coded by two of three raters, each assignment in a batch (1-3) or
    in none (released before batches); every rating submitted with scores of every item."""
    from rater.auth.models import User
    from rater.rating.models import Assignment, ItemScore, Rating
    from rater.study.instrument_store import instrument_of, sync_instruments

    rng = random.Random(seed)
    versions = list(sync_instruments())
    users = {u.username: u for u in db.session.scalars(select(User).where(User.role == "rater"))}
    for name in RATERS:
        if name not in users:
            users[name] = factory.user(name)
    for n in range(start, start + sessions):
        session = factory.session(f"P{n % 4}-S{n:02d}", f"P{n % 4}", "T1", n // 4 + 1, audio=None)
        for rater in rng.sample(RATERS, 2):
            batch = rng.choice([None, 1, 2, 3])
            a = Assignment(
                session_id=session.id, rater_id=users[rater].id, purpose="main", batch=batch
            )
            db.session.add(a)
            db.session.flush()
            rating = Rating(
                assignment_id=a.id,
                status="submitted",
                submitted_at=datetime(2026, 3, 1) + timedelta(hours=rng.randrange(2000)),
            )
            rating.instrument_versions = versions
            for version in versions:
                for item in instrument_of(version).items:
                    if item.is_numeric:
                        rating.scores.append(
                            ItemScore(
                                instrument_version_id=version.id,
                                item_code=item.code,
                                score=rng.randrange(5) if rater != "cid" else rng.randrange(2, 5),
                            )
                        )
            db.session.add(rating)
    db.session.commit()


def expected_drift(frame: pd.DataFrame, item: str) -> pd.DataFrame:
    """Each rater's mean (own score - partner's score) per the batch of their own assignment,
    straight from the frame's rows (no code of the report)."""
    rows = frame[(frame["item"] == item) & frame["score"].notna()]
    rows = rows[["session_id", "rater", "score", "batch"]]
    both = rows.merge(rows, on="session_id", suffixes=("", "_partner"))
    both = both[both["rater"] != both["rater_partner"]]
    both = both.assign(
        diff=both["score"].astype(float) - both["score_partner"].astype(float),
        period=both["batch"].map(lambda b: "no batch" if pd.isna(b) else f"batch {int(b)}"),
    )
    out = both.groupby(["rater", "period"])["diff"].agg(n="size", mean_difference="mean")
    return out.sort_index()


def count_statements():
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine, "before_cursor_execute", record)


def test_frame_carries_each_ratings_batch_in_one_query(factory) -> None:
    from rater.rating.models import Assignment, Rating

    build(factory, sessions=6)
    seen, stop = count_statements()
    try:
        small = ratings_frame()
        few = len(seen)
        build(factory, sessions=10, seed=12, start=6)
        seen.clear()
        large = ratings_frame()
        assert len(seen) == few  # as many statements for 16 sessions as for 6: no query per row
    finally:
        stop()
    assert len(large) > len(small) > 0
    assert str(large["batch"].dtype) == "Int64"
    stored = dict(
        db.session.execute(
            select(Rating.id, Assignment.batch).join(
                Assignment, Rating.assignment_id == Assignment.id
            )
        ).all()
    )
    got = large.drop_duplicates("rating_id").set_index("rating_id")["batch"]
    assert {k: (None if pd.isna(v) else int(v)) for k, v in got.items()} == stored
    assert large["batch"].isna().any() and set(large["batch"].dropna()) == {1, 2, 3}


@pytest.mark.parametrize("item", ["GHES_1", "StHAR_A1"])
def test_drift_by_batch_equals_an_independent_computation(factory, item) -> None:
    build(factory, sessions=24)
    frame = ratings_frame()
    rep = consensus.load_report(design="none")
    paired = rep.paired[rep.paired["measure"] == item]
    table = plots.drift_table(paired, by="batch").set_index(["rater", "period"]).sort_index()
    expected = expected_drift(frame, item)
    assert list(table.index) == list(expected.index)
    assert len(table) >= 3 * 4 - 2  # most raters have sessions of every batch and of none
    assert table["n"].tolist() == expected["n"].tolist()
    assert table["mean_difference"].to_numpy() == pytest.approx(
        expected["mean_difference"].to_numpy()
    )
    # cid scores 2-4, the others 0-4: cid sits above their partners in (nearly) every batch
    assert (table.loc["cid", "mean_difference"] > 0).sum() >= 3


def test_drift_periods_come_in_batch_order() -> None:
    rows = []
    for n, batch in enumerate([None, 10, 2, 1, 2, 10, None]):
        rows.append(
            {"instrument": "I", "measure": "M", "kind": "score", "session_id": f"S{n}",
             "session_number": 1, "patient": "P", "rater_1": "ann", "rater_2": "bob",
             "value_1": 3.0, "value_2": 1.0, "batch_1": batch, "batch_2": 1,
             "submitted_at_1": pd.Timestamp("2026-01-01"),
             "submitted_at_2": pd.Timestamp("2026-01-02")}
        )  # fmt: skip
    table = plots.drift_table(pd.DataFrame(rows), by="batch")
    ann = table[table["rater"] == "ann"]
    assert ann["period"].tolist() == ["no batch", "batch 1", "batch 2", "batch 10"]
    assert ann["mean_difference"].tolist() == [2.0, 2.0, 2.0, 2.0]
    bob = table[table["rater"] == "bob"]
    assert bob["period"].tolist() == ["batch 1"] and bob["n"].tolist() == [7]
    svg = plots.drift_svg(pd.DataFrame(rows), "M score", by="batch")
    assert "batch 10" in svg and "no batch" in svg and ">batch<" in svg  # ticks and axis


def test_drift_pages_offer_and_draw_by_batch(factory, client, auth) -> None:
    build(factory, sessions=12)
    factory.user("coord", role="coordinator")
    auth.login("coord")
    html = client.get("/reliability/?drift=batch").get_data(as_text=True)
    assert "drift.svg?by=batch" in html and "by batch." in html
    assert 'href="/reliability/?drift=month' in html
    page = client.get("/reliability/measure/GHES/GHES_score?by=batch").get_data(as_text=True)
    assert "drift.svg?by=batch" in page
    svg = client.get("/reliability/plot/GHES/GHES_score/drift.svg?by=batch")
    assert svg.status_code == 200 and "batch 3" in svg.get_data(as_text=True)
    assert client.get("/reliability/?drift=week").status_code == 400
    assert client.get("/reliability/plot/GHES/GHES_score/drift.svg?by=week").status_code == 400
