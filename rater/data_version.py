"""The data version: a counter in the database, raised with every change to what reliability reads.

Reliability pages are computed from the submitted ratings, the consensus scores, the sessions
and the stored instruments; their results are cached per server process
(``rater.reliability.cache``) under the data version they were computed from. Every change to
that data raises the counter *in the same transaction* (so a rolled back change raises
nothing), which makes a cached result of an older version unreachable in every server process
at once (gunicorn workers share nothing but the database).

Two ways a change raises it:

* ORM changes: a ``before_flush`` listener (:func:`_raise_on_relevant_change`) looks at what the
  flush writes — a rating that is or was submitted, item and consensus scores, a change of an
  assignment's rater, session, purpose or batch, sessions, patients, therapists, instrument
  versions, a user name. Views and services need not remember it.
* Core writes (the ratings and catalogue importers) call :func:`bump` themselves.

Draft autosaves (Core, the hot path) do not raise it: drafts are not part of any result.

The counter is one row of ``data_versions``, raised with an upsert: the row is created by the
first change, and simultaneous changes wait for each other's commit (a row lock on PostgreSQL,
the write lock on SQLite), so the committed value only ever grows.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import BigInteger, String, event, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from rater.extensions import Model, db, table_of
from rater.states import RatingStatus

RATINGS = "ratings"


class DataVersion(Model):
    __tablename__ = "data_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


def current(session: Session | None = None) -> int:
    """The committed (or this transaction's) data version; 0 before the first change."""
    active = session if session is not None else db.session
    value = active.execute(select(DataVersion.version).where(DataVersion.name == RATINGS)).scalar()
    return int(value or 0)


def bump(session: Session | None = None) -> None:
    """Raise the data version in the session's transaction (flush-free: a Core statement)."""
    active = session if session is not None else db.session
    connection = active.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table_of(DataVersion)).values(name=RATINGS, version=1)
    statement = statement.on_conflict_do_update(
        index_elements=["name"], set_={"version": table_of(DataVersion).c.version + 1}
    )
    connection.execute(statement)


# Per model: the attributes whose change reaches a reliability result (None: any change, and
# creating or deleting a row). Models are named by table to keep this module free of imports
# of every package.
_WATCHED: dict[str, tuple[str, ...] | None] = {
    "item_scores": None,
    "consensus_scores": None,
    "sessions": None,
    "patients": None,
    "therapists": None,
    "instrument_versions": None,
    "assignments": ("rater_id", "session_id", "purpose", "batch"),
    "users": ("username",),
}


def _relevant(obj: Any, state: str) -> bool:
    table = getattr(obj, "__tablename__", None)
    if table == "ratings":
        return _rating_relevant(obj, state)
    if table not in _WATCHED:
        return False
    attributes = _WATCHED[table]
    if attributes is None:
        return True
    if state == "new":
        return False  # a new assignment or user carries no rating yet
    if state == "deleted":
        return True
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in attributes)


def _rating_relevant(rating: Any, state: str) -> bool:
    """A rating counts when it is, or just stopped being, submitted."""
    history = inspect(rating).attrs["status"].history
    statuses = set(history.added) | set(history.deleted) | set(history.unchanged)
    if state == "new":
        statuses = {rating.status}
    return RatingStatus.SUBMITTED in statuses


@event.listens_for(Session, "before_flush")
def _raise_on_relevant_change(session: Session, _flush_context: Any, _instances: Any) -> None:
    changed = chain(
        ((o, "new") for o in session.new),
        ((o, "dirty") for o in session.dirty if session.is_modified(o)),
        ((o, "deleted") for o in session.deleted),
    )
    if any(_relevant(obj, state) for obj, state in changed):
        bump(session)
