"""Assignments and everything a rater records for one: rating, item scores, notes, homework log.

The database itself enforces the rules that protect the data: an item's answer is exactly one of
a number, a text value or "not applicable", a rating has one answer per item, a session is
assigned to a rater at most once. A value's range is the instrument's: it is checked against
the instrument file (``Item.value_problem``) by autosave, the importers and consensus, not here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    Column,
    ColumnElement,
    ForeignKey,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rater.extensions import Model, check_in, db, table_of
from rater.instruments import Answer, Item, LogKind
from rater.states import (
    AssignmentStatus,
    CannotRateCategory,
    Completion,
    Purpose,
    RatingStatus,
)
from rater.study.models import InstrumentVersion, TherapySession
from rater.timeutil import utcnow

if TYPE_CHECKING:
    from rater.auth.models import User


class Assignment(Model):
    """A session given to a rater, with a purpose."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("session_id", "rater_id"),
        check_in("purpose", Purpose),
        check_in("status", AssignmentStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=AssignmentStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The release that opened it to its rater (1, 2, ...); None while held or never held.
    batch: Mapped[int | None] = mapped_column(default=None)
    # Its place in the rater's queue, set on release (seeded shuffle or session order).
    queue_order: Mapped[int | None] = mapped_column(default=None)

    session: Mapped[TherapySession] = relationship(lazy="joined")
    rater: Mapped[User] = relationship(lazy="joined")
    rating: Mapped[Rating | None] = relationship(back_populates="assignment", uselist=False)

    @classmethod
    def rateable_by(cls, user_id: int | ColumnElement[int]) -> ColumnElement[bool]:
        """The access rule, stated once: the assignment may be rated (opened, saved, submitted)
        by ``user_id`` — only its rater, and only while it is open (not held, not flagged).
        ``can_be_rated_by`` and autosave's version UPDATE both check this clause."""
        table = table_of(cls)
        return and_(
            table.c.rater_id == user_id, table.c.status.in_(sorted(AssignmentStatus.RATEABLE))
        )

    def can_be_rated_by(self, user: User) -> bool:
        """``rateable_by`` for this assignment and the user (one query by primary key)."""
        if not user.is_authenticated:
            return False
        rule = select(Assignment.id).where(Assignment.id == self.id, self.rateable_by(user.id))
        return db.session.scalar(rule) is not None

    def can_be_viewed_by(self, user: User) -> bool:
        """Coordinators see every assignment (read-only); a rater only what they may rate."""
        return user.is_authenticated and (user.is_coordinator or self.can_be_rated_by(user))

    @property
    def is_started(self) -> bool:
        """Started or finished work is never moved by allocation changes."""
        return self.status in AssignmentStatus.STARTED


rating_instruments = Table(
    "rating_instruments",
    db.Model.metadata,
    Column("rating_id", ForeignKey("ratings.id", ondelete="CASCADE"), primary_key=True),
    Column("instrument_version_id", ForeignKey("instrument_versions.id"), primary_key=True),
)


class Rating(Model):
    """What one rater recorded for one assignment.

    The instrument versions current when the rating was started are pinned through
    ``rating_instruments``; a later change to an instrument file does not touch this rating.
    ``version`` increases with every saved change so that two tabs cannot silently overwrite
    each other's newer work.
    """

    __tablename__ = "ratings"
    __table_args__ = (
        check_in("status", RatingStatus),
        CheckConstraint("audio_position >= 0", name="audio_position_nonnegative"),
        CheckConstraint("active_seconds >= 0", name="active_seconds_nonnegative"),
        check_in("cannot_rate_category", CannotRateCategory, nullable=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default=RatingStatus.DRAFT)
    submitted_at: Mapped[datetime | None]
    audio_position: Mapped[float] = mapped_column(default=0.0)
    active_seconds: Mapped[float] = mapped_column(default=0.0)
    cannot_rate: Mapped[bool] = mapped_column(default=False)
    cannot_rate_category: Mapped[str | None] = mapped_column(String(32))
    cannot_rate_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    assignment: Mapped[Assignment] = relationship(back_populates="rating")
    instrument_versions: Mapped[list[InstrumentVersion]] = relationship(
        secondary=rating_instruments, order_by=InstrumentVersion.code
    )
    scores: Mapped[list[ItemScore]] = relationship(
        back_populates="rating", cascade="all, delete-orphan"
    )
    notes: Mapped[list[Note]] = relationship(
        back_populates="rating", cascade="all, delete-orphan", order_by="Note.audio_seconds"
    )
    difficulties: Mapped[list[RatingDifficulty]] = relationship(
        cascade="all, delete-orphan", order_by="RatingDifficulty.difficulty_type"
    )

    @property
    def is_locked(self) -> bool:
        return self.status == RatingStatus.SUBMITTED


# Exactly one of: a number (ordinal and count items), a text value (nominal items: the category
# code, several joined by ";"; text items: the text), or "not applicable".
ONE_ANSWER = (
    "(CASE WHEN score IS NOT NULL THEN 1 ELSE 0 END) + "
    "(CASE WHEN value_text IS NOT NULL THEN 1 ELSE 0 END) + "
    "(CASE WHEN not_applicable THEN 1 ELSE 0 END) = 1"
)


class ItemScore(Model):
    """One item's answer in a rating (see ``ONE_ANSWER``; ``rater.rating.answers``)."""

    __tablename__ = "item_scores"
    __table_args__ = (
        UniqueConstraint("rating_id", "item_code"),
        CheckConstraint(ONE_ANSWER, name="one_answer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id", ondelete="CASCADE"))
    instrument_version_id: Mapped[int] = mapped_column(ForeignKey("instrument_versions.id"))
    item_code: Mapped[str] = mapped_column(String(64))
    score: Mapped[int | None]
    value_text: Mapped[str | None] = mapped_column(Text)
    not_applicable: Mapped[bool] = mapped_column(default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    rating: Mapped[Rating] = relationship(back_populates="scores")

    @property
    def answer(self) -> Answer:
        return Item.from_columns(self.score, self.value_text, self.not_applicable)


class Note(Model):
    """A timestamped note; ``client_id`` makes a retried autosave idempotent."""

    __tablename__ = "notes"
    __table_args__ = (
        UniqueConstraint("rating_id", "client_id"),
        CheckConstraint("audio_seconds >= 0", name="audio_seconds_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id", ondelete="CASCADE"))
    client_id: Mapped[str | None] = mapped_column(String(64))
    audio_seconds: Mapped[float] = mapped_column(default=0.0)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    rating: Mapped[Rating] = relationship(back_populates="notes")


class RatingDifficulty(Model):
    """A difficulty type the rater ticked for the homework reviewed in a session."""

    __tablename__ = "rating_difficulties"

    rating_id: Mapped[int] = mapped_column(
        ForeignKey("ratings.id", ondelete="CASCADE"), primary_key=True
    )
    difficulty_type: Mapped[str] = mapped_column(String(64), primary_key=True)


class HomeworkEntry(Model):
    """One homework log entry.

    ``assigned_next`` entries are written by coordinators per session before rating starts;
    ``reported_completed`` entries are written by a rater and belong to that rater's rating, so
    raters stay blind to each other.
    """

    __tablename__ = "homework_entries"
    __table_args__ = (
        UniqueConstraint("rating_id", "client_id"),
        check_in("kind", LogKind),
        check_in("completion", Completion, nullable=True),
        CheckConstraint(
            f"(kind = '{LogKind.REPORTED_COMPLETED}' AND rating_id IS NOT NULL) OR "
            f"(kind = '{LogKind.ASSIGNED_NEXT}' AND rating_id IS NULL)",
            name="kind_owner",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    rating_id: Mapped[int | None] = mapped_column(ForeignKey("ratings.id", ondelete="CASCADE"))
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    client_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    homework_type: Mapped[str] = mapped_column(String(64))
    completion: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AutosaveBatch(Model):
    """The highest autosave batch number applied per rating and browser tab (``client``).

    Each tab numbers its batches 1, 2, 3 ...; a batch whose number is not above the stored one
    was applied before (a retry, or a delayed copy arriving late) and is not applied again.
    """

    __tablename__ = "autosave_batches"
    __table_args__ = (CheckConstraint("seq >= 1", name="seq_positive"),)

    rating_id: Mapped[int] = mapped_column(
        ForeignKey("ratings.id", ondelete="CASCADE"), primary_key=True
    )
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int]
    applied_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConsensusScore(Model):
    """A score agreed for a double-coded session after discussion; ratings stay untouched."""

    __tablename__ = "consensus_scores"
    __table_args__ = (
        UniqueConstraint("session_id", "item_code"),
        CheckConstraint(ONE_ANSWER, name="one_answer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    instrument_version_id: Mapped[int] = mapped_column(ForeignKey("instrument_versions.id"))
    item_code: Mapped[str] = mapped_column(String(64))
    score: Mapped[int | None]
    value_text: Mapped[str | None] = mapped_column(Text)
    not_applicable: Mapped[bool] = mapped_column(default=False, server_default=false())
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def answer(self) -> Answer:
        return Item.from_columns(self.score, self.value_text, self.not_applicable)


# Coded events: behaviour codes (or segments) in a session's audio, recorded on the rating page,
# imported from CSV or built by the demo (rater.coding builds its views and measures on them).
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
