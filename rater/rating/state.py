"""The rating page's initial state as JSON for its scripts (scores, notes, homework log, urls)."""

from __future__ import annotations

from typing import Any

from flask import url_for

from rater.instruments import Instrument
from rater.rating.models import HomeworkEntry, Rating


def page_answers(rating: Rating, instruments: list[Instrument]) -> dict[str, Any]:
    """The rating's answers by item code as the page sends them (``Item.protocol_value``)."""
    items = {item.code: item for inst in instruments for item in inst.items}
    return {
        s.item_code: items[s.item_code].protocol_value(s.answer)
        for s in rating.scores
        if s.item_code in items
    }


def page_state(
    rating: Rating, instruments: list[Instrument], reported: list[HomeworkEntry]
) -> dict[str, Any]:
    assignment = rating.assignment
    return {
        "rating_id": rating.id,
        "assignment_id": assignment.id,
        "user_id": assignment.rater_id,
        "version": rating.version,
        "locked": rating.is_locked or rating.cannot_rate,
        "position": rating.audio_position,
        "active_seconds": rating.active_seconds,
        "duration": assignment.session.duration_seconds,
        "scores": page_answers(rating, instruments),
        "items": [
            {
                "code": i.code,
                "label": i.label,
                "required": i.required,
                "instrument": inst.code,
                "kind": i.kind.value,
                "multiple": i.multiple,
            }
            for inst in instruments
            for i in inst.items
        ],
        "notes": [
            {"client_id": n.client_id, "seconds": round(n.audio_seconds, 2), "text": n.text}
            for n in rating.notes
            if n.client_id
        ],
        "homework": [
            {
                "client_id": e.client_id,
                "homework_type": e.homework_type,
                "completion": e.completion,
                "description": e.description,
            }
            for e in reported
            if e.client_id
        ],
        "homework_types": _union(i.homework_types for i in instruments),
        "difficulty_types": _union(i.difficulty_types for i in instruments),
        "difficulties": sorted(d.difficulty_type for d in rating.difficulties),
        "urls": {
            "autosave": url_for("rating.autosave", assignment_id=assignment.id),
            "audio": url_for("rating.audio", assignment_id=assignment.id),
            "queue": url_for("rating.queue"),
        },
    }


def _union(lists: Any) -> list[str]:
    out: list[str] = []
    for values in lists:
        out.extend(v for v in values if v not in out)
    return out
