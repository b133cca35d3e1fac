"""Exports from the database: load the frames (one query each), build tables, write files.

Nothing here writes to the database. The ratings and sessions frames come from
``rater.rating.frame``; the ``long`` kind (CSV and Parquet) streams the ratings query chunk by
chunk, so its memory does not grow with the study. The homework log, difficulties, consensus
scores, audit events and instrument versions are each read with one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import aliased

from rater.audit import AuditEvent
from rater.auth.models import User
from rater.coding.service import coded_values as coding_values
from rater.coding.service import events_frame
from rater.export import tables, writer
from rater.export.statistics import STATS_FORMATS, STATS_KINDS, write_stats
from rater.extensions import db
from rater.instruments import instrument_from_definition
from rater.rating.frame import (
    RATINGS_COLUMNS,
    count_ratings,
    iter_ratings_frames,
    ratings_frame,
    sessions_frame,
)
from rater.rating.models import (
    Assignment,
    ConsensusScore,
    HomeworkEntry,
    Rating,
    RatingDifficulty,
)
from rater.reliability.report import report
from rater.reliability.values import session_minutes
from rater.study.models import InstrumentVersion, Patient, Therapist, TherapySession
from rater.timeutil import utcnow
from rater.version import __version__

FORMATS = ("csv", "xlsx", "parquet", *STATS_FORMATS)
LONG_CHUNK_ROWS = writer.CHUNK_ROWS  # rows per chunk when streaming the long export

# Kinds whose content each option changes (and whose file names therefore carry it).
RESOLVING_KINDS = ("sessions", "all")
DRAFT_KINDS = ("long", "wide", "sessions", "homework", "reliability", "all")
CALIBRATION_KINDS = RESOLVING_KINDS
# Kinds of raters' own scores: no resolution across raters applies (said in their meta file).
OWN_SCORE_KINDS = ("long", "wide", "reliability")
OWN_SCORES = "none: each rater's own scores; consensus scores and resolution apply in sessions"


@dataclass(frozen=True)
class Options:
    include_drafts: bool = False
    include_calibration: bool = False
    resolve: str | None = None  # None: not chosen, tables.DEFAULT_RESOLVE applies
    excel: bool = False

    @property
    def resolve_mode(self) -> str:
        """The resolution applied: the one chosen, else the default."""
        return self.resolve or tables.DEFAULT_RESOLVE


def format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "csv"


def resolution_of(kind: str, options: Options) -> dict[str, Any] | None:
    """Which resolution across raters a kind's rows went through (for the meta file and page).

    ``mode`` is None for kinds of raters' own scores; ``default`` says the mode was not chosen.
    """
    if kind in RESOLVING_KINDS:
        mode = options.resolve_mode
        return {
            "mode": mode,
            "default": options.resolve is None,
            "meaning": tables.RESOLVE_MEANINGS[mode],
        }
    if kind in OWN_SCORE_KINDS:
        return {"mode": None, "default": False, "meaning": OWN_SCORES}
    return None


def file_name(kind: str, fmt: str, options: Options, on: date) -> str:
    """``rater-sessions-consensus-2026-11-30.csv``: the kind, the resolution where one applies,
    ``with-drafts`` / ``with-calibration`` where they change the rows, the date."""
    parts = ["rater", kind]
    if kind in RESOLVING_KINDS:
        parts.append(options.resolve_mode)
    if options.include_drafts and kind in DRAFT_KINDS:
        parts.append("with-drafts")
    if options.include_calibration and kind in CALIBRATION_KINDS:
        parts.append("with-calibration")
    return "-".join([*parts, on.isoformat()]) + f".{fmt}"


def default_format(kind: str) -> str:
    return "xlsx" if kind == "all" else "csv"


def meta_options(kind: str, options: Options) -> dict[str, Any]:
    """The options as the meta file records them (``resolve`` only where it applies)."""
    return {
        "include_drafts": options.include_drafts,
        "include_calibration": options.include_calibration,
        "resolve": options.resolve_mode if kind in RESOLVING_KINDS else None,
        "excel": options.excel,
    }


# ---------------------------------------------------------------------------- loading


def instruments() -> list[tables.VersionedInstrument]:
    """The latest stored version of every instrument, by code (read-only)."""
    latest: dict[str, InstrumentVersion] = {}
    for version in db.session.scalars(
        select(InstrumentVersion).order_by(InstrumentVersion.code, InstrumentVersion.version)
    ):
        latest[version.code] = version
    return [
        tables.VersionedInstrument(instrument_from_definition(v.definition), v.version)
        for _, v in sorted(latest.items())
    ]


def homework_frame() -> pd.DataFrame:
    """Every homework log entry with its session, rater and rating status (one query)."""
    rater_user = aliased(User)
    author = aliased(User)
    rows = db.session.execute(
        select(
            HomeworkEntry.id,
            TherapySession.code,
            Patient.code,
            Therapist.code,
            TherapySession.session_number,
            TherapySession.phase,
            HomeworkEntry.kind,
            HomeworkEntry.rating_id,
            rater_user.username,
            HomeworkEntry.homework_type,
            HomeworkEntry.completion,
            HomeworkEntry.description,
            author.username,
            Rating.status,
            HomeworkEntry.created_at,
        )
        .join(TherapySession, HomeworkEntry.session_id == TherapySession.id)
        .join(Patient, TherapySession.patient_id == Patient.id)
        .join(Therapist, TherapySession.therapist_id == Therapist.id)
        .join(author, HomeworkEntry.entered_by_id == author.id)
        .outerjoin(Rating, HomeworkEntry.rating_id == Rating.id)
        .outerjoin(Assignment, Rating.assignment_id == Assignment.id)
        .outerjoin(rater_user, Assignment.rater_id == rater_user.id)
    ).all()
    return pd.DataFrame(rows, columns=tables.HOMEWORK_INPUT)


def difficulties_frame() -> pd.DataFrame:
    rows = db.session.execute(
        select(RatingDifficulty.rating_id, RatingDifficulty.difficulty_type)
    ).all()
    return pd.DataFrame(rows, columns=["rating_id", "difficulty_type"])


def consensus_frame() -> pd.DataFrame:
    rows = db.session.execute(
        select(
            TherapySession.code,
            InstrumentVersion.code,
            ConsensusScore.item_code,
            ConsensusScore.score,
            ConsensusScore.value_text,
            ConsensusScore.not_applicable,
        )
        .join(TherapySession, ConsensusScore.session_id == TherapySession.id)
        .join(InstrumentVersion, ConsensusScore.instrument_version_id == InstrumentVersion.id)
    ).all()
    columns = ["session_id", "instrument", "item", "score", "value", "not_applicable"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["score"] = frame["score"].astype("Int64")
    frame["not_applicable"] = frame["not_applicable"].astype("int64")
    return frame


def audit_frame() -> pd.DataFrame:
    rows = db.session.execute(
        select(
            AuditEvent.id,
            AuditEvent.at,
            User.username,
            AuditEvent.action,
            AuditEvent.entity_type,
            AuditEvent.entity_id,
            AuditEvent.before,
            AuditEvent.after,
        ).outerjoin(User, AuditEvent.user_id == User.id)
    ).all()
    return pd.DataFrame(rows, columns=[c.name for c in tables.AUDIT])


def reliability_frames(
    ratings: pd.DataFrame, versioned, events: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """The reliability report's tables (with the event measures of ``events``)."""
    instruments = [v.instrument for v in versioned]
    minutes = session_minutes(sessions_frame())
    return dict(report(ratings, instruments, events=events, minutes=minutes).to_frames())


