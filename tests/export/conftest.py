"""A small hand-built study for the export tests, and a helper that reads CSV with R."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from rater.extensions import db

UMLAUTS = "Übung für Gefühle – Spaziergang"
SUBMITTED = datetime(2024, 3, 1, 9, 30, 15, 123456)

# session code, patient, number, status, phq9
SESSIONS = [
    ("P01-S01", "P01", 1, "eligible", 21),
    ("P01-S02", "P01", 2, "eligible", 19),
    ("P01-S04", "P01", 4, "eligible", None),  # session 3 is missing
    ("P02-S01", "P02", 1, "eligible", 12),
    ("P02-S02", "P02", 2, "eligible", 10),
    ("P02-S03", "P02", 3, "excluded", 9),
    ("P03-S01", "P03", 1, "eligible", 15),  # calibration session
]
# session code, rater, purpose, status
RATINGS = [
    ("P01-S01", "ra", "main", "submitted"),
    ("P01-S01", "rb", "double", "submitted"),
    ("P01-S02", "ra", "main", "submitted"),
    ("P01-S04", "rb", "main", "submitted"),
    ("P02-S01", "rb", "main", "submitted"),
    ("P02-S02", "ra", "main", "draft"),
    ("P03-S01", "ra", "calibration", "submitted"),
    ("P03-S01", "rb", "calibration", "submitted"),
]


# Codes a spreadsheet would run as formulas (written with a leading quote), for studies whose
# exports must still import back: {name in SESSIONS / RATINGS: name used}.
FORMULA_NAMES = {
    "P01": "=P01",
    "P01-S01": "=P01-S01",
    "P01-S02": "-P01-S02",
    "P01-S04": "\uff1dP01-S04",  # full-width =
    "P02-S01": "@P02-S01",
    "P02-S02": "+P02-S02",
    "P03-S01": "'=P03-S01",  # already quoted: written with a second quote
}  # user names cannot start with these characters (rater.auth.service refuses them)


def score_for(session: str, rater: str, position: int) -> int:
    """A fixed, varied score per session, rater and item position."""
    return (sum(map(ord, session)) + 3 * (rater == "rb") + position) % 5


@dataclass
class Study:
    coordinator: object
    raters: dict
    sessions: dict
    ratings: dict
    versions: dict


def add_sessions(factory, names: Mapping[str, str]) -> dict:
    """The sessions of SESSIONS (codes renamed by ``names``), keyed by their SESSIONS code."""
    found = {}
    for code, patient, number, status, phq9 in SESSIONS:
        found[code] = factory.session(
            names.get(code, code), names.get(patient, patient), "T1", number, status, None, phq9
        )
    return found


def add_raters(factory, names: Mapping[str, str] | None = None) -> dict:
    names = names or {}
    return {name: factory.user(names.get(name, name), "rater") for name in ("ra", "rb")}


def build_study(
    factory, drafts_partial: bool = True, names: Mapping[str, str] | None = None
) -> Study:
    """The study of SESSIONS and RATINGS; ``names`` renames session, patient and rater codes."""
    from rater.rating.models import (
        Assignment,
        ConsensusScore,
        HomeworkEntry,
        ItemScore,
        Rating,
        RatingDifficulty,
    )
    from rater.study.instrument_store import instrument_of, sync_instruments

    versions = {v.code: v for v in sync_instruments()}
    coordinator = factory.user("coord", "coordinator")
    names = names or {}
    raters = add_raters(factory, names)
    sessions = add_sessions(factory, names)
    ratings = {}
    for code, name, purpose, status in RATINGS:
        assignment = Assignment(
            session_id=sessions[code].id,
            rater_id=raters[name].id,
            purpose=purpose,
            status="submitted" if status == "submitted" else "in_progress",
        )
        db.session.add(assignment)
        db.session.flush()
        rating = Rating(
            assignment_id=assignment.id,
            status=status,
            submitted_at=SUBMITTED if status == "submitted" else None,
        )
        rating.instrument_versions = list(versions.values())
        position = 0
        for _code, version in sorted(versions.items()):
            for item in instrument_of(version).items:
                position += 1
                if status == "draft" and drafts_partial and position % 2:
                    continue
                rating.scores.append(
                    ItemScore(
                        instrument_version_id=version.id,
                        item_code=item.code,
                        score=score_for(code, name, position),
                    )
                )
        db.session.add(rating)
        db.session.flush()
        ratings[(code, name)] = rating
    s1, s2 = ratings[("P01-S01", "ra")], ratings[("P01-S01", "rb")]
    entries = [
        (s1, "reported_completed", "behavioural", "yes", UMLAUTS),
        (s1, "reported_completed", "cognitive", "partly", '=HYPERLINK("x")'),
        (s2, "reported_completed", "behavioural", "yes", "Spaziergang"),
        (ratings[("P02-S02", "ra")], "reported_completed", "cognitive", "no", "draft entry"),
    ]
    for rating, kind, htype, completion, text in entries:
        db.session.add(
            HomeworkEntry(
                session_id=rating.assignment.session_id,
                rating_id=rating.id,
                entered_by_id=rating.assignment.rater_id,
                kind=kind,
                homework_type=htype,
                completion=completion,
                description=text,
            )
        )
    db.session.add(
        HomeworkEntry(
            session_id=sessions["P01-S01"].id,
            rating_id=None,
            entered_by_id=coordinator.id,
            kind="assigned_next",
            homework_type="self-monitoring",
            description="Stimmungstagebuch führen",
        )
    )
    db.session.add(RatingDifficulty(rating_id=s1.id, difficulty_type="lack of time"))
    db.session.add(RatingDifficulty(rating_id=s2.id, difficulty_type="negative events"))
    db.session.add(
        ConsensusScore(
            session_id=sessions["P01-S01"].id,
            instrument_version_id=versions["GHES"].id,
            item_code="GHES_1",
            score=4,
            decided_by_id=coordinator.id,
        )
    )
    db.session.commit()
    return Study(coordinator, raters, sessions, ratings, versions)


@pytest.fixture
def study(factory) -> Study:
    return build_study(factory)


CATALOGUE_COLUMNS = [
    "session_id",
    "patient",
    "therapist",
    "session_number",
    "status",
    "exclusion_reason",
    "phq9",
]


def catalogue_csv(names: Mapping[str, str]) -> str:
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(CATALOGUE_COLUMNS)
    for code, patient, number, status, phq9 in SESSIONS:
        reason = "test" if status == "excluded" else ""
        row = [names.get(code, code), names.get(patient, patient), "T1", number, status, reason]
        out.writerow([*row, phq9 or ""])
    return text.getvalue()


@pytest.fixture
def restart(factory):
    """``restart(runner, folder, names={})``: an empty study with the sessions imported and the
    raters added (codes renamed by ``names``, as in :func:`build_study`)."""

    def restart(runner, folder: Path, names: Mapping[str, str] | None = None) -> None:
        names = names or {}
        tables = list(reversed(db.metadata.sorted_tables))
        for table in tables:
            db.session.execute(table.delete())
        db.session.commit()
        path = folder / "catalogue.csv"
        path.write_text(catalogue_csv(names), encoding="utf-8")
        result = runner.invoke(args=["sessions", "import", str(path)])
        assert result.exit_code == 0, result.output
        add_raters(factory, names)

    return restart


# ---------------------------------------------------------------------------- R

R_SCRIPT = """
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], fileEncoding = args[3], stringsAsFactors = FALSE,
              na.strings = "", check.names = FALSE)
cat(paste(names(d), sapply(d, function(x) class(x)[1]), sep = "\\t"), sep = "\\n")
write.csv(d, args[2], row.names = FALSE, na = "", fileEncoding = "UTF-8")
"""


def read_with_r(path: Path, tmp_path: Path, bom: bool = False) -> tuple[dict, pd.DataFrame]:
    """R's read.csv of the file: the class of every column, and the data R read (via CSV)."""
    script = tmp_path / "read.R"
    script.write_text(R_SCRIPT, encoding="utf-8")
    back = tmp_path / f"{path.stem}.from-r.csv"
    encoding = "UTF-8-BOM" if bom else "UTF-8"
    done = subprocess.run(
        ["Rscript", "--vanilla", str(script), str(path), str(back), encoding],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    classes = dict(line.split("\t") for line in done.stdout.splitlines() if "\t" in line)
    return classes, pd.read_csv(back, keep_default_na=False, na_values=[""], dtype=str)


@pytest.fixture
def read_r(tmp_path: Path):
    """``read_r(path, bom=False)``: R's view of a CSV file (skips only when R is absent)."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    return lambda path, bom=False: read_with_r(path, tmp_path, bom)


@pytest.fixture
def umlauts() -> str:
    return UMLAUTS
