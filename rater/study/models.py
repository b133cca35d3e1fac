"""Therapists, patients, recorded sessions, instrument versions and study settings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rater.extensions import Model, check_in
from rater.states import SessionStatus
from rater.timeutil import utcnow


class Therapist(Model):
    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)


class Patient(Model):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)


class TherapySession(Model):
    """One recorded therapy session (named so as not to clash with the database session)."""

    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("patient_id", "session_number"),
        check_in("status", SessionStatus),
        CheckConstraint("session_number >= 1", name="session_number_positive"),
        CheckConstraint("phq9 IS NULL OR (phq9 >= 0 AND phq9 <= 27)", name="phq9_range"),
        CheckConstraint(
            "duration_seconds IS NULL OR duration_seconds >= 0", name="duration_nonnegative"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"), index=True)
    session_number: Mapped[int]
    phase: Mapped[str] = mapped_column(String(16))
    audio_path: Mapped[str | None] = mapped_column(String(512))
    recorded_on: Mapped[date | None]
    duration_seconds: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.ELIGIBLE)
    exclusion_reason: Mapped[str | None] = mapped_column(Text)
    phq9: Mapped[int | None]

    patient: Mapped[Patient] = relationship(lazy="joined")
    therapist: Mapped[Therapist] = relationship(lazy="joined")

    @property
    def is_eligible(self) -> bool:
        return self.status == SessionStatus.ELIGIBLE


class InstrumentVersion(Model):
    """An instrument definition exactly as loaded; each rating points to the version it used."""

    __tablename__ = "instrument_versions"
    __table_args__ = (
        UniqueConstraint("code", "version"),
        UniqueConstraint("code", "content_hash"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(255))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


# The calibration gate's setting: allocation switches it, the rater's queue explains it.
GATE_ENABLED = "calibration.gate_enabled"


class StudySetting(Model):
    """A study-wide setting set by a coordinator (e.g. the calibration gate threshold)."""

    __tablename__ = "study_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
