"""The coordinator's audit log browser: filter events by user, action, entity and date.

One query per page: events joined to their user, newest first, one row more than a page so
the page knows whether there is a next one without counting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template, request, url_for
from sqlalchemy import select

from rater.audit import AuditEvent
from rater.auth.decorators import coordinator_required
from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment, HomeworkEntry, ItemScore, Rating
from rater.study.models import TherapySession

bp = Blueprint("audit_views", __name__, url_prefix="/audit")

PER_PAGE = 50
MAX_FILTER_LENGTH = 80


@dataclass
class EventFilter:
    """Filters from the query string; ``problems`` lists what could not be understood."""

    user: str = ""
    action: str = ""
    entity: str = ""
    entity_id: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Any) -> EventFilter:
        def text(name: str) -> str:
            return (args.get(name) or "").strip()[:MAX_FILTER_LENGTH]

        f = cls(
            user=text("user"),
            action=text("action"),
            entity=text("entity"),
            entity_id=text("entity_id"),
        )
        f.since = f._date(args.get("since"), "From")
        f.until = f._date(args.get("until"), "To")
        page = args.get("page", "1")
        f.page = int(page) if page.isdecimal() and 0 < int(page) < 1_000_000 else 1
        return f

    def _date(self, text: str | None, label: str) -> date | None:
        if not text:
            return None
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            self.problems.append(f"{label}: '{text[:20]}' is not a date as YYYY-MM-DD.")
            return None

    def query_args(self, page: int) -> dict[str, Any]:
        """The filters as URL parameters, for the pagination links."""
        values = {
            "user": self.user,
            "action": self.action,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {**{k: v for k, v in values.items() if v}, "page": page}


@dataclass(frozen=True)
class EventRow:
    event: AuditEvent
    username: str | None

    @property
    def before(self) -> str:
        return _compact(self.event.before)

    @property
    def after(self) -> str:
        return _compact(self.event.after)


def _compact(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def find_events(f: EventFilter, per_page: int = PER_PAGE) -> tuple[list[EventRow], bool]:
    """One page of events matching ``f`` (newest first) and whether another page follows.

    ``action`` matches exactly or as a prefix ending in a dot (``user.`` finds every user
    action); ``until`` includes the whole day.
    """
    query = select(AuditEvent, User.username).outerjoin(User, User.id == AuditEvent.user_id)
    if f.user:
        query = query.where(User.username == f.user)
    if f.action:
        action = AuditEvent.action
        query = query.where(
            action.startswith(f.action, autoescape=True)
            if f.action.endswith(".")
            else action == f.action
        )
    if f.entity:
        query = query.where(AuditEvent.entity_type == f.entity)
    if f.entity_id:
        query = query.where(AuditEvent.entity_id == f.entity_id)
    if f.since:
        query = query.where(AuditEvent.at >= datetime.combine(f.since, time.min))
    if f.until and f.until < date.max:
        query = query.where(AuditEvent.at < datetime.combine(f.until + timedelta(days=1), time.min))
    query = (
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset((f.page - 1) * per_page)
        .limit(per_page + 1)
    )
    rows = [EventRow(event, username) for event, username in db.session.execute(query)]
    return rows[:per_page], len(rows) > per_page


@dataclass(frozen=True)
class EntityLabel:
    """What an event's entity is, in the study's words, and the page that shows it."""

    text: str
    url: str | None = None


def _ids(rows: list[EventRow], entity_type: str) -> list[int]:
    return sorted(
        {
            int(entity_id)
            for r in rows
            if r.event.entity_type == entity_type
            and (entity_id := r.event.entity_id) is not None
            and entity_id.isdigit()
        }
    )


def _assignment_labels(key, joins: list, ids: list[int]) -> dict[int, EntityLabel]:
    """Labels "session code · rater" linking the rating page, of entities whose ``key`` column
    reaches an assignment through ``joins`` ((model, on clause) pairs)."""
    if not ids:
        return {}
    query = select(key, Assignment.id, TherapySession.code, User.username).select_from(key.class_)
    for model, on in joins:
        query = query.join(model, on)
    query = (
        query.join(TherapySession, Assignment.session_id == TherapySession.id)
        .join(User, Assignment.rater_id == User.id)
        .where(key.in_(ids))
    )
    return {
        entity_id: EntityLabel(f"{code} · {rater}", url_for("rating.rate", assignment_id=a_id))
        for entity_id, a_id, code, rater in db.session.execute(query)
    }


def entity_labels(rows: list[EventRow]) -> dict[tuple[str, str], EntityLabel]:
    """Labels of the entities of a page of events: one query per kind of entity, not per row.

    Users by name; assignments, ratings and item scores by session code and rater (linking the
    rating page, read-only for coordinators); homework entries and sessions by session code;
    consensus scores link the session's consensus page. An entity deleted since keeps its id.
    """
    labels: dict[tuple[str, str], EntityLabel] = {}

    def put(entity_type: str, found: dict[int, EntityLabel]) -> None:
        labels.update({(entity_type, str(k)): v for k, v in found.items()})

    user_ids = _ids(rows, "user")
    if user_ids:
        users = db.session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
        put(
            "user",
            {
                i: EntityLabel(name, url_for("accounts.users", _anchor=f"user-{name}"))
                for i, name in users
            },
        )
    to_assignment = (Assignment, Rating.assignment_id == Assignment.id)
    put("assignment", _assignment_labels(Assignment.id, [], _ids(rows, "assignment")))
    put("rating", _assignment_labels(Rating.id, [to_assignment], _ids(rows, "rating")))
    to_rating = (Rating, ItemScore.rating_id == Rating.id)
    put(
        "item_score",
        _assignment_labels(ItemScore.id, [to_rating, to_assignment], _ids(rows, "item_score")),
    )
    put("homework_entry", _homework_labels(_ids(rows, "homework_entry")))
    put("session", _session_labels(_ids(rows, "session")))
    for row in rows:
        if row.event.entity_type == "consensus_score" and row.event.entity_id:
            code, _, item = row.event.entity_id.rpartition(":")
            url = url_for("reliability.consensus_page", session_code=code)
            labels[("consensus_score", row.event.entity_id)] = EntityLabel(f"{code} · {item}", url)
    return labels


def _homework_labels(ids: list[int]) -> dict[int, EntityLabel]:
    if not ids:
        return {}
    found = db.session.execute(
        select(HomeworkEntry.id, TherapySession.id, TherapySession.code)
        .join(TherapySession, HomeworkEntry.session_id == TherapySession.id)
        .where(HomeworkEntry.id.in_(ids))
    )
    return {
        i: EntityLabel(code, url_for("rating.homework_session", session_id=session_id))
        for i, session_id, code in found
    }


def _session_labels(ids: list[int]) -> dict[int, EntityLabel]:
    if not ids:
        return {}
    found = db.session.execute(
        select(TherapySession.id, TherapySession.code).where(TherapySession.id.in_(ids))
    )
    return {i: EntityLabel(code) for i, code in found}


def action_choices() -> list[tuple[str, str]]:
    """(value, label) of the action filter: every action recorded so far, each group of
    actions (``user.`` = every user action) first."""
    actions = list(db.session.scalars(select(AuditEvent.action).distinct()))
    groups = sorted({a.split(".")[0] + "." for a in actions if "." in a})
    choices = [(g, f"{g[:-1]}: every action") for g in groups]
    choices += [(a, a) for a in sorted(actions)]
    return sorted(choices, key=lambda c: (c[0].rstrip("."), not c[0].endswith(".")))


@bp.route("/")
@coordinator_required
def events():
    f = EventFilter.from_args(request.args)
    rows, has_next = ([], False) if f.problems else find_events(f)
    status = 400 if f.problems else 200
    return render_template(
        "audit/events.html",
        f=f,
        rows=rows,
        has_next=has_next,
        labels=entity_labels(rows),
        actions=action_choices(),
        usernames=list(db.session.scalars(select(User.username).order_by(User.username))),
    ), status
