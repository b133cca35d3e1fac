"""Autosave: apply a batch of changes from the rating page to a draft rating (flush only).

Protocol (documented for API users in docs/rating.md). The client posts::

    {"client": "<tab uuid>", "seq": 12, "base_version": 7,
     "changes": [{"op": "score", "item": "GHES_1", "value": 3, "base": 2}, ...]}

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
refused with 409 so that nothing is overwritten. The audio position and active-time increments
never conflict. Every applied batch increases ``Rating.version`` by one.

Concurrency: the version is increased by one UPDATE before anything is read, so concurrent saves
of one rating are serialised by the database's row (PostgreSQL) or write (SQLite) lock, and the
batch-number check and the compare-and-set reads see committed data.

Cost: after that UPDATE (whose RETURNING gives the rating's current values) only the rows the
batch touches are read — the scores of its items, its notes and homework entries by client id
— all changes are written in one flush (plus one more when new scores need their ids for the
audit events), and the pinned instruments come from a per-process cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from rater import audit
from rater.extensions import db
from rater.instruments import SCORE_MAX, SCORE_MIN, Instrument
from rater.rating.models import (
    COMPLETIONS,
    Assignment,
    AutosaveBatch,
    HomeworkEntry,
    ItemScore,
    Note,
    Rating,
    RatingDifficulty,
)
from rater.rating.service import instruments_of_rows, pinned_versions_query
from rater.timeutil import utcnow

CONFLICT_MESSAGE = (
    "This rating was changed in another tab or window — reload the page to see the newer "
    "changes. Your change was not saved."
)
LOCKED_MESSAGE = "This rating is submitted and locked; changes are no longer saved."
FLAGGED_MESSAGE = "This session was marked as 'cannot be rated'; changes are no longer saved."
MAX_CHANGES = 500
MAX_TEXT = 10_000
MAX_SECONDS = 24 * 3600.0
MAX_ACTIVE_INCREMENT = 3600.0
MAX_SEQ = 2**31 - 1
MISSING = object()


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


@dataclass
class _Context:
    rating: Rating
    session_id: int
    rater_id: int
    instruments: list[tuple[int, Instrument]]
    version_matches: bool
    scores: dict[str, ItemScore]
    notes: dict[str, Note]
    homework: dict[str, HomeworkEntry]
    difficulties: dict[str, RatingDifficulty] | None
    score_events: list[tuple[str, ItemScore, int | None, int | None]] = field(default_factory=list)
    applied: int = 0


def apply_autosave(assignment: Assignment, payload: Any) -> dict[str, Any]:
    """Apply the payload's changes atomically or raise AutosaveRefused (nothing applied)."""
    envelope = _parse_envelope(payload)
    rating = assignment.rating
    assert rating is not None
    new_version = _lock_and_bump(rating)
    instruments, last_seq = _pinned_and_last_seq(rating.id, envelope.client)
    if envelope.seq is not None and last_seq is not None and envelope.seq <= last_seq:
        raise AlreadyApplied(new_version - 1)
    ctx = _load(assignment, envelope, instruments, envelope.base_version == new_version - 1)
    plan = _plan(ctx, envelope.changes, new_version)
    for step in plan:
        step()
        ctx.applied += 1
    if ctx.applied == 0:
        rating.version = new_version - 1  # nothing changed: the version stays as it was
    _record_scores(ctx)
    _record_batch(rating.id, envelope, last_seq)
    db.session.flush()
    return {
        "ok": True,
        "version": rating.version,
        "applied": ctx.applied,
        "duplicate": False,
        "others_changed": envelope.base_version != new_version - 1,
        "saved_at": utcnow().isoformat() + "Z",
    }


class _Invalid(ValueError):
    pass


class _Conflict(Exception):
    pass


