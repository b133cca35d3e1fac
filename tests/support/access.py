"""The access table and its world of users and objects, shared by the security and fuzz tests
(a plugin loaded by tests/conftest.py)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.security import route_table


@pytest.fixture
def table() -> ModuleType:
    return route_table


@pytest.fixture
def world(table, factory):
    """Built once per test; hypothesis examples of that test share it."""
    return table.build_world(factory)
