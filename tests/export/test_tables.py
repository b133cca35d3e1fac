"""The pure export tables: resolution across raters, computed scores, the StHAR total."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rater.export import tables
from rater.instruments import load_instruments
from rater.rating.frame import RATINGS_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
INSTRUMENTS = [tables.VersionedInstrument(i, 1) for i in load_instruments(ROOT / "instruments")]
BY_CODE = {v.instrument.code: v.instrument for v in INSTRUMENTS}
STHAR = BY_CODE["StHAR"]
GHES = BY_CODE["GHES"]
A_ITEMS = STHAR.subscale_items()["StH-A"]
R_ITEMS = STHAR.subscale_items()["StH-R"]


def ratings_frame(scores: dict[tuple[str, str, str], dict[str, int]]) -> pd.DataFrame:
    """(session, rater, purpose) -> {item: score}; sessions are 'P-<patient>-<number>'."""
    rows = []
    for rating_id, ((session, rater, purpose), items) in enumerate(scores.items(), start=1):
        _, patient, number = session.split("-")
        for item, score in items.items():
            instrument = "GHES" if item.startswith("GHES") else "StHAR"
            rows.append(
                {
                    "rating_id": rating_id,
                    "session_id": session,
                    "patient": patient,
                    "therapist": "T1",
                    "session_number": int(number),
                    "phase": "I",
                    "rater": rater,
                    "purpose": purpose,
                    "instrument": instrument,
                    "instrument_version": 1,
                    "item": item,
                    "subscale": BY_CODE[instrument].item(item).subscale,
                    "score": score,
                    "rating_status": "submitted",
                    "submitted_at": pd.Timestamp("2024-01-01T10:00:00"),
                }
            )
    return pd.DataFrame(rows, columns=RATINGS_COLUMNS)


def sessions_frame(codes: list[str], excluded: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = []
    for code in codes:
        _, patient, number = code.split("-")
        rows.append(
            {
                "session_id": code,
                "patient": patient,
                "therapist": "T1",
                "session_number": int(number),
                "phase": "I",
                "status": "excluded" if code in excluded else "eligible",
                "exclusion_reason": None,
                "recorded_on": None,
                "duration_seconds": None,
                "phq9": 10,
            }
        )
    return pd.DataFrame(rows)


def sthar(a: int, r: int) -> dict[str, int]:
    return {**dict.fromkeys(A_ITEMS, a), **dict.fromkeys(R_ITEMS, r)}


def test_sthar_total_uses_the_previous_session_and_is_missing_across_a_gap() -> None:
    # Patient 1 has sessions 1, 2 and 4: session 3 is missing from the catalogue.
    # Patient 2 has sessions 1 and 2, but session 1 is excluded.
    ratings = ratings_frame(
        {
            ("P-1-1", "ra", "main"): sthar(4, 0),
            ("P-1-2", "ra", "main"): sthar(2, 1),
            ("P-1-4", "ra", "main"): sthar(3, 3),
            ("P-2-1", "ra", "main"): sthar(4, 4),
            ("P-2-2", "ra", "main"): sthar(1, 2),
        }
    )
    sessions = sessions_frame(["P-1-1", "P-1-2", "P-1-4", "P-2-1", "P-2-2"], excluded=("P-2-1",))
    out = tables.sessions_table(ratings, sessions, INSTRUMENTS).set_index("session_id")
    assert list(out.index) == ["P-1-1", "P-1-2", "P-1-4", "P-2-2"]
    # session 2: StH-A (five items) of session 1 = 4, StH-R (three items) of session 2 = 1
    assert out.loc["P-1-2", "StHAR_total"] == pytest.approx((5 * 4 + 3 * 1) / 8)
    assert math.isnan(out.loc["P-1-1", "StHAR_total"])  # no session 0
    assert math.isnan(out.loc["P-1-4", "StHAR_total"])  # session 3 missing: never shifted to 2
    assert math.isnan(out.loc["P-2-2", "StHAR_total"])  # previous session excluded
    assert out.loc["P-1-4", "StH_A"] == 3 and out.loc["P-1-4", "StH_R"] == 3


def test_sthar_total_missing_when_the_previous_session_is_unrated() -> None:
    ratings = ratings_frame({("P-1-2", "ra", "main"): sthar(2, 2)})
    out = tables.sessions_table(ratings, sessions_frame(["P-1-1", "P-1-2"]), INSTRUMENTS)
    assert out["StHAR_total"].isna().all()
    assert out["n_raters"].tolist() == [0, 1]


def ghes(values: list[int]) -> dict[str, int]:
    return dict(zip(GHES.item_codes, values, strict=True))


def test_resolve_mean_consensus_and_main() -> None:
    ratings = ratings_frame(
        {
            ("P-1-1", "ra", "main"): ghes([1, 2, 3, 4, 0, 1, 2]),
            ("P-1-1", "rb", "double"): ghes([2, 2, 4, 4, 1, 1, 3]),
        }
    )
    consensus = pd.DataFrame(
        {"session_id": ["P-1-1"], "instrument": ["GHES"], "item": ["GHES_1"], "score": [4]}
    )
    sessions = sessions_frame(["P-1-1"])

    def row(resolve: str) -> pd.Series:
        return tables.sessions_table(
            ratings, sessions, INSTRUMENTS, resolve=resolve, consensus=consensus
        ).iloc[0]

    mean, agreed, main = row("mean"), row("consensus"), row("main")
    assert mean["GHES_1"] == 1.5 and mean["GHES_3"] == 3.5 and mean["n_raters"] == 2
    assert agreed["GHES_1"] == 4 and agreed["GHES_3"] == 3.5 and agreed["n_consensus_items"] == 1
    assert main["GHES_1"] == 1 and main["GHES_3"] == 3 and mean["n_consensus_items"] == 0
    # GHES_5 is reverse-keyed in the score: main rater 1,2,3,4,(4-0),1,2
    assert main["GHES_score"] == pytest.approx((1 + 2 + 3 + 4 + 4 + 1 + 2) / 7)


def test_by_default_consensus_where_recorded_and_the_mean_elsewhere() -> None:
    ratings = ratings_frame(
        {
            ("P-1-1", "ra", "main"): ghes([1, 2, 3, 4, 0, 1, 2]),
            ("P-1-1", "rb", "double"): ghes([2, 2, 4, 4, 1, 1, 3]),
            ("P-1-2", "ra", "main"): ghes([0, 1, 2, 3, 4, 0, 1]),
            ("P-1-2", "rb", "double"): ghes([0, 1, 2, 3, 4, 0, 2]),
            ("P-1-3", "ra", "main"): ghes([1] * 7),
        }
    )
    agreed = {"P-1-1": {"GHES_1": 4}, "P-1-2": dict(zip(GHES.item_codes, [3] * 7, strict=True))}
    consensus = pd.DataFrame(
        [
            {"session_id": s, "instrument": "GHES", "item": i, "score": v}
            for s, items in agreed.items()
            for i, v in items.items()
        ]
    )
    sessions = sessions_frame(["P-1-1", "P-1-2", "P-1-3", "P-1-4"])
    out = tables.sessions_table(ratings, sessions, INSTRUMENTS, consensus=consensus)
    out = out.set_index("session_id")
    assert out.loc["P-1-1", "GHES_1"] == 4 and out.loc["P-1-1", "GHES_3"] == 3.5
    assert out.loc["P-1-1", "resolution"] == "consensus+mean"
    assert (out.loc["P-1-2", GHES.item_codes] == 3).all()
    assert out.loc["P-1-2", "resolution"] == "consensus"
    assert out.loc["P-1-3", "resolution"] == "mean" and out.loc["P-1-3", "GHES_1"] == 1
    assert pd.isna(out.loc["P-1-4", "resolution"]) and out.loc["P-1-4", "n_raters"] == 0
    assert out["n_consensus_items"].tolist() == [1, 7, 0, 0]
    assert out["n_raters"].tolist() == [2, 2, 1, 0]
    explicit = tables.sessions_table(
        ratings, sessions, INSTRUMENTS, consensus=consensus, resolve="consensus"
    )
    pd.testing.assert_frame_equal(explicit.set_index("session_id"), out)
    mean = tables.sessions_table(
        ratings, sessions, INSTRUMENTS, consensus=consensus, resolve="mean"
    )
    assert mean["resolution"].tolist()[:3] == ["mean"] * 3 and mean["GHES_1"][0] == 1.5


def test_n_raters_counts_the_ratings_used() -> None:
    ratings = ratings_frame(
        {
            ("P-1-1", "ra", "main"): ghes([1] * 7),
            ("P-1-1", "rb", "double"): ghes([3] * 7),
            ("P-1-2", "rb", "double"): ghes([2] * 7),  # its main rating is missing
        }
    )
    sessions = sessions_frame(["P-1-1", "P-1-2"])
    main = tables.sessions_table(ratings, sessions, INSTRUMENTS, resolve="main")
    assert main["n_raters"].tolist() == [1, 0]
    assert main["resolution"][0] == "main" and pd.isna(main["resolution"][1])
    assert main["GHES_1"][0] == 1 and math.isnan(main["GHES_1"][1])
    mean = tables.sessions_table(ratings, sessions, INSTRUMENTS, resolve="mean")
    assert mean["n_raters"].tolist() == [2, 1] and mean["GHES_1"].tolist() == [2, 2]


def test_calibration_ratings_only_with_include_calibration() -> None:
    ratings = ratings_frame({("P-1-1", "ra", "calibration"): ghes([4] * 7)})
    sessions = sessions_frame(["P-1-1"])
    left_out = tables.sessions_table(ratings, sessions, INSTRUMENTS).iloc[0]
    kept = tables.sessions_table(ratings, sessions, INSTRUMENTS, include_calibration=True).iloc[0]
    assert left_out["n_raters"] == 0 and math.isnan(left_out["GHES_1"])
    assert kept["n_raters"] == 1 and kept["GHES_1"] == 4


def test_homework_counts_and_difficulties_resolve_across_raters() -> None:
    ratings = ratings_frame(
        {
            ("P-1-1", "ra", "main"): ghes([1] * 7),
            ("P-1-1", "rb", "double"): ghes([1] * 7),
            ("P-1-2", "ra", "main"): ghes([1] * 7),
        }
    )
    homework = tables.empty_homework()
    entries = [
        (1, "reported_completed", "behavioural", "yes", "P-1-1"),
        (1, "reported_completed", "cognitive", "no", "P-1-1"),
        (2, "reported_completed", "behavioural", "yes", "P-1-1"),
        (None, "assigned_next", "self-monitoring", None, "P-1-1"),
        (None, "assigned_next", "self-monitoring", None, "P-1-1"),
    ]
    homework = pd.DataFrame(
        [
            {"rating_id": r, "kind": k, "homework_type": t, "completion": c, "session_id": s}
            for r, k, t, c, s in entries
        ]
    ).reindex(columns=homework.columns)
    difficulties = pd.DataFrame({"rating_id": [2], "difficulty_type": ["lack of time"]})
    out = tables.sessions_table(
        ratings,
        sessions_frame(["P-1-1", "P-1-2", "P-1-3"]),
        INSTRUMENTS,
        homework=homework,
        difficulties=difficulties,
    ).set_index("session_id")
    first = out.loc["P-1-1"]
    assert first["hw_reported_behavioural"] == 1.0  # each rater logged one
    assert first["hw_reported_cognitive"] == 0.5  # one of two raters logged it
    assert first["hw_reported_total"] == 1.5 and first["hw_completed"] == 1.0
    assert first["hw_assigned_self_monitoring"] == 2 and first["hw_assigned_total"] == 2
    assert first["difficulty_lack_of_time"] == 1 and first["difficulty_negative_events"] == 0
    assert out.loc["P-1-2", "difficulty_lack_of_time"] == 0  # rated, nothing ticked
    assert pd.isna(out.loc["P-1-3", "difficulty_lack_of_time"])  # not rated
    main = tables.sessions_table(
        ratings,
        sessions_frame(["P-1-1"]),
        INSTRUMENTS,
        resolve="main",
        homework=homework,
        difficulties=difficulties,
    ).iloc[0]
    assert main["hw_reported_cognitive"] == 1 and main["difficulty_lack_of_time"] == 0


def _direct_mean(instrument, rule, items: dict) -> float:
    """The mean of a rule's items by hand: reverse-keyed as min + max - x; NaN when one is
    missing."""
    values = []
    for code in rule.items:
        if code not in items:
            return math.nan
        item = instrument.item(code)
        x = items[code]
        values.append(item.scale.min + item.scale.max - x if item.reverse else x)
    return sum(values) / len(values)


scores = st.lists(st.integers(0, 4), min_size=15, max_size=15)


@settings(max_examples=30, deadline=None)
@given(st.lists(scores, min_size=1, max_size=6), st.data())
def test_wide_scores_match_the_instruments_scoring_rules(rows, data) -> None:
    codes = [*GHES.item_codes, *STHAR.item_codes]
    frame = {}
    for index, values in enumerate(rows):
        items = dict(zip(codes, values, strict=True))
        dropped = data.draw(st.sampled_from([None, *codes]))
        items.pop(dropped, None)
        frame[(f"P-1-{index + 1}", "ra", "main")] = items
    wide = tables.wide_table(ratings_frame(frame), INSTRUMENTS)
    assert len(wide) == len(rows)
    for (_, items), (_, row) in zip(frame.items(), wide.iterrows(), strict=True):
        for instrument in (GHES, STHAR):
            for rule in instrument.scores:
                if rule.is_cross_session:
                    continue
                expected = _direct_mean(instrument, rule, items)
                if math.isnan(expected):
                    assert math.isnan(row[rule.code])
                else:
                    assert row[rule.code] == pytest.approx(expected)
        for code in codes:
            assert (pd.isna(row[code]) and code not in items) or row[code] == items[code]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=8, max_size=8), min_size=2, max_size=6))
def test_sthar_total_matches_a_direct_computation(per_session) -> None:
    frame = {
        (f"P-1-{n + 1}", "ra", "main"): dict(zip(STHAR.item_codes, v, strict=True))
        for n, v in enumerate(per_session)
    }
    codes = [f"P-1-{n + 1}" for n in range(len(per_session))]
    out = tables.sessions_table(ratings_frame(frame), sessions_frame(codes), INSTRUMENTS)
    for n in range(1, len(per_session)):
        expected = np.mean([*per_session[n - 1][:5], *per_session[n][5:]])
        assert out.loc[n, "StHAR_total"] == pytest.approx(expected)


def reliability_frames() -> dict[str, pd.DataFrame]:
    return {
        "pairs": pd.DataFrame(
            {
                "instrument": ["GHES"],
                "rater_1": ["ra"],
                "rater_2": ["rb"],
                "n": [7],
                "coefficient": ["ICC(A,2)"],
                "value": [0.81],
                "ci_low": [0.4],
                "ci_high": [0.95],
                "note": [""],
            }
        ),
        "calibration": pd.DataFrame(
            {
                "instrument": ["GHES"],
                "rater": ["ra"],
                "needs_training": [True],
                "coefficient": ["ICC(A,1)"],
                "value": [np.nan],
                "ci_low": [np.nan],
                "ci_high": [np.nan],
                "note": ["not enough data"],
            }
        ),
    }


def test_reliability_table_stacks_the_report_tables() -> None:
    out = tables.reliability_table(reliability_frames())
    assert list(out.columns) == [
        "table",
        "instrument",
        "rater_1",
        "rater_2",
        "n",
        "rater",
        "needs_training",
        "coefficient",
        "value",
        "ci_low",
        "ci_high",
        "note",
    ]
    assert out["table"].tolist() == ["pairs", "calibration"]
    assert str(out["n"].dtype) == "Int64" and pd.isna(out.loc[1, "n"])
    assert out.loc[1, "needs_training"] == 1


def test_codebook_describes_every_column_of_every_kind() -> None:
    ratings = ratings_frame({("P-1-1", "ra", "main"): ghes([1] * 7)})
    sessions = sessions_frame(["P-1-1"])
    reliability = tables.reliability_table(reliability_frames())
    codebook = tables.codebook_table(INSTRUMENTS, reliability=reliability)
    built = {
        "long": tables.long_table(ratings),
        "wide": tables.wide_table(ratings, INSTRUMENTS),
        "homework": tables.homework_table(tables.empty_homework()),
        "reliability": reliability,
        "codebook": codebook,
        "audit": tables.audit_table(
            pd.DataFrame({c.name: [] for c in tables.AUDIT}).astype({"event_id": "int64"})
        ),
    }
    for resolve in tables.RESOLVE_MODES:  # one codebook serves every resolution
        built["sessions"] = tables.sessions_table(ratings, sessions, INSTRUMENTS, resolve=resolve)
        for kind, frame in built.items():
            described = codebook[codebook["export"] == kind]["column"].tolist()
            assert described == list(frame.columns), kind
    items = codebook[(codebook["export"] == "wide") & codebook["column"].isin(GHES.item_codes)]
    assert items["anchors"].str.startswith("0 = ").all()
    assert (items["instrument_version"] == 1).all()
    rules = codebook[codebook["export"] == "rule"].set_index("column")["scoring_rule"]
    assert "GHES_5 reverse-keyed as 4 - x" in rules["GHES_score"]
    assert "session t-1" in rules["StHAR_total"]
    used = codebook.set_index(["export", "column"])["scoring_rule"]
    assert used[("sessions", "StHAR_total")] == "StHAR_total"
    assert used[("wide", "GHES_score")] == used[("sessions", "GHES_score")] == "GHES_score"


def test_codebook_states_each_rule_once_and_columns_name_it() -> None:
    codebook = tables.codebook_table(INSTRUMENTS)
    rules = codebook[codebook["export"] == "rule"]
    columns = codebook[codebook["export"] != "rule"]
    names = rules["column"].tolist()
    assert len(names) == len(set(names)) and rules["scoring_rule"].notna().all()
    assert {"resolution", "ratings_used", "GHES_score", "StHAR_total"} <= set(names)
    referenced = set(columns["scoring_rule"].dropna())
    assert referenced == set(names)  # every rule is used, every reference is a rule
    # The wording of a rule is in its one row: no column label or other rule repeats it.
    texts = [
        t for t in codebook[["label", "scoring_rule"]].to_numpy().ravel() if isinstance(t, str)
    ]
    for phrase in ("4 - x", "session t-1", "pair mean", "each rating's count", "ticked it"):
        assert sum(phrase in t for t in texts) == 1, phrase
    resolved = columns[(columns["export"] == "sessions") & columns["column"].isin(GHES.item_codes)]
    assert (resolved["scoring_rule"] == "resolution").all()


def test_unknown_resolution_is_refused() -> None:
    with pytest.raises(ValueError, match="resolve"):
        tables.resolve_items(ratings_frame({}), tables.empty_consensus(), [], "median")
