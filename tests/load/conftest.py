"""Fixtures of the load tests: the simulation module and a study of 50 raters."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

N_RATERS = 50


def load_simulation() -> ModuleType:
    """``simulation.py`` as one shared module (the test folders are not packages)."""
    name = "rater_load_simulation"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("simulation.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def sim() -> ModuleType:
    return load_simulation()


@pytest.fixture
def study(app, sim):
    """50 raters with a started rating each, committed before any server starts."""
    return sim.build_study(N_RATERS), sim.item_codes()
