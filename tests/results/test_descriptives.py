"""Descriptives of the Results page (pure) against direct computation on generated datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rater.export.tables import slug
from rater.instruments import parse_instrument
from rater.reliability import stats
from rater.results import descriptives

INSTRUMENTS = [
    parse_instrument(path.read_bytes(), str(path))
    for path in sorted((Path(__file__).parents[2] / "instruments").glob("*.toml"))
]
GHES = next(i for i in INSTRUMENTS if i.code == "GHES")


def _dataset(seed: int) -> pd.DataFrame:
    """A sessions table: patients x sessions 1-9, items 0-4 (some missing, some pair means),
    scores, PHQ-9, homework counts and difficulties."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(14):
        for t in range(1, 10):
            row = {"patient": f"P{p:02d}", "session_number": t, "phase": "I" if t < 5 else "II"}
            rated = rng.random() < 0.8
            row["n_raters"] = int(rated) + int(rated and rng.random() < 0.4)
            level = rng.normal(2, 0.8)
            for inst in INSTRUMENTS:
                for code in inst.numeric_item_codes:
                    value = np.clip(np.round(level + rng.normal(0, 0.7)), 0, 4)
                    row[code] = value if rated else np.nan
                    if rated and row["n_raters"] == 2:
                        row[code] = (value + np.clip(value + rng.integers(-1, 2), 0, 4)) / 2
            row["phq9"] = int(rng.integers(0, 28)) if rng.random() < 0.9 else pd.NA
            for t_ in GHES.homework_types:
                row[f"hw_assigned_{slug(t_)}"] = int(rng.poisson(0.5))
                row[f"hw_reported_{slug(t_)}"] = float(rng.poisson(0.4)) if rated else np.nan
            row["hw_reported_total"] = sum(
                row[f"hw_reported_{slug(t_)}"] for t_ in GHES.homework_types
            )
            row["hw_completed"] = (
                float(rng.binomial(int(row["hw_reported_total"]), 0.6)) if rated else np.nan
            )
            for d in GHES.difficulty_types:
                row[f"difficulty_{slug(d)}"] = int(rng.random() < 0.3) if rated else pd.NA
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["phq9"] = frame["phq9"].astype("Int64")
    for inst in INSTRUMENTS:
        scores = inst.scale_scores(frame[inst.item_codes])
        for rule in inst.scores:
            frame[rule.code] = scores[rule.code]
    return frame


@pytest.mark.parametrize("seed", range(5))
def test_describe_equals_pandas(seed):
    frame = _dataset(seed)
    wanted = descriptives.variables(INSTRUMENTS)
    table = descriptives.describe(frame, wanted)
    for by in ("session_number", "phase"):
        expected = frame.groupby(by)[[v.code for v in wanted]].agg(["count", "mean", "std"])
        for (group, code), row in (
            table[table["by"] == by].set_index(["group", "measure"]).iterrows()
        ):
            assert row["n"] == expected.loc[group, (code, "count")]
            if row["n"]:
                assert row["mean"] == pytest.approx(expected.loc[group, (code, "mean")])
            if row["n"] > 1:
                assert row["sd"] == pytest.approx(expected.loc[group, (code, "std")])
    overall = table[table["by"] == "overall"].set_index("measure")
    for v in wanted:
        values = pd.to_numeric(frame[v.code]).dropna().to_numpy(float)
        assert overall.loc[v.code, "n"] == len(values)
        if not len(values):  # StHAR_total: a score across sessions, none in this dataset
            assert np.isnan(overall.loc[v.code, "mean"])
            continue
        assert overall.loc[v.code, "mean"] == pytest.approx(values.mean())
        assert overall.loc[v.code, "sd"] == pytest.approx(values.std(ddof=1))
        assert overall.loc[v.code, "max"] == values.max()


def test_variables_are_items_scores_and_phq9_in_file_order():
    codes = [v.code for v in descriptives.variables(INSTRUMENTS)]
    assert codes[:8] == [*(f"GHES_{i}" for i in range(1, 8)), "GHES_score"]
    assert codes[-4:] == ["StH_A", "StH_R", "StHAR_total", "phq9"]


@pytest.mark.parametrize("seed", range(3))
def test_frequencies_and_completion_equal_direct_counts(seed):
    frame = _dataset(seed)
    table = descriptives.type_frequencies(frame, GHES.homework_types, GHES.difficulty_types)
    assigned = {t: frame[f"hw_assigned_{slug(t)}"].sum() for t in GHES.homework_types}
    for row in table[table["kind"] == "homework assigned"].itertuples():
        assert row.count == assigned[row.type]
        assert row.sessions == (frame[f"hw_assigned_{slug(row.type)}"] > 0).sum()
        assert row.share == pytest.approx(assigned[row.type] / sum(assigned.values()))
    rated = (frame["n_raters"] > 0).sum()
    for row in table[table["kind"] == "difficulty"].itertuples():
        ticked = (frame[f"difficulty_{slug(row.type)}"].fillna(0) == 1).sum()
        assert row.sessions == ticked and row.share == pytest.approx(ticked / rated)
    done = descriptives.completion(frame)
    assert done["share"] == pytest.approx(
        frame["hw_completed"].sum() / frame["hw_reported_total"].sum()
    )


@pytest.mark.parametrize("seed", range(3))
def test_omega_per_session_number_uses_keyed_complete_sessions(seed):
    frame = _dataset(seed)
    table = descriptives.omega_by_session(frame, INSTRUMENTS)
    assert set(table["measure"]) == {"GHES_score", "StH_A", "StH_R"}  # no 2-session score
    ghes = table[table["measure"] == "GHES_score"].set_index("group")
    items = frame[GHES.item_codes].copy()
    items["GHES_5"] = 4 - items["GHES_5"]  # reverse-keyed, as the score uses it
    for number in range(1, 10):
        rows = items[frame["session_number"] == number].dropna()
        row = ghes.loc[str(number)]
        assert row["n"] == len(rows)
        if len(rows) >= 8:  # 7 items: more sessions than items
            assert row["omega"] == pytest.approx(stats.mcdonald_omega(rows))
            assert row["note"] == ""
    assert ghes.loc["overall", "omega"] == pytest.approx(stats.mcdonald_omega(items.dropna()))


def test_omega_of_too_few_sessions_is_not_a_number_and_says_why():
    frame = _dataset(0)
    few = frame[frame["patient"].isin(["P00", "P01", "P02"])]
    table = descriptives.omega_by_session(few, INSTRUMENTS)
    per_session = table[table["group"] != "overall"]
    assert per_session["omega"].isna().all()
    notes = per_session.set_index("measure")["note"]
    assert notes["GHES_score"].str.startswith("fewer than 8 sessions").all()  # 7 items
    assert notes["StH_R"].str.startswith("fewer than 5 sessions").all()
