"""The states and kinds the database stores, each an enum defined once (pure: stdlib only).

The models build their CHECK constraints from these enums (``rater.extensions.check_in``), and
the code compares against their members instead of spelling the strings again. The pure cores
(the allocation design, the export tables) use them too, which is why they live here and not
in the model modules. The homework log's kinds are :class:`rater.instruments.LogKind`.

Each value is also a ``str`` (``StrEnum``): it is stored, compared, written to JSON and to the
exports exactly as the string it stands for. A named ``frozenset`` of states (``STARTED``,
``RATEABLE``...) is the one place that says which states share a rule.
"""

from __future__ import annotations

from enum import StrEnum, nonmember


class Role(StrEnum):
    RATER = "rater"
    COORDINATOR = "coordinator"


class SessionStatus(StrEnum):
    """Whether a recorded session is in the study."""

    ELIGIBLE = "eligible"
    EXCLUDED = "excluded"


class Purpose(StrEnum):
    """Why a rater has an assignment: the calibration round, or the main design (a session's
    ``main`` rater and, for double-coded sessions, its ``double`` rater)."""

    CALIBRATION = "calibration"
    MAIN = "main"
    DOUBLE = "double"

    # The purposes the allocation design places (calibration sessions lie outside it).
    DESIGN = nonmember(frozenset({MAIN, DOUBLE}))


class AssignmentStatus(StrEnum):
    HELD = "held"  # waiting for the calibration gate: not yet shown to the rater
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    CANNOT_RATE = "cannot_rate"  # flagged by the rater as impossible to rate

    # Started or finished work: never moved or removed by allocation changes.
    STARTED = nonmember(frozenset({IN_PROGRESS, SUBMITTED, CANNOT_RATE}))
    # Open to its rater (in the queue, rating page and autosave); held and flagged ones are not.
    RATEABLE = nonmember(frozenset({PENDING, IN_PROGRESS, SUBMITTED}))
    # A rating page may be opened (and a draft created) from these.
    STARTABLE = nonmember(frozenset({PENDING, IN_PROGRESS}))
    # Finished: submitted or flagged.
    DONE = nonmember(frozenset({SUBMITTED, CANNOT_RATE}))
    # Not yet started by the rater.
    WAITING = nonmember(frozenset({HELD, PENDING}))

    @staticmethod
    def label(value: str) -> str:
        """The state as people say it: "in progress", "cannot be rated", "not started"."""
        return _ASSIGNMENT_LABELS.get(value, value.replace("_", " "))


_ASSIGNMENT_LABELS = {
    "held": "held",
    "pending": "not started",
    "in_progress": "in progress",
    "submitted": "submitted",
    "cannot_rate": "cannot be rated",
    "unassigned": "unassigned",
}


class RatingStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class Completion(StrEnum):
    """How far reported homework was completed."""

    YES = "yes"
    PARTLY = "partly"
    NO = "no"


class CannotRateCategory(StrEnum):
    AUDIO_UNUSABLE = "audio_unusable"
    DEVIATED_FROM_MANUAL = "deviated_from_manual"
    OTHER = "other"
