"""Autosave: apply a batch of changes from the rating page to a draft rating (flush only).

Protocol (documented for API users in docs/rating.md). The client posts::

    {"client": "<tab uuid>", "seq": 12, "base_version": 7,
     "changes": [{"op": "score", "item": "GHES_1", "value": 3, "base": 2}, ...]}

Coded events (``event.add`` / ``event.move`` / ``event.recode`` / ``event.delete``, keyed by
the event's ``client_id``, always compared with the event's ``base``) are documented in
docs/coding.md.

``client`` names the browser tab and ``seq`` numbers its batches 1, 2, 3 ...; a batch, once
sent, is resent unchanged until it is answered. The server stores the highest ``seq`` applied
per rating and client and answers a batch whose ``seq`` is not above it with
``200 {"ok": true, "duplicate": true, "applied": 0, "version": <current>}`` without applying
it: a retry, or a delayed copy that arrives after newer batches, can never undo newer work.
(``client`` and ``seq`` may be left out, as by older clients; such a batch is only protected
by the per-field checks below.)

``base_version`` is the rating version the client last saw. Each change may carry ``base``: the
value of that field as the client last saw it on the server. A change is applied when

* the field already holds the new value (a retried save: nothing to do, never a duplicate), or
* the field still holds ``base`` (nobody else changed it: per-field compare-and-set), or
* the change has no ``base`` and ``base_version`` is the current version.

Anything else is a conflict: another tab saved newer work in that field, and the whole batch is
refused with 409 so that nothing is overwritten. A change with a field of the wrong type, or one
beyond a limit (text lengths, notes and homework entries per rating, active time beyond the wall
time since the rating started), refuses the batch with 400 naming the change (docs/rating.md,
"Types" and "Limits"). The audio position and active-time increments
never conflict. Every applied batch increases ``Rating.version`` by one.

Concurrency: the version is increased by one UPDATE before anything is read, so concurrent saves
of one rating are serialised by the database's row (PostgreSQL) or write (SQLite) lock, and the
batch-number check and the compare-and-set reads see committed data: each read starts after the
UPDATE holds the lock, so under READ COMMITTED it sees every save committed before (tested with
two tabs saving at once). On PostgreSQL the scores are read in the UPDATE's own statement, whose
snapshot may be older than the lock: they are used only when no change was committed in between
(the version the UPDATE left is one above the version the snapshot saw), else read again.

Cost: autosave is the one request a study sends all day long (every rater, every few seconds),
so it is written with SQLAlchemy Core on a connection of its own, not with ORM objects, as
few prebuilt statements as the protocol allows, each run through ``Connection.execute``
(``execute_all``; a list of rows is one executemany). First the UPDATE that checks access
(``Assignment.rateable_by``), takes the lock and bumps the version, with the INSERT .. ON
CONFLICT that records the batch number and detects a duplicate, and the reads — the pinned
instruments joined with the scores the batch touches (and how many notes, homework entries or
events the rating holds, when the batch may add one), plus one per kind of note, homework or
difficulty change — which name the rating by its assignment. On PostgreSQL the UPDATE, the
INSERT and the scores read are one statement (three on SQLite). Then the writes: on
PostgreSQL each kind of score write (add, change, remove) with its audit events is one
statement (a data-modifying CTE); on SQLite an INSERT .. RETURNING for new score rows (their
ids go into the audit events), and the rest apart. The changes are applied to a copy of the
state read, and only the difference is written. Pinned instruments are parsed once per
process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, TypeGuard

from flask_login import current_user
from sqlalchemy import (
    ColumnElement,
    Connection,
    Delete,
    Insert,
    Label,
    Row,
    Select,
    String,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from rater import audit
from rater.auth.models import User
from rater.db_setup import Statement, execute_all
from rater.extensions import db, table_of
from rater.instruments import Answer, Instrument, Item, LogKind, answer_json
from rater.rating.events import MAX_EVENTS, check_event, codes_of, problem_text
from rater.rating.models import (
    Assignment,
    AutosaveBatch,
    CodedEvent,
    HomeworkEntry,
    ItemScore,
    Note,
    Rating,
    RatingDifficulty,
)
from rater.rating.service import instruments_of_rows, pinned_versions_query
from rater.security import text_problem
from rater.states import Completion, RatingStatus
from rater.study.models import TherapySession
from rater.timeutil import utcnow

CONFLICT_MESSAGE = (
    "This rating was changed in another tab or window — reload the page to see the newer "
    "changes. Your change was not saved."
)
LOCKED_MESSAGE = "This rating is submitted and locked; changes are no longer saved."
FLAGGED_MESSAGE = "This session was marked as 'cannot be rated'; changes are no longer saved."
MISSING_MESSAGE = "This rating does not exist."
NOT_STARTED_MESSAGE = "Open the rating page first."
LOGIN_EXPIRED_MESSAGE = "Your login has expired. Log in again."
# Limits (docs/rating.md, "Limits"): a batch, a note, a homework entry, a rating.
MAX_CHANGES = 500
MAX_NOTE_LENGTH = 10_000
MAX_DESCRIPTION_LENGTH = 2_000  # as the coordinator's form for assigned homework
MAX_NOTES = 1_000
MAX_HOMEWORK_ENTRIES = 50
MAX_SECONDS = 24 * 3600.0
MAX_ACTIVE_INCREMENT = 3600.0
# A rating's active time may not exceed the wall time since it was started; the tolerance
# covers the page's whole-second counting.
ACTIVE_TOLERANCE_SECONDS = 2.0
MAX_SEQ = 2**31 - 1
MISSING = object()

RATINGS: Table = table_of(Rating)
SCORES: Table = table_of(ItemScore)
NOTES: Table = table_of(Note)
HOMEWORK: Table = table_of(HomeworkEntry)
DIFFICULTIES: Table = table_of(RatingDifficulty)
BATCHES: Table = table_of(AutosaveBatch)
ASSIGNMENTS: Table = table_of(Assignment)
USERS: Table = table_of(User)
EVENTS: Table = table_of(CodedEvent)
SESSIONS: Table = table_of(TherapySession)


class AutosaveRefused(Exception):
    """A save that is not applied; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status, **self.extra}


class AlreadyApplied(AutosaveRefused):
    """A batch applied before (same or older ``seq`` of its client): acknowledged, not applied."""

    def __init__(self, version: int) -> None:
        super().__init__(200, "This batch was saved before.", version=version)

    def body(self) -> dict[str, Any]:
        version = self.extra["version"]
        return {"ok": True, "duplicate": True, "applied": 0, "version": version}


@dataclass(frozen=True)
class _Envelope:
    base_version: int
    changes: list[dict[str, Any]]
    client: str | None
    seq: int | None


NO_CHANGES = _Envelope(base_version=0, changes=[], client=None, seq=None)


