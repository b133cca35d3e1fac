"""One place that records who changed what.

``record()`` adds an audit event to the current database transaction, so the event lands
exactly when the change it describes does (and vanishes with it on rollback).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from flask_login import current_user
from sqlalchemy import (
    CTE,
    JSON,
    DateTime,
    ForeignKey,
    Insert,
    Integer,
    String,
    bindparam,
    cast,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from rater.db_setup import Statement
from rater.extensions import Model, db
from rater.timeutil import utcnow


class AuditEvent(Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


def _acting_user_id() -> int | None:
    try:
        return current_user.id if current_user and current_user.is_authenticated else None
    except RuntimeError:  # outside a request (CLI)
        return None


def record(
    action: str,
    entity_type: str,
    entity_id: object = None,
    *,
    before: Any = None,
    after: Any = None,
    user_id: int | None = None,
) -> AuditEvent:
    """Add an audit event to the session (flushed with the change; never committed here)."""
    user_id = user_id if user_id is not None else _acting_user_id()
    event = AuditEvent(**_event_values(action, entity_type, entity_id, before, after, user_id))
    db.session.add(event)
    return event


def _event_values(
    action: str, entity_type: str, entity_id: object, before: Any, after: Any, user_id: int | None
) -> dict[str, Any]:
    """One event's column values (entity ids are stored as text: some are not integers)."""
    return {
        "user_id": user_id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": None if entity_id is None else str(entity_id),
        "before": before,
        "after": after,
    }


def insert_many(
    action: str,
    entity_type: str,
    events: Iterable[tuple[object, Any, Any]],
    *,
    user_id: int | None,
) -> list[Statement]:
    """The INSERT of (entity id, before, after) events, for ``execute_all`` (the autosave hot
    path): none when there are no events, else one statement with a row per event (one
    executemany). It runs in the transaction of the change it records."""
    at = utcnow()
    rows = [
        {"at": at, **_event_values(action, entity_type, entity_id, before, after, user_id)}
        for entity_id, before, after in events
    ]
    return [(_insert_events(), rows)] if rows else []


@cache
def _insert_events() -> Insert:
    """INSERT of events that reads nothing back (not even the new ids): one executemany."""
    return insert(AuditEvent).inline()


def insert_for_written(action: str, entity_type: str, written: CTE) -> Insert:
    """INSERT of one event per row that ``written`` (a data-modifying CTE returning ``id``)
    wrote, in the same statement: a change and its event are one round trip (PostgreSQL).

    Parameters: ``at``, ``user_id``, ``before`` and ``after``, as for ``insert_many``; the
    entity id is the written row's id.
    """
    event = select(
        bindparam("at", type_=DateTime()),
        bindparam("user_id", type_=Integer()),
        literal(action, String(64)),
        literal(entity_type, String(64)),
        cast(written.c.id, String(64)),
        bindparam("before", type_=JSON()),
        bindparam("after", type_=JSON()),
    )
    columns = ["at", "user_id", "action", "entity_type", "entity_id", "before", "after"]
    return insert(AuditEvent).from_select(columns, event).add_cte(written)
