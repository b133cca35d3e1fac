"""Time helpers: the database stores naive UTC datetimes."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now in UTC, without tzinfo (portable across SQLite and PostgreSQL columns)."""
    return datetime.now(UTC).replace(tzinfo=None)