@dataclass(frozen=True)
class _Locked:
    """The rating row as the version UPDATE left it (``version`` is the new version)."""

    rating_id: int
    version: int
    audio_position: float
    active_seconds: float
    started_at: datetime  # the rating's creation; its active time cannot exceed the time since
    new_batch: bool  # False: the client's batch number was applied before (a duplicate)


@dataclass
class _State:
    """The part of a rating a batch touches, as plain values keyed like the protocol.

    Scores by item, notes and homework entries by client id (holding their column values).
    The row ids of what was read are kept apart, in ``_Context.ids``, keyed (kind, key).
    """

    position: float
    active: float
    scores: dict[str, Answer] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    homework: dict[str, dict[str, Any]] = field(default_factory=dict)
    difficulties: set[str] = field(default_factory=set)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def copy(self) -> _State:
        """A copy whose values can be changed without touching this one."""
        return _State(
            position=self.position,
            active=self.active,
            scores=dict(self.scores),
            notes={key: dict(values) for key, values in self.notes.items()},
            homework={key: dict(values) for key, values in self.homework.items()},
            difficulties=set(self.difficulties),
            events={key: dict(values) for key, values in self.events.items()},
        )


@dataclass
class _Context:
    """What planning a change needs: the pinned instruments and the state before the batch."""

    locked: _Locked
    instruments: list[tuple[int, Instrument]]
    version_matches: bool
    before: _State
    ids: dict[tuple[str, str], int]
    counts: dict[str, int]  # rows of the rating by kind ("notes", "homework"), when adding
    wall_seconds: float  # since the rating was started
    duration: float | None = None  # of the session's recording, when the batch has events

    owners: dict[str, int] = field(init=False)  # item code -> pinned instrument version
    items: dict[str, Item] = field(init=False)  # item code -> its definition
    codes: dict[str, Any] = field(init=False)  # behaviour code -> its definition
    code_owners: dict[str, int] = field(init=False)  # behaviour code -> pinned version
    active_planned: float = field(init=False, default=0.0)  # increments planned so far

    def __post_init__(self) -> None:
        self.owners, self.items = {}, {}
        for version_id, instrument in reversed(self.instruments):  # the first one wins
            self.owners.update(dict.fromkeys(instrument.item_codes, version_id))
            self.items.update({item.code: item for item in instrument.items})
        self.codes = codes_of(i for _, i in self.instruments)
        self.code_owners = {}
        for version_id, instrument in reversed(self.instruments):
            self.code_owners.update(dict.fromkeys((c.code for c in instrument.codes), version_id))

    def owner_of(self, item: Any) -> int | None:
        """The pinned instrument version that has this item, or None."""
        return self.owners.get(item) if isinstance(item, str) else None


Step = Callable[[_State], None]


def apply_autosave(
    connection: Connection,
    assignment_id: int,
    user_id: int,
    payload: Any,
    *,
    session_generation: int | None,
) -> dict[str, Any]:
    """Apply the payload's changes in ``connection``'s transaction or raise AutosaveRefused.

    ``user_id`` and ``session_generation`` are the session's, not yet checked: the version
    UPDATE requires an active user who is the assignment's rater and whose sessions of that
    generation have not been ended (rater.auth.sessions). The caller commits, or rolls back on
    a refusal.
    """
    session = (user_id, session_generation)
    try:
        envelope = _parse_envelope(payload)
    except AutosaveRefused:
        _lock_and_read(connection, assignment_id, session, NO_CHANGES)  # 401/404/409/423 first
        raise
    ctx = _lock_and_read(connection, assignment_id, session, envelope)
    locked = ctx.locked
    if not locked.new_batch:
        raise AlreadyApplied(locked.version - 1)
    steps = _plan(ctx, envelope.changes, locked.version)
    after = ctx.before.copy()
    for step in steps:
        step(after)
    _check_counts(ctx, after)
    _write(connection, ctx, after, applied=len(steps), assignment_id=assignment_id, user_id=user_id)
    version = locked.version if steps else locked.version - 1
    return {
        "ok": True,
        "version": version,
        "applied": len(steps),
        "duplicate": False,
        "others_changed": envelope.base_version != locked.version - 1,
        "saved_at": utcnow().isoformat() + "Z",
    }


class _Invalid(ValueError):
    pass


class _Conflict(Exception):
    pass


def _plan(ctx: _Context, changes: list[dict[str, Any]], new_version: int) -> list[Step]:
    """Every change's step, or raise (400 for invalid changes, 409 for conflicts)."""
    problems: list[str] = []
    conflicts: list[str] = []
    plan: list[Step] = []
    for index, change in enumerate(changes):
        try:
            step = _plan_change(ctx, change)
        except _Invalid as exc:
            problems.append(f"change {index}: {exc}")
        except _Conflict as exc:
            conflicts.append(str(exc))
        else:
            if step is not None:
                plan.append(step)
    if problems:
        raise AutosaveRefused(400, "Some changes could not be understood.", problems=problems)
    if conflicts:
        raise AutosaveRefused(409, CONFLICT_MESSAGE, conflicts=conflicts, version=new_version - 1)
    return plan


ROW_LIMITS = (
    ("notes", MAX_NOTES, "notes"),
    ("homework", MAX_HOMEWORK_ENTRIES, "homework entries"),
    ("events", MAX_EVENTS, "events"),
)


def _check_counts(ctx: _Context, after: _State) -> None:
    """A batch may not take a rating beyond its number of notes or homework entries."""
    problems = []
    for kind, limit, label in ROW_LIMITS:
        if kind not in ctx.counts:
            continue
        before, now = getattr(ctx.before, kind).keys(), getattr(after, kind).keys()
        total = ctx.counts[kind] + len(now - before) - len(before - now)
        if total > max(limit, ctx.counts[kind]):
            problems.append(f"{kind}: a rating holds at most {limit} {label}; this save would "
                            f"make {total}")  # fmt: skip
    if problems:
        raise AutosaveRefused(400, "Some changes go beyond the limits.", problems=problems)


def _parse_envelope(payload: Any) -> _Envelope:
    if not isinstance(payload, dict):
        raise AutosaveRefused(400, "Send a JSON object with 'base_version' and 'changes'.")
    base_version = payload.get("base_version")
    changes = payload.get("changes")
    if not _is_int(base_version):
        raise AutosaveRefused(400, "'base_version' must be the rating version last seen.")
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise AutosaveRefused(400, "'changes' must be a list of objects.")
    if len(changes) > MAX_CHANGES:
        raise AutosaveRefused(400, f"At most {MAX_CHANGES} changes per save.")
    client, seq = payload.get("client"), payload.get("seq")
    if client is None and seq is None:
        return _Envelope(base_version, changes, None, None)
    if not _storable(client) or not 1 <= len(client) <= 64:
        raise AutosaveRefused(400, "'client' must be a string of 1-64 characters (no NUL).")
    if not _is_int(seq) or not 1 <= seq <= MAX_SEQ:
        raise AutosaveRefused(400, f"'seq' must be a batch number from 1 to {MAX_SEQ}.")
    return _Envelope(base_version, changes, client, seq)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# --- the lock, the batch number and the reads --------------------------------------------------


