"""Instrument versions in the database: the instruments folder, as stored for ratings.

``sync_instruments`` stores a new version whenever a file's content has changed; ratings keep
pointing at the version they were started with.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from rater import audit
from rater.extensions import db
from rater.instruments import Instrument, instrument_from_definition, load_instruments
from rater.study.models import InstrumentVersion


def instruments_dir() -> Path:
    return Path(current_app.config["RATER_INSTRUMENTS_DIR"])


def sync_instruments(folder: Path | None = None) -> list[InstrumentVersion]:
    """The current version of every instrument in the folder, storing new ones (flush only)."""
    current = []
    for instrument in load_instruments(folder or instruments_dir()):
        current.append(_version_for(instrument))
    db.session.flush()
    return current


def _version_for(instrument: Instrument) -> InstrumentVersion:
    found = db.session.scalar(
        select(InstrumentVersion).where(
            InstrumentVersion.code == instrument.code,
            InstrumentVersion.content_hash == instrument.content_hash,
        )
    )
    if found is not None:
        return found
    latest = db.session.scalar(
        select(func.max(InstrumentVersion.version)).where(InstrumentVersion.code == instrument.code)
    )
    version = InstrumentVersion(
        code=instrument.code,
        version=(latest or 0) + 1,
        content_hash=instrument.content_hash,
        source_file=instrument.source_file,
        definition=instrument.definition(),
    )
    db.session.add(version)
    db.session.flush()
    audit.record(
        "instrument.version",
        "instrument_version",
        version.id,
        after={"code": version.code, "version": version.version, "hash": version.content_hash},
    )
    return version


def current_versions() -> dict[str, InstrumentVersion]:
    """Code -> the current version, syncing the folder first."""
    return {v.code: v for v in sync_instruments()}


def instrument_of(version: InstrumentVersion) -> Instrument:
    return instrument_from_definition(version.definition)


def all_versions() -> list[InstrumentVersion]:
    return list(
        db.session.scalars(
            select(InstrumentVersion).order_by(InstrumentVersion.code, InstrumentVersion.version)
        )
    )
