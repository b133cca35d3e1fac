"""The runtime dependencies in pyproject.toml are exactly what rater/ imports.

A package rater/ imports but does not declare works only while another dependency happens to
pull it in; a declared package rater/ never imports is installed on every server for nothing
(the libraries the tests check the statistics against belong in the ``test`` extra).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_normalized(re.match(r"[A-Za-z0-9._-]+", r)[0]) for r in project["dependencies"]}


def _imported_modules() -> dict[str, str]:
    """Top-level module imported by rater/ -> a file that imports it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "rater").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], str(path.relative_to(ROOT)))
    return {
        module: path
        for module, path in found.items()
        if module not in sys.stdlib_module_names and module != "rater"
    }


@cache
def _installed() -> Mapping[str, list[str]]:
    """Top-level module -> distributions; reading every installed package's metadata takes
    seconds, so it is read once."""
    return packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_normalized(d) for d in _installed().get(module, [])}


def test_every_import_of_rater_is_a_declared_runtime_dependency():
    declared = _declared()
    missing = {
        module: path
        for module, path in _imported_modules().items()
        if not _distributions(module) & declared
    }
    assert missing == {}, f"imported by rater/ but not in [project] dependencies: {missing}"


# Used by name, not by import: SQLAlchemy loads the PostgreSQL driver from the database URL
# (postgresql+psycopg://...).
LOADED_BY_NAME = {"psycopg"}


def test_every_runtime_dependency_is_imported_by_rater():
    imported = set().union(*(_distributions(m) for m in _imported_modules()))
    assert _declared() - imported - LOADED_BY_NAME == set()


def test_the_reference_implementations_are_test_dependencies_only():
    declared = _declared()
    assert {"pingouin", "krippendorff"}.isdisjoint(declared)
