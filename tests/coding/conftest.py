"""Coding tests: the reference instruments plus the example homework coding sheet, and a cheap
password hash (these tests log in often and test nothing about passwords)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODING_SHEET = ROOT / "instruments" / "examples" / "homework_coding.toml"


@pytest.fixture
def app_config(app_config, tmp_path: Path):
    folder = tmp_path / "instruments"
    folder.mkdir()
    for path in [*(ROOT / "instruments").glob("*.toml"), CODING_SHEET]:
        shutil.copy(path, folder / path.name)
    app_config.RATER_INSTRUMENTS_DIR = str(folder)
    app_config.RATER_PEAKS_DIR = str(tmp_path / "peaks")
    return app_config