# ---------------------------------------------------------------------------- building


def build(kind: str, options: Options) -> pd.DataFrame:
    """The table of one export kind."""
    if kind not in tables.KINDS:
        raise ValueError(f"unknown export kind {kind!r}")
    if kind == "audit":
        return tables.audit_table(audit_frame())
    if kind == "homework":
        return tables.homework_table(homework_frame(), options.include_drafts)
    versioned = instruments()
    if kind == "codebook":
        return tables.codebook_table(versioned, _reliability_columns(versioned))
    if kind == "events":
        return tables.events_table(events_frame(options.include_drafts), versioned)
    ratings = ratings_frame(include_drafts=options.include_drafts)
    if kind == "long":
        return tables.long_table(ratings)
    if kind == "wide":
        return tables.wide_table(
            ratings,
            versioned,
            coded_values(versioned, options),
            session_minutes(sessions_frame()),
        )
    if kind == "reliability":
        events = coded_values(versioned, options)
        return tables.reliability_table(reliability_frames(ratings, versioned, events))
    return tables.sessions_table(
        ratings,
        sessions_frame(),
        versioned,
        resolve=options.resolve_mode,
        include_calibration=options.include_calibration,
        consensus=consensus_frame(),
        homework=homework_frame(),
        difficulties=difficulties_frame(),
        events=coded_values(versioned, options),
    )


