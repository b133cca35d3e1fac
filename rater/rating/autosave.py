"""Autosave: apply a batch of changes from the rating page to a draft rating (flush only).

Protocol (documented for API users in docs/rating.md). The client posts::

    {"base_version": 7, "changes": [{"op": "score", "item": "GHES_1", "value": 3, "base": 2}, ...]}

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
compare-and-set reads see committed data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from rater import audit
from rater.extensions import db
from rater.instruments import SCORE_MAX, SCORE_MIN, Instrument
from rater.rating.models import (
    COMPLETIONS,
    HomeworkEntry,
    ItemScore,
    Note,
    Rating,
    RatingDifficulty,
)
from rater.rating.service import pinned_instruments
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


@dataclass
class _Context:
    rating: Rating
    instruments: list[Instrument]
    version_matches: bool
    scores: dict[str, ItemScore]
    notes: dict[str, Note]
    homework: dict[str, HomeworkEntry]
    difficulties: set[str]
    applied: int = 0


def apply_autosave(rating: Rating, payload: Any) -> dict[str, Any]:
    """Apply the payload's changes atomically or raise AutosaveRefused (nothing applied)."""
    base_version, changes = _parse_envelope(payload)
    new_version = _lock_and_bump(rating)
    ctx = _load(rating, base_version == new_version - 1)
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
    for step in plan:
        step()
        ctx.applied += 1
    if ctx.applied == 0:
        rating.version = new_version - 1  # nothing changed: the version stays as it was
    db.session.flush()
    return {
        "ok": True,
        "version": rating.version,
        "applied": ctx.applied,
        "others_changed": base_version != new_version - 1,
        "saved_at": utcnow().isoformat() + "Z",
    }


class _Invalid(ValueError):
    pass


class _Conflict(Exception):
    pass


def _parse_envelope(payload: Any) -> tuple[int, list[dict[str, Any]]]:
    if not isinstance(payload, dict):
        raise AutosaveRefused(400, "Send a JSON object with 'base_version' and 'changes'.")
    base_version = payload.get("base_version")
    changes = payload.get("changes")
    if not isinstance(base_version, int) or isinstance(base_version, bool):
        raise AutosaveRefused(400, "'base_version' must be the rating version last seen.")
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise AutosaveRefused(400, "'changes' must be a list of objects.")
    if len(changes) > MAX_CHANGES:
        raise AutosaveRefused(400, f"At most {MAX_CHANGES} changes per save.")
    return base_version, changes


def _lock_and_bump(rating: Rating) -> int:
    new_version = db.session.execute(
        update(Rating)
        .where(Rating.id == rating.id, Rating.status == "draft", Rating.cannot_rate.is_(False))
        .values(version=Rating.version + 1)
        .returning(Rating.version),
        execution_options={"synchronize_session": False},
    ).scalar()
    rating_id = rating.id
    db.session.expire(rating)
    if new_version is None:
        current = db.session.get(Rating, rating_id, populate_existing=True)
        if current is None:
            raise AutosaveRefused(404, "This rating does not exist.")
        message = LOCKED_MESSAGE if current.status == "submitted" else FLAGGED_MESSAGE
        raise AutosaveRefused(423, message, version=current.version)
    return int(new_version)


def _load(rating: Rating, version_matches: bool) -> _Context:
    entries = db.session.scalars(select(HomeworkEntry).where(HomeworkEntry.rating_id == rating.id))
    return _Context(
        rating=rating,
        instruments=pinned_instruments(rating),
        version_matches=version_matches,
        scores={s.item_code: s for s in rating.scores},
        notes={n.client_id: n for n in rating.notes if n.client_id},
        homework={e.client_id: e for e in entries if e.client_id},
        difficulties={d.difficulty_type for d in rating.difficulties},
    )


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
    owner = next((i for i in ctx.instruments if code in i.item_codes), None)
    if owner is None:
        raise _Invalid(f"unknown item {code!r}")
    value = change.get("value")
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or not SCORE_MIN <= value <= SCORE_MAX
    ):
        raise _Invalid(f"score of {code} must be an integer {SCORE_MIN}-{SCORE_MAX} or null")
    existing = ctx.scores.get(code)
    current = existing.score if existing is not None else None
    if "base" in change and change["base"] is not None and not isinstance(change["base"], int):
        raise _Invalid(f"base of {code} must be a score or null")
    if not _check(ctx, f"score:{code}", current, value, change):
        return None
    version = next(v for v in ctx.rating.instrument_versions if v.code == owner.code)
    return lambda: _write_score(ctx, code, version.id, current, value)


def _write_score(
    ctx: _Context, code: str, version_id: int, old: int | None, new: int | None
) -> None:
    score = ctx.scores.get(code)
    if new is None:
        assert score is not None
        ctx.rating.scores.remove(score)
        del ctx.scores[code]
    elif score is None:
        score = ItemScore(
            rating=ctx.rating, instrument_version_id=version_id, item_code=code, score=new
        )
        db.session.add(score)
        ctx.scores[code] = score
    else:
        score.score = new
    db.session.flush()
    entity = score.id if score is not None else None
    audit.record("score.change", "item_score", entity, before={code: old}, after={code: new})


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
                rating=ctx.rating, client_id=cid, audio_seconds=new["seconds"], text=new["text"]
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
        ctx.rating.notes.remove(ctx.notes.pop(cid))

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
    types = {t for i in ctx.instruments for t in i.homework_types}
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
                session_id=ctx.rating.assignment.session_id,
                rating_id=ctx.rating.id,
                entered_by_id=ctx.rating.assignment.rater_id,
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
        db.session.delete(ctx.homework.pop(cid))

    return write


# --- difficulties, position, active time ---------------------------------------------------


def _plan_difficulties(ctx: _Context, change: dict[str, Any]) -> Callable[[], None] | None:
    values = change.get("values")
    allowed = {t for i in ctx.instruments for t in i.difficulty_types}
    if not isinstance(values, list) or not all(v in allowed for v in values):
        raise _Invalid("'values' must be a list of difficulty types of the instruments")
    new = sorted(set(values))
    base = change.get("base", MISSING)
    normal = {**change, "base": sorted(set(base))} if isinstance(base, list) else change
    if not _check(ctx, "difficulties", sorted(ctx.difficulties), new, normal):
        return None

    def write() -> None:
        rating = ctx.rating
        for row in [d for d in rating.difficulties if d.difficulty_type not in new]:
            rating.difficulties.remove(row)
        for value in sorted(set(new) - ctx.difficulties):
            rating.difficulties.append(RatingDifficulty(difficulty_type=value))
        ctx.difficulties = set(new)

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