# What the version UPDATE returns, labelled ``locked_<column>`` (``_Locked``'s fields, in order).
LOCKED_FIELDS = (RATINGS.c.id, RATINGS.c.version, RATINGS.c.audio_position,
                 RATINGS.c.active_seconds, RATINGS.c.created_at)  # fmt: skip


def _lock_and_read(
    connection: Connection,
    assignment_id: int,
    session: tuple[int, int | None],
    envelope: _Envelope,
) -> _Context:
    """Increase the version of the user's open draft for this assignment (taking its lock),
    record the envelope's batch number as its client's highest applied, and read the pinned
    instruments and the rows the batch touches.

    ``session`` is the session's user id and session generation. The access rule
    ``Assignment.rateable_by`` (the one ``can_be_rated_by`` checks) for an active user whose
    sessions of that generation were not ended, plus an editable draft, is the UPDATE's WHERE;
    when no row matches, ``_refusal`` finds out why (and what was read is not looked at).
    The batch record is one INSERT .. ON CONFLICT DO UPDATE .. WHERE stored seq < this seq:
    it writes (and returns) a row only when the batch is new. It runs under the
    rating's lock, so two copies of one batch cannot both pass; a later refusal (400, 409) rolls
    the record back with everything else. On PostgreSQL the UPDATE and the INSERT are one
    statement (data-modifying CTEs).

    The reads name the rating by its assignment, so they need nothing from the UPDATE's answer;
    each starts after the UPDATE has taken the lock, so under READ COMMITTED it sees what was
    committed before the lock was granted: the compare-and-set reads see the latest saved values.
    """
    postgres = connection.dialect.name == "postgresql"
    user_id, generation = session  # the session's, checked by the UPDATE
    now = utcnow()
    params: dict[str, Any] = {
        "p_assignment": assignment_id,
        "p_user": user_id,
        "p_generation": generation,
        "now": now,
    }
    claims = envelope.client is not None
    if claims:
        params |= {"p_client": envelope.client, "p_seq": envelope.seq}
    counted = _counted(envelope.changes)
    reads = _read_statements(connection.dialect.name, assignment_id, envelope.changes, counted)
    if postgres:
        locked, rows, counts = _lock_and_read_together(connection, params, claims, reads, counted)
        return _context(locked, envelope, rows, counts, now=now)
    locks: list[Statement] = [(_bump_statement(), params)]
    if claims:
        locks.append((_claim_statement(), params))
    results = execute_all(connection, [*locks, *reads.values()])
    if not results[0]:
        raise _refusal(assignment_id)
    # without a batch number, only the per-field checks protect the save
    locked = _locked(results[0][0], new_batch=bool(results[1]) if claims else True)
    rows = dict(zip(reads, results[len(locks) :], strict=True))
    counts = _row_counts(connection, assignment_id, counted, rows["scores"])
    return _context(locked, envelope, rows, counts, now=now)


def _lock_and_read_together(
    connection: Connection,
    params: dict[str, Any],
    claims: bool,
    reads: dict[str, Statement],
    counted: tuple[str, ...],
) -> tuple[_Locked, dict[str, Sequence[Any]], dict[str, int]]:
    """PostgreSQL: the version UPDATE, the batch record, the scores read and the row counts in
    one statement; the other reads after it.

    That statement's reads see its snapshot, taken before the UPDATE was granted the lock. They
    hold what was committed before the lock whenever the version the UPDATE left is one above
    the version the snapshot saw: every change to a rating's rows increases its version under
    that lock (autosave, submit, reopen, the flag), so none was committed in between. Otherwise
    (another save committed while this one waited for the lock) the scores are read again, now
    after the lock.
    """
    assignment_id = params["p_assignment"]
    statement = _lock_and_scores_statement(claims, counted)
    scores_read = reads["scores"]
    others = {kind: read for kind, read in reads.items() if kind != "scores"}
    assert isinstance(scores_read[1], Mapping)  # one parameter set (not an executemany)
    first = (statement, {**params, **scores_read[1]})
    results = execute_all(connection, [first, *others.values()])
    if not results[0]:
        raise _refusal(assignment_id)
    row = results[0][0]._mapping
    locked = _locked(results[0][0], new_batch=bool(row["new_batch"]) if claims else True)
    scores: Sequence[Any]
    if locked.version == row["seen_version"] + 1:
        scores = [r for r in results[0] if r[0] is not None]  # none: no pinned instrument
        counts = {kind: row[f"{kind}_count"] for kind in counted}
    else:
        scores = execute_all(connection, [scores_read])[0]
        counts = _row_counts(connection, assignment_id, counted, scores)
    return locked, {"scores": scores, **dict(zip(others, results[1:], strict=True))}, counts


def _locked(row: Row[Any], *, new_batch: bool) -> _Locked:
    """The rating row as the version UPDATE returned it (its ``locked_*`` columns)."""
    rating_id, version, position, active, created = (
        row._mapping[f"locked_{c.name}"] for c in LOCKED_FIELDS
    )
    return _Locked(rating_id, version, position, active, created, new_batch)


@cache
def _bump_statement() -> Update:
    """The version UPDATE: checks access, takes the rating's lock, returns the locked fields."""
    rater_may_save = (
        select(ASSIGNMENTS.c.id)
        .join(USERS, USERS.c.id == ASSIGNMENTS.c.rater_id)
        .where(
            ASSIGNMENTS.c.id == bindparam("p_assignment"),
            Assignment.rateable_by(bindparam("p_user")),
            USERS.c.active.is_(True),
            USERS.c.session_generation == bindparam("p_generation"),
        )
        .exists()
    )
    return (
        update(RATINGS)
        .where(
            RATINGS.c.assignment_id == bindparam("p_assignment"),
            RATINGS.c.status == RatingStatus.DRAFT,
            RATINGS.c.cannot_rate.is_(False),
            rater_may_save,
        )
        .values(version=RATINGS.c.version + 1, updated_at=bindparam("now"))
        .returning(*(c.label(f"locked_{c.name}") for c in LOCKED_FIELDS))
    )


