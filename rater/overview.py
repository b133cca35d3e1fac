"""The coordinator's home page counts: sessions by therapist and phase.

The sessions are counted by ``rater.allocation.progress.session_counts``, the count the progress
page uses too: a cell's total is its sessions in the main study; calibration sessions and other
excluded sessions are counted apart, so the home page and the progress page agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from rater.allocation.progress import CALIBRATION, EXCLUDED, MAIN_POOL, session_counts
from rater.extensions import db
from rater.study.models import Patient


@dataclass(frozen=True)
class StudyOverview:
    """Counts for the coordinator's home page."""

    # (therapist, phase) -> {"main": ..., "calibration": ..., "excluded": ...}
    cells: dict[tuple[str, str], dict[str, int]]
    therapists: list[str]
    phases: list[str]
    n_patients: int

    def _sum(self, kind: str, therapist: str | None = None) -> int:
        return sum(c[kind] for (t, _), c in self.cells.items() if therapist in (None, t))

    @property
    def n_main(self) -> int:
        """Sessions in the main study (eligible, not calibration sessions)."""
        return self._sum(MAIN_POOL)

    @property
    def n_calibration(self) -> int:
        return self._sum(CALIBRATION)

    @property
    def n_excluded(self) -> int:
        """Excluded sessions other than the calibration sessions."""
        return self._sum(EXCLUDED)

    @property
    def n_sessions(self) -> int:
        return self.n_main + self.n_calibration + self.n_excluded

    def total_of(self, therapist: str) -> int:
        """A therapist's sessions in the main study (the progress page's eligible sessions)."""
        return self._sum(MAIN_POOL, therapist)


def study_overview() -> StudyOverview:
    cells = session_counts()
    return StudyOverview(
        cells=cells,
        therapists=sorted({t for t, _ in cells}),
        phases=sorted({p for _, p in cells}),
        n_patients=db.session.scalar(select(func.count(Patient.id))) or 0,
    )