def _plan(ctx: _Context, changes: list[dict[str, Any]], new_version: int) -> list[Callable]:
    """Every change's write step, or raise (400 for invalid changes, 409 for conflicts)."""
    problems: list[str] = []
    conflicts: list[str] = []
    plan: list[Callable[[], None]] = []
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
    if not isinstance(client, str) or not 1 <= len(client) <= 64:
        raise AutosaveRefused(400, "'client' must be a string of 1-64 characters.")
    if not _is_int(seq) or not 1 <= seq <= MAX_SEQ:
        raise AutosaveRefused(400, f"'seq' must be a batch number from 1 to {MAX_SEQ}.")
    return _Envelope(base_version, changes, client, seq)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _lock_and_bump(rating: Rating) -> int:
    """Increase the version (taking the rating's lock); refresh what autosave reads from it."""
    row = db.session.execute(
        update(Rating)
        .where(Rating.id == rating.id, Rating.status == "draft", Rating.cannot_rate.is_(False))
        .values(version=Rating.version + 1)
        .returning(Rating.version, Rating.audio_position, Rating.active_seconds),
        execution_options={"synchronize_session": False},
    ).first()
    if row is None:
        current = db.session.get(Rating, rating.id, populate_existing=True)
        if current is None:
            raise AutosaveRefused(404, "This rating does not exist.")
        message = LOCKED_MESSAGE if current.status == "submitted" else FLAGGED_MESSAGE
        raise AutosaveRefused(423, message, version=current.version)
    # The values read under the lock, as if just loaded: later changes flush as an UPDATE.
    for name, value in zip(("version", "audio_position", "active_seconds"), row, strict=True):
        set_committed_value(rating, name, value)
    return int(row.version)


def _pinned_and_last_seq(
    rating_id: int, client: str | None
) -> tuple[list[tuple[int, Instrument]], int | None]:
    """The pinned instruments and the client's highest applied batch number, in one query.

    Read after the version UPDATE, so a concurrent save of the same batch has committed.
    """
    query = pinned_versions_query(rating_id)
    if client is None:
        return instruments_of_rows(db.session.execute(query).all()), None
    query = query.add_columns(AutosaveBatch.seq).outerjoin(
        AutosaveBatch,
        and_(AutosaveBatch.rating_id == rating_id, AutosaveBatch.client == client),
    )
    rows = db.session.execute(query).all()
    if not rows:  # no pinned instrument to join with: ask the batch table alone
        last = select(AutosaveBatch.seq).where(
            AutosaveBatch.rating_id == rating_id, AutosaveBatch.client == client
        )
        return [], db.session.scalar(last)
    return instruments_of_rows(rows), rows[0].seq


def _record_batch(rating_id: int, envelope: _Envelope, last_seq: int | None) -> None:
    """Raise the client's highest applied batch number to this batch's."""
    if envelope.client is None:
        return
    if last_seq is None:
        db.session.add(AutosaveBatch(rating_id=rating_id, client=envelope.client, seq=envelope.seq))
        return
    db.session.execute(
        update(AutosaveBatch)
        .where(AutosaveBatch.rating_id == rating_id, AutosaveBatch.client == envelope.client)
        .values(seq=envelope.seq),
        execution_options={"synchronize_session": False},
    )


def _wanted(changes: list[dict[str, Any]], ops: tuple[str, ...], key: str) -> set[str]:
    return {c[key] for c in changes if c.get("op") in ops and isinstance(c.get(key), str)}


def _load(
    assignment: Assignment,
    envelope: _Envelope,
    instruments: list[tuple[int, Instrument]],
    version_matches: bool,
) -> _Context:
    """Only the rows the batch touches (one query per kind of change at most)."""
    rating, changes = assignment.rating, envelope.changes
    rid = rating.id
    items = _wanted(changes, ("score",), "item")
    note_ids = _wanted(changes, ("note.put", "note.delete"), "client_id")
    homework_ids = _wanted(changes, ("homework.put", "homework.delete"), "client_id")
    return _Context(
        rating=rating,
        session_id=assignment.session_id,
        rater_id=assignment.rater_id,
        instruments=instruments,
        version_matches=version_matches,
        scores=_rows(ItemScore, ItemScore.item_code, rid, items),
        notes=_rows(Note, Note.client_id, rid, note_ids),
        homework=_rows(HomeworkEntry, HomeworkEntry.client_id, rid, homework_ids),
        difficulties=(
            {
                d.difficulty_type: d
                for d in _select(RatingDifficulty, RatingDifficulty.rating_id == rid)
            }
            if any(c.get("op") == "difficulties" for c in changes)
            else None
        ),
    )


