"""The balance report in plain words, with the technical line kept for those who ask."""

from __future__ import annotations

import pandas as pd

from rater.allocation.design import Deviation, check_guarantees


def test_the_issue_example_reads_plainly():
    d = Deviation("rater_patient", "rater2 x patient P04", 3.011, 2, 0.011)
    assert d.plain() == "rater2 has 2 sessions of patient P04 where 3 would be even."
    assert d.technical() == (
        "rater_patient [rater2 x patient P04]: target 3.011, actual 2, over by 0.011"
    )


def _sessions(n_patients: int = 6) -> pd.DataFrame:
    rows = [
        (f"P{p:02d}-S{s:02d}", f"T{p % 2 + 1}", f"P{p:02d}", s, "I" if s < 5 else "II", "eligible")
        for p in range(1, n_patients + 1)
        for s in range(1, 10)
    ]
    return pd.DataFrame(
        rows, columns=["session_id", "therapist", "patient", "session_number", "phase", "status"]
    )


def test_every_deviation_of_a_lopsided_design_has_a_plain_sentence():
    sessions = _sessions()
    raters = ["r1", "r2", "r3"]
    # everything to r1, a few doubles to r2, one session uncovered, one doubly main
    rows = [(code, "r1", "main") for code in sessions["session_id"][1:]]
    rows += [(code, "r2", "double") for code in sessions["session_id"][1:6]]
    rows += [(sessions["session_id"][2], "r3", "main"), ("P01-S03", "ghost", "main")]
    assignments = pd.DataFrame(rows, columns=["session_id", "rater", "purpose"])
    deviations = check_guarantees(sessions, raters, assignments, 0.4)
    kinds = {d.guarantee for d in deviations}
    assert {"coverage", "double_count", "rater_load", "rater_patient"} <= kinds
    for d in deviations:
        text = d.plain()
        assert "target" not in text and "[" not in text and text.endswith(".")
        assert str(int(d.actual)) in text or "no rater" in text
    by_kind = {d.guarantee: d.plain() for d in deviations}
    assert by_kind["double_count"].startswith("The study has 5 double-coded sessions where")
    assert any(t == "Session P01-S01 has no rater." for t in map(Deviation.plain, deviations))
    assert any(
        t.startswith("ghost is not a rater in allocation") for t in map(Deviation.plain, deviations)
    )
    for d in deviations:
        if d.guarantee == "rater_patient":
            rater, _, patient = d.subject.rpartition(" x ")
            assert d.plain().startswith(f"{rater} has {int(d.actual)} session")
            assert f"of {patient} where {round(d.target)} would be even" in d.plain()


def test_uneven_workloads_read_as_a_spread_between_raters():
    """``rater_load`` also starts with "rater_" but is about all raters, not one rater's stratum
    (it once read "has 56 sessions of raters where 1 would be even")."""
    d = Deviation("rater_load", "raters", 1, 56, 55)
    assert d.plain() == (
        "Raters' workloads differ by up to 56 sessions; a difference of at most 1 would be even."
    )
