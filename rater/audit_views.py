"""The coordinator's audit log browser: filter events by user, action, entity and date.

One query per page: events joined to their user, newest first, one row more than a page so
the page knows whether there is a next one without counting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from rater.audit import AuditEvent
from rater.auth.decorators import coordinator_required
from rater.auth.models import User
from rater.extensions import db

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
        f = cls(
            **{
                name: (args.get(name) or "").strip()[:MAX_FILTER_LENGTH]
                for name in ("user", "action", "entity", "entity_id")
            }
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


@bp.route("/")
@coordinator_required
def events():
    f = EventFilter.from_args(request.args)
    rows, has_next = ([], False) if f.problems else find_events(f)
    status = 400 if f.problems else 200
    return render_template("audit/events.html", f=f, rows=rows, has_next=has_next), status