def _select(model: type, *where: Any) -> Any:
    return db.session.scalars(select(model).where(*where).execution_options(populate_existing=True))


def _rows(model: type, key: Any, rating_id: int, wanted: set[str]) -> dict[str, Any]:
    if not wanted:
        return {}
    rows = _select(model, model.rating_id == rating_id, key.in_(sorted(wanted)))
    return {getattr(row, key.key): row for row in rows}


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


def _plan_change(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    op = change.get("op")
    planner = _PLANNERS.get(op) if isinstance(op, str) else None
    if planner is None:
        raise _Invalid(f"unknown op {op!r}")
    return planner(ctx, change)


# --- scores -------------------------------------------------------------------------------


def _plan_score(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    code = change.get("item")
    owner = next((vid for vid, inst in ctx.instruments if code in inst.item_codes), None)
    if owner is None:
        raise _Invalid(f"unknown item {code!r}")
    value = change.get("value")
    if value is not None and (not _is_int(value) or not SCORE_MIN <= value <= SCORE_MAX):
        raise _Invalid(f"score of {code} must be an integer {SCORE_MIN}-{SCORE_MAX} or null")
    existing = ctx.scores.get(code)
    current = existing.score if existing is not None else None
    if "base" in change and change["base"] is not None and not isinstance(change["base"], int):
        raise _Invalid(f"base of {code} must be a score or null")
    if not _check(ctx, f"score:{code}", current, value, change):
        return None
    return lambda: _write_score(ctx, code, owner, current, value)


def _write_score(
    ctx: _Context, code: str, version_id: int, old: int | None, new: int | None
) -> None:
    score = ctx.scores.get(code)
    if new is None:
        if score is None:  # the same item cleared twice in one batch
            return
        db.session.delete(score)
        del ctx.scores[code]
    elif score is None:
        score = ItemScore(
            rating_id=ctx.rating.id, instrument_version_id=version_id, item_code=code, score=new
        )
        db.session.add(score)
        ctx.scores[code] = score
    else:
        score.score = new
    ctx.score_events.append((code, score, old, new))


def _record_scores(ctx: _Context) -> None:
    """One audit event per score change (new scores are flushed first to get their ids)."""
    if not ctx.score_events:
        return
    if any(score.id is None for _, score, _, _ in ctx.score_events):
        db.session.flush()
    for code, score, old, new in ctx.score_events:
        audit.record("score.change", "item_score", score.id, before={code: old}, after={code: new})


# --- notes --------------------------------------------------------------------------------


def _client_id(change: dict[str, Any]) -> str:
    value = change.get("client_id")
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise _Invalid("'client_id' must be a string of 1-64 characters")
    return value


def _seconds(value: Any, name: str, limit: float = MAX_SECONDS) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise _Invalid(f"'{name}' must be a number of seconds")
    if not 0 <= value <= limit:
        raise _Invalid(f"'{name}' must lie between 0 and {limit:g}")
    return round(float(value), 2)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _Invalid(f"'{name}' must be text of at most {MAX_TEXT} characters")
    return value


def _note_state(note: Note | None) -> dict[str, Any] | None:
    return None if note is None else {"seconds": round(note.audio_seconds, 2), "text": note.text}


def _normal_note_base(change: dict[str, Any]) -> dict[str, Any]:
    base = change.get("base", MISSING)
    if isinstance(base, dict):
        base = {"seconds": _seconds(base.get("seconds"), "base.seconds"), "text": base.get("text")}
    return {**change, "base": base} if base is not MISSING else change


def _plan_note_put(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    cid = _client_id(change)
    new = {
        "seconds": _seconds(change.get("seconds"), "seconds"),
        "text": _text(change.get("text"), "text"),
    }
    note = ctx.notes.get(cid)
    if not _check(ctx, f"note:{cid}", _note_state(note), new, _normal_note_base(change)):
        return None

    def write() -> None:
        target = ctx.notes.get(cid)
        if target is None:
            target = Note(
                rating_id=ctx.rating.id,
                client_id=cid,
                audio_seconds=new["seconds"],
                text=new["text"],
            )
            db.session.add(target)
            ctx.notes[cid] = target
        else:
            target.audio_seconds, target.text = new["seconds"], new["text"]

    return write


def _plan_note_delete(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    cid = _client_id(change)
    note = ctx.notes.get(cid)
    if not _check(ctx, f"note:{cid}", _note_state(note), None, _normal_note_base(change)):
        return None

    def write() -> None:
        if cid in ctx.notes:  # not when deleted twice in one batch
            db.session.delete(ctx.notes.pop(cid))

    return write


# --- homework log (reported as completed) -------------------------------------------------


def _homework_state(entry: HomeworkEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "homework_type": entry.homework_type,
        "completion": entry.completion,
        "description": entry.description,
    }


def _plan_homework_put(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    cid = _client_id(change)
    types = {t for _, i in ctx.instruments for t in i.homework_types}
    kind = change.get("homework_type")
    if kind not in types:
        raise _Invalid(f"unknown homework type {kind!r}")
    completion = change.get("completion")
    if completion is not None and completion not in COMPLETIONS:
        raise _Invalid("'completion' must be yes, partly, no or null")
    new = {
        "homework_type": kind,
        "completion": completion,
        "description": _text(change.get("description", ""), "description"),
    }
    entry = ctx.homework.get(cid)
    if not _check(ctx, f"homework:{cid}", _homework_state(entry), new, change):
        return None

    def write() -> None:
        target = ctx.homework.get(cid)
        if target is None:
            target = HomeworkEntry(
                session_id=ctx.session_id,
                rating_id=ctx.rating.id,
                entered_by_id=ctx.rater_id,
                client_id=cid,
                kind="reported_completed",
            )
            db.session.add(target)
            ctx.homework[cid] = target
        target.homework_type = new["homework_type"]
        target.completion = new["completion"]
        target.description = new["description"]

    return write


def _plan_homework_delete(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    cid = _client_id(change)
    entry = ctx.homework.get(cid)
    if not _check(ctx, f"homework:{cid}", _homework_state(entry), None, change):
        return None

    def write() -> None:
        if cid in ctx.homework:  # not when deleted twice in one batch
            db.session.delete(ctx.homework.pop(cid))

    return write


# --- difficulties, position, active time ---------------------------------------------------


def _plan_difficulties(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    values = change.get("values")
    allowed = {t for _, i in ctx.instruments for t in i.difficulty_types}
    if not isinstance(values, list) or not all(v in allowed for v in values):
        raise _Invalid("'values' must be a list of difficulty types of the instruments")
    new = sorted(set(values))
    base = change.get("base", MISSING)
    normal = {**change, "base": sorted(set(base))} if isinstance(base, list) else change
    rows = ctx.difficulties if ctx.difficulties is not None else {}
    if not _check(ctx, "difficulties", sorted(rows), new, normal):
        return None

    def write() -> None:
        for value in [v for v in rows if v not in new]:
            db.session.delete(rows.pop(value))
        for value in [v for v in new if v not in rows]:
            rows[value] = RatingDifficulty(rating_id=ctx.rating.id, difficulty_type=value)
            db.session.add(rows[value])

    return write


def _plan_position(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    seconds = _seconds(change.get("seconds"), "seconds")
    if round(ctx.rating.audio_position, 2) == seconds:
        return None
    return lambda: setattr(ctx.rating, "audio_position", seconds)


def _plan_active(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    seconds = _seconds(change.get("seconds"), "seconds", MAX_ACTIVE_INCREMENT)
    if seconds == 0:
        return None
    return lambda: setattr(ctx.rating, "active_seconds", ctx.rating.active_seconds + seconds)


_PLANNERS: dict[str, Callable[[_Context, dict[str, Any]], Callable[[], None] | None]] = {
    "score": _plan_score,
    "note.put": _plan_note_put,
    "note.delete": _plan_note_delete,
    "homework.put": _plan_homework_put,
    "homework.delete": _plan_homework_delete,
    "difficulties": _plan_difficulties,
    "position": _plan_position,
    "active": _plan_active,
}
