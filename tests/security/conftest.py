"""Fixtures of the security tests: the access table and a world of users and objects."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def load_route_table() -> ModuleType:
    """``route_table.py`` as one shared module (the test folders are not packages)."""
    name = "rater_route_table"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("route_table.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def table() -> ModuleType:
    return load_route_table()


@pytest.fixture
def world(table, factory):
    return table.build_world(factory)