@cache
def _lock_and_scores_statement(and_claim: bool, counted: tuple[str, ...]) -> Select:
    """PostgreSQL: the version UPDATE (its ``locked_*`` columns), with ``and_claim`` the batch
    record (``new_batch``), the version before the UPDATE as the statement's snapshot saw it
    (``seen_version``) and the row counts, on every row of the scores read (its columns first;
    one row of nulls when the rating pins no instrument). Nothing when the UPDATE matched no
    row.

    The INSERT of the batch record reads the UPDATE's row, so it runs after the lock is taken;
    ON CONFLICT DO UPDATE compares with the latest committed record, not the snapshot.
    """
    bumped = _bump_statement().cte("bumped")
    columns: list[ColumnElement[Any]] = list(bumped.c)
    if and_claim:
        claimed = _claim(postgresql.insert(BATCHES), select(bumped.c.locked_id)).cte("claimed")
        columns.append(select(claimed.c.seq).exists().label("new_batch"))
    seen = select(RATINGS.c.version).where(RATINGS.c.assignment_id == bindparam("p_assignment"))
    scores = _pinned_and_scores_statement("postgresql", ()).subquery("scores")
    seen_version = seen.scalar_subquery().label("seen_version")
    return (
        select(*scores.c, *columns, seen_version, *_count_columns(counted))
        .select_from(bumped)
        .outerjoin(scores, true())
        .order_by(scores.c[1])  # the pinned versions by code, as the scores read
    )


def _refusal(assignment_id: int) -> AutosaveRefused:
    """Why a save could not take the lock: logged out or deactivated (401), unknown (404), not
    started (409) or closed (423). Only here is the user loaded."""
    if not current_user.is_authenticated:
        return AutosaveRefused(401, LOGIN_EXPIRED_MESSAGE)
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None or not assignment.can_be_rated_by(current_user):
        return AutosaveRefused(404, MISSING_MESSAGE)
    rating = assignment.rating
    if rating is None:
        return AutosaveRefused(409, NOT_STARTED_MESSAGE)
    message = LOCKED_MESSAGE if rating.status == RatingStatus.SUBMITTED else FLAGGED_MESSAGE
    return AutosaveRefused(423, message, version=rating.version)


@cache
def _claim_statement() -> Insert:
    """SQLite: record the batch number (a row comes back only when the batch is new)."""
    rating = select(RATINGS.c.id).where(RATINGS.c.assignment_id == bindparam("p_assignment"))
    return _claim(sqlite.insert(BATCHES), rating)


def _claim(stmt: postgresql.Insert | sqlite.Insert, rating_ids: Select) -> Insert:
    """Record the tab's batch number for the rating(s) ``rating_ids`` selects, replacing the
    client's record only by a higher number; the record comes back only when it was written."""
    batch = (
        bindparam("p_client", type_=BATCHES.c.client.type),
        bindparam("p_seq", type_=BATCHES.c.seq.type),
        bindparam("now", type_=BATCHES.c.applied_at.type),
    )
    stmt = stmt.from_select(
        ["rating_id", "client", "seq", "applied_at"], rating_ids.add_columns(*batch)
    )
    return stmt.on_conflict_do_update(
        index_elements=[BATCHES.c.rating_id, BATCHES.c.client],
        set_={"seq": stmt.excluded.seq, "applied_at": stmt.excluded.applied_at},
        where=BATCHES.c.seq < stmt.excluded.seq,
    ).returning(BATCHES.c.seq)


def _wanted(changes: list[dict[str, Any]], ops: tuple[str, ...], key: str) -> list[str]:
    """The keys to read; one that cannot be stored (not text, or with a NUL character, which
    PostgreSQL's text refuses) is left out, and its change is refused as invalid when planned."""
    return sorted({c[key] for c in changes if c.get("op") in ops and _storable(c.get(key))})


