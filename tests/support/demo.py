"""The demo study as fixtures, small and as shipped (a plugin loaded by tests/conftest.py).

Building it (catalogue import, allocation, simulated ratings and coding) costs ~0.3 s of CPU
for the small study some forty tests start from, and over 1 s for the shipped one. Each is built
once per run and database, by ``build_demo`` itself, and each later test gets a copy of the rows
it wrote: the same rows, ids included, as a build into the emptied tables would write (the
tests that check the build itself, and ``rater demo``, are in tests/demo/).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import JSON, Table, Text, bindparam, cast, func, insert, select, text

from rater.demo import DemoSizes, build_demo
from rater.extensions import db

SMALL_DEMO = DemoSizes(patients=6, rated_share=1.0)
_copies: dict[tuple[Any, ...], dict[str, list[dict[str, Any]]]] = {}


@pytest.fixture
def demo(app: Flask) -> None:
    """The demo study with 6 patients and every main session rated, committed."""
    _demo_study(app, SMALL_DEMO)


@pytest.fixture
def shipped_demo(app: Flask) -> None:
    """The demo study as ``rater demo`` builds it (the default sizes), committed."""
    _demo_study(app, DemoSizes())


def _demo_study(app: Flask, sizes: DemoSizes) -> None:
    """Build the demo of these sizes, or copy in the rows its first build wrote."""
    settings = ("SQLALCHEMY_DATABASE_URI", "RATER_INSTRUMENTS_DIR", "RATER_AUDIO_DIR")
    key = (sizes, *(str(app.config[name]) for name in settings))
    rows = _copies.get(key)
    if rows is None:
        build_demo(sizes)
        db.session.commit()
        _copies[key] = _rows_of_every_table()
    else:
        _insert_rows(rows)
        db.session.commit()


def _is_json(column) -> bool:
    return isinstance(column.type, JSON)


def _rows_of_every_table() -> dict[str, list[dict[str, Any]]]:
    """Every table's rows as their column values; JSON as its stored text (JSON null and SQL
    NULL stay apart)."""
    rows = {}
    for table in db.metadata.sorted_tables:
        columns = [cast(c, Text).label(c.key) if _is_json(c) else c for c in table.columns]
        found = db.session.execute(select(*columns).order_by(*table.primary_key.columns))
        rows[table.name] = [{f"v_{k}": v for k, v in row._mapping.items()} for row in found]
    return rows


def _insert_rows(rows: dict[str, list[dict[str, Any]]]) -> None:
    postgres = db.engine.dialect.name == "postgresql"
    for table in db.metadata.sorted_tables:
        if rows[table.name]:
            db.session.execute(_insert_statement(table, postgres), rows[table.name])
            if postgres and "id" in table.c:  # the next id after the copied ones
                db.session.execute(
                    text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :last)"),
                    {"table": table.name, "last": db.session.scalar(select(func.max(table.c.id)))},
                )


def _insert_statement(table: Table, postgres: bool):
    """INSERT of every column; JSON text is stored as it was read (cast back on PostgreSQL)."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if _is_json(column):
            raw = bindparam(f"v_{column.key}", type_=Text())
            values[column.key] = cast(raw, column.type) if postgres else raw
        else:
            values[column.key] = bindparam(f"v_{column.key}", type_=column.type)
    return insert(table).values(values)
