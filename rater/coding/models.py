"""Coded events: one behaviour code at a time (or a segment) in a session's audio, recorded by a
rater on the rating page, imported from a CSV file, or built by the demo.

An event belongs to a rating (one rating per assignment, so the assignment's rater and session
follow from it) and to the pinned instrument version that defines its code. ``client_id`` is
the id the browser gave the event: a retried autosave finds the same row instead of adding a
second one (one event per rating and client id, enforced by the database).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rater.extensions import Model
from rater.timeutil import utcnow


class CodedEvent(Model):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("rating_id", "client_id"),
        CheckConstraint("time_s >= 0", name="time_nonnegative"),
        CheckConstraint("end_s IS NULL OR end_s >= time_s", name="end_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id", ondelete="CASCADE"))
    instrument_version_id: Mapped[int] = mapped_column(ForeignKey("instrument_versions.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    time_s: Mapped[float]
    end_s: Mapped[float | None]
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