def _storable(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and text_problem(value) is None


NOTE_COLUMNS = ("audio_seconds", "text")
HOMEWORK_COLUMNS = ("homework_type", "completion", "description")
NOTE_OPS = ("note.put", "note.delete")
EVENT_COLUMNS = ("code", "time_s", "end_s", "note")
EVENT_OPS = ("event.add", "event.move", "event.recode", "event.delete")
HOMEWORK_OPS = ("homework.put", "homework.delete")


def _read_statements(
    dialect_name: str, assignment_id: int, changes: list[dict[str, Any]], counted: tuple[str, ...]
) -> dict[str, Statement]:
    """The reads a batch needs, by kind: the pinned instruments with the scores of the items it
    touches, and the notes, homework entries and difficulties it touches, if any."""
    at = {"p_assignment": assignment_id}
    items = _wanted(changes, ("score",), "item")
    scores = _pinned_and_scores_statement(dialect_name, counted)
    reads: dict[str, Statement] = {"scores": (scores, {**at, "items": items})}
    if note_ids := _wanted(changes, NOTE_OPS, "client_id"):
        statement = _keyed_statement(dialect_name, NOTES, NOTE_COLUMNS)
        reads["notes"] = (statement, {**at, "keys": note_ids})
    if homework_ids := _wanted(changes, HOMEWORK_OPS, "client_id"):
        statement = _keyed_statement(dialect_name, HOMEWORK, HOMEWORK_COLUMNS)
        reads["homework"] = (statement, {**at, "keys": homework_ids})
    if any(c.get("op") == "difficulties" for c in changes):
        reads["difficulties"] = (_difficulties_statement(), at)
    if event_ids := _wanted(changes, EVENT_OPS, "client_id"):
        statement = _keyed_statement(dialect_name, EVENTS, EVENT_COLUMNS)
        reads["events"] = (statement, {**at, "keys": event_ids})
        reads["duration"] = (_duration_statement(), at)
    return reads


# Kinds of rows with a limit per rating, their table and the change that adds one: a batch
# with such a change reads how many the rating holds (with its scores, in one statement).
COUNTED = (("notes", NOTES, "note.put"), ("homework", HOMEWORK, "homework.put"),
           ("events", EVENTS, "event.add"))  # fmt: skip


def _counted(changes: list[dict[str, Any]]) -> tuple[str, ...]:
    """The kinds of rows with a limit that the batch may add."""
    return tuple(kind for kind, _, op in COUNTED if any(c.get("op") == op for c in changes))


def _row_counts(
    connection: Connection, assignment_id: int, counted: tuple[str, ...], scores: Sequence[Any]
) -> dict[str, int]:
    """How many rows of each ``counted`` kind the rating holds: read with its scores, or apart
    for a rating that pins no instrument (its scores read gives no row to carry them)."""
    if not counted:
        return {}
    at = {"p_assignment": assignment_id}
    row = scores[0] if scores else connection.execute(select(*_count_columns(counted)), at).one()
    return {kind: row._mapping[f"{kind}_count"] for kind in counted}


def _context(
    locked: _Locked,
    envelope: _Envelope,
    rows: dict[str, Sequence[Any]],
    counts: dict[str, int],
    now: datetime,
) -> _Context:
    """The state before the batch, from the rows read."""
    before = _State(position=locked.audio_position, active=locked.active_seconds)
    ids: dict[tuple[str, str], int] = {}
    scores = rows["scores"]
    instruments = list(dict(instruments_of_rows(scores)).items())  # one per version, in order
    for row in scores:
        if row[3] is not None:  # (version id, code, hash, score id, item, score, text, n/a)
            before.scores[row[4]] = Item.from_columns(row[5], row[6], row[7])
            ids["score", row[4]] = row[3]
    for row in rows.get("notes", []):
        before.notes[row.client_id] = {c: getattr(row, c) for c in NOTE_COLUMNS}
        ids["note", row.client_id] = row.id
    for row in rows.get("homework", []):
        before.homework[row.client_id] = {c: getattr(row, c) for c in HOMEWORK_COLUMNS}
        ids["homework", row.client_id] = row.id
    if "difficulties" in rows:
        before.difficulties = {row[0] for row in rows["difficulties"]}
    for row in rows.get("events", []):
        before.events[row.client_id] = {c: getattr(row, c) for c in EVENT_COLUMNS}
        ids["event", row.client_id] = row.id
    duration = rows["duration"][0][0] if rows.get("duration") else None
    return _Context(
        locked=locked,
        instruments=instruments,
        version_matches=envelope.base_version == locked.version - 1,
        before=before,
        ids=ids,
        counts=counts,
        wall_seconds=(now - locked.started_at).total_seconds(),
        duration=duration,
    )  # fmt: skip


def _rating_of_assignment() -> ColumnElement[int]:
    """The id of the rating of the assignment passed as ``p_assignment``."""
    return (
        select(RATINGS.c.id)
        .where(RATINGS.c.assignment_id == bindparam("p_assignment"))
        .scalar_subquery()
    )


@cache
def _pinned_and_scores_statement(dialect_name: str, counted: tuple[str, ...]) -> Select:
    """Each pinned version joined with the rating's scores of the wanted ``items``; with the
    number of rows the rating holds of each ``counted`` kind (``<kind>_count``) on every row."""
    rating_id = _rating_of_assignment()
    query = pinned_versions_query(rating_id)
    answer = (SCORES.c.score, SCORES.c.value_text, SCORES.c.not_applicable)
    counts = _count_columns(counted)
    return query.add_columns(SCORES.c.id, SCORES.c.item_code, *answer, *counts).outerjoin(
        SCORES,
        and_(
            SCORES.c.rating_id == rating_id,
            SCORES.c.instrument_version_id == query.selected_columns[0],
            _one_of(dialect_name, SCORES.c.item_code, "items"),
        ),
    )


def _one_of(dialect_name: str, column: ColumnElement, name: str) -> ColumnElement[bool]:
    """``column`` is one of the list passed as ``name``.

    PostgreSQL: ``= ANY(array)``, so that the statement's text does not depend on the list's
    length (SQLAlchemy's compiled cache and the driver's prepared statement serve every list).
    SQLite: ``IN (...)``, rendered per list.
    """
    if dialect_name == "postgresql":  # VARCHAR[] without a length: a cast never truncates
        element = String() if isinstance(column.type, String) else column.type
        return column == any_(bindparam(name, type_=postgresql.ARRAY(element)))
    return column.in_(bindparam(name, expanding=True))


@cache
def _keyed_statement(dialect_name: str, table: Table, columns: tuple[str, ...]) -> Select:
    return select(table.c.id, table.c.client_id, *(table.c[c] for c in columns)).where(
        table.c.rating_id == _rating_of_assignment(),
        _one_of(dialect_name, table.c.client_id, "keys"),
    )


def _count_columns(counted: tuple[str, ...]) -> list[Label[int]]:
    """``<kind>_count``: how many rows of each ``counted`` kind the rating holds."""
    tables = {kind: table for kind, table, _ in COUNTED}
    rating_id = _rating_of_assignment()
    return [
        select(func.count())
        .select_from(tables[kind])
        .where(tables[kind].c.rating_id == rating_id)
        .scalar_subquery()
        .label(f"{kind}_count")
        for kind in counted
    ]


@cache
def _duration_statement() -> Select:
    """The length of the session's recording (events must lie within it)."""
    return (
        select(SESSIONS.c.duration_seconds)
        .join(ASSIGNMENTS, ASSIGNMENTS.c.session_id == SESSIONS.c.id)
        .where(ASSIGNMENTS.c.id == bindparam("p_assignment"))
    )


@cache
def _difficulties_statement() -> Select:
    return select(DIFFICULTIES.c.difficulty_type).where(
        DIFFICULTIES.c.rating_id == _rating_of_assignment()
    )


# --- the writes --------------------------------------------------------------------------------


def _write(
    connection: Connection,
    ctx: _Context,
    after: _State,
    *,
    applied: int,
    assignment_id: int,
    user_id: int,
) -> None:
    """Write the difference between the state read and ``after``; audit the score changes.

    What needs an answer from the database comes first: on SQLite the ids of new score rows
    (for their audit events), and the session of new homework entries. The rest follows, one
    statement (or executemany) per kind of write.
    """
    before, rid, dialect = ctx.before, ctx.locked.rating_id, connection.dialect.name
    notes = _row_changes(ctx, "note", before.notes, after.notes)
    homework = _row_changes(ctx, "homework", before.homework, after.homework)
    events = _row_changes(ctx, "event", before.events, after.events)
    new_events = [
        {"rating_id": rid, "instrument_version_id": ctx.code_owners[row["code"]],
         "client_id": cid, **row}
        for cid, row in events.added.items()
    ]  # fmt: skip
    score_writes = _score_writes(connection, ctx, after, user_id)
    new_notes = [{"rating_id": rid, "client_id": cid, **row} for cid, row in notes.added.items()]
    new_homework = _new_homework(connection, homework, rid, assignment_id, user_id)
    writes = [
        *score_writes,
        *_row_writes(dialect, NOTES, notes, new_notes),
        *_row_writes(dialect, HOMEWORK, homework, new_homework),
        *_row_writes(dialect, EVENTS, events, new_events),
        *_difficulty_writes(dialect, rid, before.difficulties, after.difficulties),
        *_rating_writes(ctx, after, applied),
        *_event_audit(rid, before.events, after.events, user_id),
    ]
    if writes:
        execute_all(connection, writes)


@dataclass(frozen=True)
class _RowChanges:
    """How one kind of row must change to hold the new state."""

    deleted: list[int]  # row ids
    changed: list[dict[str, Any]]  # {"row_id": id, column: value, ...}
    added: dict[str, dict[str, Any]]  # key -> column values


def _answer_columns(answer: Answer) -> dict[str, Any]:
    return dict(zip(("score", "value_text", "not_applicable"), Item.columns(answer), strict=True))


def _row_changes(
    ctx: _Context,
    kind: str,
    before: dict[str, Any],
    after: dict[str, Any],
    values: Callable[[Any], dict[str, Any]] = lambda value: value,
) -> _RowChanges:
    """Compare the state read with ``after``; ``values`` turns a state value into the row's
    column values (notes and homework hold them already; scores hold answers)."""

    return _RowChanges(
        deleted=[ctx.ids[kind, k] for k in before if k not in after],
        changed=[
            {"row_id": ctx.ids[kind, k], **values(v)}
            for k, v in after.items()
            if k in before and before[k] != v
        ],
        added={k: values(v) for k, v in after.items() if k not in before},
    )


def _insert_scores(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert new score rows; their ids by item."""
    if not rows:
        return {}
    inserted = connection.execute(_insert_scores_statement(), rows)
    return {row[1]: row[0] for row in inserted}


def _new_homework(
    connection: Connection, changes: _RowChanges, rating_id: int, assignment_id: int, user_id: int
) -> list[dict[str, Any]]:
    if not changes.added:
        return []
    session_id = connection.scalar(
        select(ASSIGNMENTS.c.session_id).where(ASSIGNMENTS.c.id == assignment_id)
    )
    common = {"rating_id": rating_id, "session_id": session_id, "entered_by_id": user_id}
    return [
        {**common, "kind": LogKind.REPORTED_COMPLETED, "client_id": cid, **row}
        for cid, row in changes.added.items()
    ]


def _row_writes(
    dialect_name: str, table: Table, changes: _RowChanges, new_rows: list[dict[str, Any]]
) -> list[Statement]:
    """Delete, update and insert rows (nothing is read back)."""
    writes: list[Statement] = []
    if changes.deleted:
        writes.append((_delete_by_id(dialect_name, table), {"row_ids": changes.deleted}))
    if changes.changed:
        writes.append((_update_by_id(table), changes.changed))
    if new_rows:
        writes.append((_insert_inline(table), new_rows))
    return writes


@cache
def _delete_by_id(dialect_name: str, table: Table) -> Delete:
    return delete(table).where(_one_of(dialect_name, table.c.id, "row_ids"))


@cache
def _update_by_id(table: Table) -> Update:
    """UPDATE of the columns each parameter set names, for the row ``row_id``."""
    return update(table).where(table.c.id == bindparam("row_id"))


@cache
def _insert_inline(table: Table) -> Insert:
    """INSERT that reads nothing back (not even the new id)."""
    return insert(table).inline()


@cache
def _insert_scores_statement() -> Insert:
    return insert(SCORES).returning(SCORES.c.id, SCORES.c.item_code)


def _difficulty_writes(
    dialect_name: str, rating_id: int, before: set[str], after: set[str]
) -> list[Statement]:
    writes: list[Statement] = []
    if removed := sorted(before - after):
        params = {"p_rating": rating_id, "types": removed}
        writes.append((_delete_difficulties(dialect_name), params))
    if added := sorted(after - before):
        rows = [{"rating_id": rating_id, "difficulty_type": value} for value in added]
        writes.append((_insert_inline(DIFFICULTIES), rows))
    return writes


@cache
def _delete_difficulties(dialect_name: str) -> Delete:
    return delete(DIFFICULTIES).where(
        DIFFICULTIES.c.rating_id == bindparam("p_rating"),
        _one_of(dialect_name, DIFFICULTIES.c.difficulty_type, "types"),
    )


def _rating_writes(ctx: _Context, after: _State, applied: int) -> list[Statement]:
    """Position and active time; the version goes back when nothing was applied."""
    values: dict[str, Any] = {}
    if after.position != ctx.before.position:
        values["audio_position"] = after.position
    if after.active != ctx.before.active:
        values["active_seconds"] = after.active
    if applied == 0:
        values["version"] = ctx.locked.version - 1
    if not values:
        return []
    return [(_update_by_id(RATINGS), {"row_id": ctx.locked.rating_id, **values})]


def _score_writes(
    connection: Connection, ctx: _Context, after: _State, user_id: int
) -> list[Statement]:
    """The score changes with their audit events: on PostgreSQL one statement per kind of
    write; on SQLite new rows are inserted here (their ids name their events)."""
    before, dialect = ctx.before.scores, connection.dialect.name
    if dialect == "postgresql":
        return _audited_score_writes(ctx, before, after.scores, user_id)
    scores = _row_changes(ctx, "score", before, after.scores, _answer_columns)
    new_scores = [
        {"rating_id": ctx.locked.rating_id, "instrument_version_id": ctx.owner_of(code),
         "item_code": code, **row}
        for code, row in scores.added.items()
    ]  # fmt: skip
    new_ids = _insert_scores(connection, new_scores)
    return [
        *_row_writes(dialect, SCORES, scores, []),
        *_score_events(ctx, before, after.scores, new_ids, user_id),
    ]


SCORE_PARAMS = ("p_score", "p_value_text", "p_not_applicable")  # Item.columns' order


def _audited_score_writes(
    ctx: _Context, before: dict[str, Answer], after: dict[str, Answer], user_id: int
) -> list[Statement]:
    """PostgreSQL: each score the batch adds, changes or removes, with its audit event (old ->
    new), in one statement per kind of write (an executemany)."""
    at = utcnow()
    rows: dict[str, list[dict[str, Any]]] = {"added": [], "changed": [], "removed": []}
    for code in _changed_items(before, after):
        old, new = _score_change(code, before, after)
        params = {"at": at, "user_id": user_id, "before": old, "after": new}
        if code not in before:
            kind = "added"
            params |= {"p_rating": ctx.locked.rating_id, "p_version": ctx.owner_of(code),
                       "p_item": code}  # fmt: skip
        else:
            kind = "changed" if code in after else "removed"
            params["row_id"] = ctx.ids["score", code]
        if code in after:
            params |= dict(zip(SCORE_PARAMS, Item.columns(after[code]), strict=True))
        rows[kind].append(params)
    return [(_audited_score_statement(kind), params) for kind, params in rows.items() if params]


@cache
def _audited_score_statement(kind: str) -> Insert:
    """PostgreSQL: add, change or remove one score row and record its audit event."""
    answer = {column: bindparam(name, type_=SCORES.c[column].type)
              for column, name in zip(("score", "value_text", "not_applicable"), SCORE_PARAMS,
                                      strict=True)}  # fmt: skip
    write: Insert | Update | Delete
    if kind == "added":
        write = insert(SCORES).values(
            rating_id=bindparam("p_rating"), instrument_version_id=bindparam("p_version"),
            item_code=bindparam("p_item"), updated_at=bindparam("at"), **answer,
        )  # fmt: skip
    elif kind == "changed":
        write = update(SCORES).where(SCORES.c.id == bindparam("row_id"))
        write = write.values(updated_at=bindparam("at"), **answer)
    else:
        write = delete(SCORES).where(SCORES.c.id == bindparam("row_id"))
    written = write.returning(SCORES.c.id).cte(f"score_{kind}")
    return audit.insert_for_written("score.change", "item_score", written)


def _score_events(
    ctx: _Context,
    before: dict[str, Answer],
    after: dict[str, Answer],
    new_ids: dict[str, int],
    user_id: int,
) -> list[Statement]:
    """One audit event per item whose answer the batch changed (old -> new)."""
    events = [
        (ctx.ids.get(("score", code), new_ids.get(code)), *_score_change(code, before, after))
        for code in _changed_items(before, after)
    ]
    return audit.insert_many("score.change", "item_score", events, user_id=user_id)


def _changed_items(before: dict[str, Answer], after: dict[str, Answer]) -> list[str]:
    """The items whose answer the batch added, changed or removed, in order."""
    return sorted(
        code for code in before.keys() | after.keys() if before.get(code) != after.get(code)
    )


def _score_change(
    code: str, before: dict[str, Answer], after: dict[str, Answer]
) -> tuple[Any, Any]:
    """An item's audit event: its answer before and after the batch."""
    return {code: answer_json(before.get(code))}, {code: answer_json(after.get(code))}


def _event_audit(
    rating_id: int, before: dict[str, Any], after: dict[str, Any], user_id: int
) -> list[Statement]:
    """One audit event per coded event the batch added, changed or deleted (entity
    ``<rating id>/<client id>``; before and after are the event's values or null)."""
    changed = [
        (f"{rating_id}/{cid}", before.get(cid), after.get(cid))
        for cid in sorted(before.keys() | after.keys())
        if before.get(cid) != after.get(cid)
    ]
    return audit.insert_many("event.change", "event", changed, user_id=user_id)


# --- planning each change -------------------------------------------------------------------


def _check(ctx: _Context, key: str, current: Any, new: Any, change: dict[str, Any]) -> bool:
    """True when the change must be applied, False when already applied; raise on conflict."""
    if current == new:
        return False
    base = change.get("base", MISSING)
    if base is MISSING:
        if ctx.version_matches:
            return True
        raise _Conflict(key)
    if current == base:
        return True
    raise _Conflict(key)


def _plan_change(ctx: _Context, change: dict[str, Any]) -> Step | None:
    op = change.get("op")
    planner = _PLANNERS.get(op) if isinstance(op, str) else None
    if planner is None:
        raise _Invalid(f"unknown op {op!r}")
    return planner(ctx, change)


def _put(store: str, key: str, value: Any) -> Step:
    """A step that sets (or, for None, removes) one key of the state's ``store``."""

    def step(state: _State) -> None:
        values = getattr(state, store)
        if value is None:
            values.pop(key, None)  # removing twice in one batch is removing once
        else:
            values[key] = value

    return step


# --- scores -------------------------------------------------------------------------------


def _plan_score(ctx: _Context, change: dict[str, Any]) -> Step | None:
    """An item's answer (``value``: see ``Item.answer``; null removes it)."""
    code = change.get("item")
    if not isinstance(code, str) or ctx.owner_of(code) is None:
        raise _Invalid(f"unknown item {code!r}")
    item = ctx.items[code]
    value = _answer(item, change.get("value"), f"score of {code}")
    normal = {**change}
    if "base" in change:
        normal["base"] = _answer(item, change["base"], f"'base' of {code}")
    if not _check(ctx, f"score:{code}", ctx.before.scores.get(code), value, normal):
        return None
    return _put("scores", code, value)


def _answer(item: Item, value: Any, name: str) -> Answer | None:
    if value is None:
        return None
    try:
        return item.answer(value)
    except ValueError as exc:
        raise _Invalid(f"{name} {exc} or null") from None


# --- notes --------------------------------------------------------------------------------


def _client_id(change: dict[str, Any]) -> str:
    value = change.get("client_id")
    if not _storable(value) or not 1 <= len(value) <= 64:
        raise _Invalid("'client_id' must be a string of 1-64 characters (no NUL)")
    return value


def _require_base(change: dict[str, Any], valid: Callable[[Any], bool], message: str) -> None:
    """A change's ``base``, when given and not null, must pass ``valid``."""
    base = change.get("base")
    if base is not None and not valid(base):
        raise _Invalid(message)


def _seconds(value: Any, name: str, limit: float = MAX_SECONDS) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _Invalid(f"'{name}' must be a number of seconds")
    if not 0 <= value <= limit:  # before rounding: a huge integer cannot become a float
        raise _Invalid(f"'{name}' must lie between 0 and {limit:g}")
    return round(float(value), 2)  # NaN fails the range check above


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"'{name}' must be text")
    if len(value) > limit:
        raise _Invalid(f"'{name}' is {len(value)} characters long; at most {limit} are allowed")
    if problem := text_problem(value):
        raise _Invalid(f"'{name}' {problem}")
    return value


def _note_state(note: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored note as the protocol shows it (``seconds``, ``text``)."""
    if note is None:
        return None
    return {"seconds": round(note["audio_seconds"], 2), "text": note["text"]}


def _normal_note_base(change: dict[str, Any]) -> dict[str, Any]:
    """The change with its ``base`` as the protocol compares it (seconds rounded)."""
    _require_base(change, _is_note, '\'base\' of a note must be null or {"seconds", "text"}')
    base = change.get("base", MISSING)
    if isinstance(base, dict):
        base = {"seconds": _seconds(base.get("seconds"), "base.seconds"), "text": base.get("text")}
    return {**change, "base": base} if base is not MISSING else change


def _is_note(base: Any) -> bool:
    return isinstance(base, dict) and isinstance(base.get("text"), str)


def _is_homework(base: Any) -> bool:
    return (
        isinstance(base, dict)
        and isinstance(base.get("homework_type"), str)
        and isinstance(base.get("description"), str)
        and (base.get("completion") is None or isinstance(base.get("completion"), str))
    )


def _plan_note_put(ctx: _Context, change: dict[str, Any]) -> Step | None:
    cid = _client_id(change)
    new = {
        "seconds": _seconds(change.get("seconds"), "seconds"),
        "text": _text(change.get("text"), "text", MAX_NOTE_LENGTH),
    }
    current = _note_state(ctx.before.notes.get(cid))
    if not _check(ctx, f"note:{cid}", current, new, _normal_note_base(change)):
        return None
    return _put("notes", cid, {"audio_seconds": new["seconds"], "text": new["text"]})


def _plan_note_delete(ctx: _Context, change: dict[str, Any]) -> Step | None:
    cid = _client_id(change)
    current = _note_state(ctx.before.notes.get(cid))
    if not _check(ctx, f"note:{cid}", current, None, _normal_note_base(change)):
        return None
    return _put("notes", cid, None)


# --- homework log (reported as completed) -------------------------------------------------


def _plan_homework_put(ctx: _Context, change: dict[str, Any]) -> Step | None:
    cid = _client_id(change)
    types = {t for _, i in ctx.instruments for t in i.homework_types}
    kind = change.get("homework_type")
    if not isinstance(kind, str) or kind not in types:
        raise _Invalid(f"'homework_type' must be one of {', '.join(sorted(types))}")
    completion = change.get("completion")
    if completion is not None and (
        not isinstance(completion, str) or completion not in set(Completion)
    ):
        raise _Invalid("'completion' must be yes, partly, no or null")
    new = {
        "homework_type": kind,
        "completion": completion,
        "description": _text(change.get("description", ""), "description", MAX_DESCRIPTION_LENGTH),
    }
    _require_base(change, _is_homework, HOMEWORK_BASE_MESSAGE)
    if not _check(ctx, f"homework:{cid}", ctx.before.homework.get(cid), new, change):
        return None
    return _put("homework", cid, new)


HOMEWORK_BASE_MESSAGE = (
    '\'base\' of a homework entry must be null or {"homework_type", "completion", "description"}'
)


def _plan_homework_delete(ctx: _Context, change: dict[str, Any]) -> Step | None:
    cid = _client_id(change)
    _require_base(change, _is_homework, HOMEWORK_BASE_MESSAGE)
    if not _check(ctx, f"homework:{cid}", ctx.before.homework.get(cid), None, change):
        return None
    return _put("homework", cid, None)


# --- difficulties, position, active time ---------------------------------------------------


def _plan_difficulties(ctx: _Context, change: dict[str, Any]) -> Step | None:
    values = change.get("values")
    allowed = {t for _, i in ctx.instruments for t in i.difficulty_types}
    if not _is_text_list(values) or not set(values) <= allowed:
        raise _Invalid("'values' must be a list of difficulty types of the instruments")
    _require_base(change, _is_text_list, "'base' of difficulties must be null or a list of text")
    new = sorted(set(values))
    base = change.get("base", MISSING)
    normal = {**change, "base": sorted(set(base))} if isinstance(base, list) else change
    if not _check(ctx, "difficulties", sorted(ctx.before.difficulties), new, normal):
        return None

    def step(state: _State) -> None:
        state.difficulties = set(new)

    return step


def _is_text_list(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _plan_position(ctx: _Context, change: dict[str, Any]) -> Step | None:
    seconds = _seconds(change.get("seconds"), "seconds")
    if round(ctx.before.position, 2) == seconds:
        return None

    def step(state: _State) -> None:
        state.position = seconds

    return step


def _plan_active(ctx: _Context, change: dict[str, Any]) -> Step | None:
    seconds = _seconds(change.get("seconds"), "seconds", MAX_ACTIVE_INCREMENT)
    if seconds == 0:
        return None
    total = ctx.before.active + ctx.active_planned + seconds
    if total > ctx.wall_seconds + ACTIVE_TOLERANCE_SECONDS:
        raise _Invalid(
            f"'active' would make the active time {total:.0f} s, but the rating was started "
            f"only {ctx.wall_seconds:.0f} s ago (active time cannot exceed wall time)"
        )
    ctx.active_planned += seconds

    def step(state: _State) -> None:
        state.active += seconds

    return step


# --- coded events -----------------------------------------------------------------------------
#
# An event is keyed by its client id; its state is {"code", "time_s", "end_s", "note"}. Every
# change compares with ``base``, the event as the client last saw it on the server (null: it
# did not exist). ``event.add`` creates the event (or, with a base, replaces it: a change made
# while its first save was on the way); ``event.move`` sets its times and ``event.recode`` its
# code, both computed from ``base`` (required); ``event.delete`` removes it. A change whose
# result is already stored is a retry and applies nothing.


def _event_base(change: dict[str, Any]) -> Any:
    """The change's ``base`` as stored values (times rounded), MISSING, or None."""
    base = change.get("base", MISSING)
    if base is MISSING or base is None:
        return base
    if not isinstance(base, dict) or not isinstance(base.get("code"), str):
        raise _Invalid('\'base\' of an event must be null or {"code", "time_s", "end_s", "note"}')
    return {
        "code": base["code"],
        "time_s": _seconds(base.get("time_s"), "base.time_s"),
        "end_s": None if base.get("end_s") is None else _seconds(base["end_s"], "base.end_s"),
        "note": base.get("note", ""),
    }


def _valid_event(ctx: _Context, values: dict[str, Any]) -> dict[str, Any]:
    event, problems = check_event(
        ctx.codes, values.get("code"), values.get("time_s"), values.get("end_s"),
        values.get("note", ""), ctx.duration,
    )  # fmt: skip
    if event is None:
        raise _Invalid(problem_text(problems))
    return event


def _plan_event(ctx: _Context, change: dict[str, Any], new: dict[str, Any] | None) -> Step | None:
    cid = _client_id(change)
    base = _event_base(change)
    checked = change if base is MISSING else {**change, "base": base}
    if not _check(ctx, f"event:{cid}", ctx.before.events.get(cid), new, checked):
        return None
    return _put("events", cid, new)


def _plan_event_add(ctx: _Context, change: dict[str, Any]) -> Step | None:
    change = change if "base" in change else {**change, "base": None}  # new: must not exist
    return _plan_event(ctx, change, _valid_event(ctx, change))


def _edited(ctx: _Context, change: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The event of ``base`` with ``fields`` taken from the change, validated."""
    base = _event_base(change)
    if not isinstance(base, dict):
        raise _Invalid(f"{change.get('op')} needs 'base': the event as last saved")
    return _valid_event(ctx, {**base, **{f: change.get(f) for f in fields}})


def _plan_event_move(ctx: _Context, change: dict[str, Any]) -> Step | None:
    return _plan_event(ctx, change, _edited(ctx, change, ("time_s", "end_s")))


def _plan_event_recode(ctx: _Context, change: dict[str, Any]) -> Step | None:
    return _plan_event(ctx, change, _edited(ctx, change, ("code",)))


def _plan_event_delete(ctx: _Context, change: dict[str, Any]) -> Step | None:
    return _plan_event(ctx, change, None)


_PLANNERS: dict[str, Callable[[_Context, dict[str, Any]], Step | None]] = {
    "score": _plan_score,
    "note.put": _plan_note_put,
    "note.delete": _plan_note_delete,
    "homework.put": _plan_homework_put,
    "homework.delete": _plan_homework_delete,
    "difficulties": _plan_difficulties,
    "position": _plan_position,
    "active": _plan_active,
    "event.add": _plan_event_add,
    "event.move": _plan_event_move,
    "event.recode": _plan_event_recode,
    "event.delete": _plan_event_delete,
}
