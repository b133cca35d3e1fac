"""Rating services (flush, never commit)."""

from __future__ import annotations

from sqlalchemy import select

from rater.auth.models import User
from rater.extensions import db
from rater.rating.models import Assignment
from rater.study.models import TherapySession


def queue_for(user: User) -> list[Assignment]:
    """The rater's open assignments (held and flagged ones are not shown)."""
    return list(
        db.session.scalars(
            select(Assignment)
            .join(TherapySession, Assignment.session_id == TherapySession.id)
            .where(
                Assignment.rater_id == user.id,
                Assignment.status.in_(("pending", "in_progress", "submitted")),
            )
            .order_by(Assignment.purpose != "calibration", TherapySession.code)
        )
    )
