"""The allocation's study settings and who takes part in allocation (flush only, never commit).

Settings live in ``study_settings`` (key -> JSON value); every change is audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rater import audit
from rater.auth.models import User
from rater.extensions import db
from rater.states import Role
from rater.study.models import StudySetting

SETTING_FRACTION = "allocation.double_fraction"
SETTING_SEED = "allocation.seed"
SETTING_EXCLUDED_RATERS = "allocation.excluded_raters"
DEFAULT_FRACTION = 0.4
DEFAULT_SEED = 0


def get_setting(key: str, default: Any = None) -> Any:
    row = db.session.get(StudySetting, key)
    return default if row is None else row.value


def put_setting(key: str, value: Any) -> None:
    """Set a study setting; audited when the value changes."""
    row = db.session.get(StudySetting, key)
    before = None if row is None else row.value
    if row is not None and before == value:
        return
    if row is None:
        db.session.add(StudySetting(key=key, value=value))
    else:
        row.value = value
    audit.record("setting.change", "study_setting", key, before=before, after=value)


def double_fraction_or_stored(double_fraction: float | None = None) -> float:
    """The given double fraction, else the stored one, else the default."""
    if double_fraction is None:
        return float(get_setting(SETTING_FRACTION, DEFAULT_FRACTION))
    return float(double_fraction)


def seed_or_stored(seed: int | None = None) -> int:
    """The given seed, else the stored one, else the default."""
    return int(get_setting(SETTING_SEED, DEFAULT_SEED) if seed is None else seed)


def excluded_raters() -> list[str]:
    """Raters the coordinator removed from allocation (their account may stay active)."""
    return list(get_setting(SETTING_EXCLUDED_RATERS, []))


def allocation_raters() -> list[str]:
    """Active raters that take part in allocation, by username."""
    names = db.session.scalars(
        select(User.username)
        .where(User.role == Role.RATER, User.active.is_(True))
        .order_by(User.username)
    )
    out = set(excluded_raters())
    return [n for n in names if n not in out]


def rater_names() -> list[str]:
    """Every rater account, active or not."""
    return list(
        db.session.scalars(
            select(User.username).where(User.role == Role.RATER).order_by(User.username)
        )
    )