def coded_values(versioned, options: Options) -> pd.DataFrame | None:
    """The event measures of every rating that uses a coding sheet (None without sheets)."""
    return coding_values([v.instrument for v in versioned], options.include_drafts)


def _reliability_columns(versioned) -> pd.DataFrame:
    """The reliability table's columns (from an empty report)."""
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in RATINGS_COLUMNS})
    return tables.reliability_table(reliability_frames(empty, versioned))


# ---------------------------------------------------------------------------- writing


Progress = Callable[[int], AbstractContextManager[Callable[[int], None] | None]]


def _no_progress(_total: int) -> AbstractContextManager[None]:
    return nullcontext()


def check(kind: str, fmt: str, options: Options) -> None:
    """Refuse impossible requests before any file is opened."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if kind not in (*tables.KINDS, "all"):
        raise ValueError(f"unknown export kind {kind!r}")
    if kind == "all" and fmt != "xlsx":
        raise ValueError("'all' kinds go into one .xlsx workbook; give a .xlsx file")
    if fmt in STATS_FORMATS and kind not in STATS_KINDS:
        raise ValueError(f".{fmt} files are written of {' and '.join(STATS_KINDS)} only")
    if options.resolve_mode not in tables.RESOLVE_MODES:
        raise ValueError(f"resolve must be one of {', '.join(tables.RESOLVE_MODES)}")


def export_to(
    kind: str,
    fmt: str,
    target: IO[bytes],
    options: Options,
    progress: Progress = _no_progress,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Write one kind (or ``all`` for a workbook) to a binary file; return the meta document.

    ``progress(total_rows)`` is a context manager giving a ``step(done)`` callback (or None);
    ``at`` (naive UTC, default now) is the export's time, the one its file name carries.
    """
    check(kind, fmt, options)
    if fmt == "xlsx":
        kinds = list(tables.KINDS) if kind == "all" else [kind]
        sheets = {k: build(k, options) for k in kinds}
        with progress(sum(len(f) for f in sheets.values())) as step:
            written = writer.write_xlsx(sheets, target, step)
    elif fmt in STATS_FORMATS:
        frame = build(kind, options)
        with progress(len(frame)):
            written = write_stats(frame, fmt, kind, instruments(), target)
    elif kind == "long":
        with progress(count_ratings(options.include_drafts)) as step:
            written = _write(fmt, stream_long(options, LONG_CHUNK_ROWS), target, options, step)
    else:
        frame = build(kind, options)
        with progress(len(frame)) as step:
            written = _write(fmt, frame, target, options, step)
    return writer.meta_document(
        __version__,
        kind,
        fmt,
        meta_options(kind, options),
        written,
        exported_at=at or utcnow(),
        resolution=resolution_of(kind, options),
    )


def stream_long(options: Options, chunk_rows: int = LONG_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The ``long`` table in chunks, streamed from the ratings query (bounded memory)."""
    for chunk in iter_ratings_frames(options.include_drafts, chunk_rows):
        yield tables.long_table(chunk)


def _write(
    fmt: str,
    frames: writer.Frames,
    target: IO[bytes],
    options: Options,
    step: Callable[[int], None] | None,
) -> dict[str, Any]:
    if fmt == "csv":
        return writer.write_csv(frames, target, excel=options.excel, progress=step)
    return writer.write_parquet(frames, target, progress=step)


def export_file(
    kind: str,
    path: Path,
    options: Options,
    progress: Progress = _no_progress,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Write the export and its companion ``FILE.meta.json``; return the meta document."""
    fmt = format_of(path)
    check(kind, fmt, options)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as target:
            document = export_to(kind, fmt, target, options, progress, at)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    writer.write_meta(writer.meta_path(path), document)
    return document
