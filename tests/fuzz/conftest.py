"""The fuzz tests share the access table and world of the security tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


@pytest.fixture
def table():
    name = "rater_route_table"  # the same module object the security tests use
    if name not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "security" / "route_table.py"
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.fixture
def world(table, factory):
    """Built once per test; hypothesis examples of that test share it."""
    return table.build_world(factory)
