"""Instrument versions in the database: a changed file is a new version; ratings keep theirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from rater.extensions import db
from rater.rating.models import Rating
from rater.study.instrument_store import current_versions, sync_instruments
from rater.study.models import InstrumentVersion

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("app")
def test_sync_is_idempotent():
    first = sync_instruments()
    second = sync_instruments()
    assert [v.id for v in first] == [v.id for v in second]
    assert [(v.code, v.version) for v in first] == [("GHES", 1), ("StHAR", 1)]


def test_changed_file_makes_a_new_version_and_ratings_keep_theirs(app, factory, tmp_path):
    folder = tmp_path / "instruments"
    folder.mkdir()
    shutil.copy(ROOT / "instruments" / "ghes.toml", folder / "ghes.toml")
    app.config["RATER_INSTRUMENTS_DIR"] = str(folder)
    v1 = current_versions()["GHES"]
    rater = factory.user("r1")
    assignment = factory.assignment(factory.session(), rater)
    rating = Rating(assignment_id=assignment.id)
    rating.instrument_versions.append(v1)
    db.session.add(rating)
    db.session.commit()

    text = (folder / "ghes.toml").read_text(encoding="utf-8")
    (folder / "ghes.toml").write_text(text.replace("Time spent", "Time spent on it"), "utf-8")
    v2 = current_versions()["GHES"]
    db.session.commit()

    assert (v1.version, v2.version) == (1, 2)
    assert v1.content_hash != v2.content_hash
    assert v2.definition["items"][6]["label"] == "Time spent on it"
    db.session.expire_all()
    kept = db.session.get(Rating, rating.id)
    assert [v.version for v in kept.instrument_versions] == [1]
    assert db.session.scalars(select(InstrumentVersion.version)).all() == [1, 2]


def test_third_instrument_is_picked_up(app, tmp_path):
    folder = tmp_path / "instruments"
    shutil.copytree(ROOT / "instruments", folder)
    from tests.instruments.test_instruments import SMALL

    (folder / "wai.toml").write_text(SMALL, encoding="utf-8")
    app.config["RATER_INSTRUMENTS_DIR"] = str(folder)
    assert sorted(current_versions()) == ["GHES", "StHAR", "WAI"]
