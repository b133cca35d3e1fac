"""Instrument versions in the database: the instruments folder, as stored for ratings.

``sync_instruments`` stores a new version whenever a file's content has changed; ratings keep
pointing at the version they were started with.

A stored version never changes, so its parsed ``Instrument`` is cached per process, keyed by
(code, content hash): validating a definition with pydantic costs milliseconds, and autosave and
the rating page need the pinned instruments on every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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


def store_version(instrument: Instrument) -> InstrumentVersion:
    """The stored version of an instrument that is not in the folder (e.g. the demo's coding
    sheet, pinned to some ratings only), stored when new (flush only)."""
    return _version_for(instrument)


def current_versions() -> dict[str, InstrumentVersion]:
    """Code -> the current version, syncing the folder first."""
    return {v.code: v for v in sync_instruments()}


_PARSED: dict[tuple[str, str], Instrument] = {}


def instrument_of(version: InstrumentVersion) -> Instrument:
    """The instrument of a stored version (parsed once per process; treat it as read-only)."""
    return cached_instrument(version.code, version.content_hash, lambda: version.definition)


def cached_instrument(
    code: str, content_hash: str, definition: Callable[[], Mapping[str, Any]]
) -> Instrument:
    """The parsed instrument of (code, content hash); ``definition`` is only called on a miss."""
    key = (code, content_hash)
    found = _PARSED.get(key)
    if found is None:
        found = _PARSED[key] = instrument_from_definition(definition())
    return found


def all_versions() -> list[InstrumentVersion]:
    return list(
        db.session.scalars(
            select(InstrumentVersion).order_by(InstrumentVersion.code, InstrumentVersion.version)
        )
    )
