"""A study whose instruments folder holds the shipped examples (a 0-6 competence scale and a
coding sheet with an ordinal 1-5 item allowing N/A, a nominal, a count and a text item)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "instruments" / "examples"


@pytest.fixture
def instruments_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "instruments"
    folder.mkdir()
    for name in ("competence.toml", "homework_sheet.toml"):
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


@pytest.fixture
def app_config(app_config, instruments_dir: Path):
    app_config.RATER_INSTRUMENTS_DIR = str(instruments_dir)
    return app_config
