"""Fixtures of the load and fault tests (a plugin loaded by tests/conftest.py)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.load import simulation

N_RATERS = 50


@pytest.fixture
def sim() -> ModuleType:
    """The load simulation (shared with bench/bench_load.py)."""
    return simulation


@pytest.fixture
def study(app, sim):  # noqa: ARG001 (a fixture requested for its setup)
    """50 raters with a started rating each, committed before any server starts."""
    return sim.build_study(N_RATERS), sim.item_codes()
