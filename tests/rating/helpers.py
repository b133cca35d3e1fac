"""Shared builders for the rating tests: a small study with the four kinds of visitor."""

from __future__ import annotations

from dataclasses import dataclass

from rater.extensions import db
from rater.rating import service
from rater.rating.models import Assignment, Rating
from rater.study.instrument_store import current_versions, instrument_of

VISITORS = ("anonymous", "rater", "other", "coordinator")
USERNAMES = {"rater": "r1", "other": "r2", "coordinator": "coord"}


@dataclass
class Study:
    assignment: Assignment
    other_assignment: Assignment
    previous_session_id: int

    @property
    def id(self) -> int:
        return self.assignment.id


def build_study(factory) -> Study:
    """r1 rates P01-S02 (its previous session P01-S01 exists); r2 rates another session."""
    factory.user("coord", "coordinator")
    r1 = factory.user("r1")
    r2 = factory.user("r2")
    previous = factory.session("P01-S01", number=1, phq9=17)
    current = factory.session("P01-S02", number=2, phq9=23)
    elsewhere = factory.session("P02-S01", patient="P02", number=1)
    assignment = factory.assignment(current, r1)
    other = factory.assignment(elsewhere, r2)
    return Study(assignment, other, previous.id)


def started(assignment: Assignment) -> Rating:
    rating = service.start_rating(assignment)
    db.session.commit()
    return rating


def all_item_codes() -> list[str]:
    return [c for v in current_versions().values() for c in instrument_of(v).item_codes]


def login_as(auth, visitor: str) -> None:
    if visitor != "anonymous":
        response = auth.login(USERNAMES[visitor])
        assert response.status_code == 302, visitor
