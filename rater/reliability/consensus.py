"""Disagreements between double coders and the consensus scores agreed afterwards (flush only).

Consensus scores live in their own table (``ConsensusScore``); the two independent ratings of
a session are never changed here — only read.  Every consensus change is audited.

Also the read side the reliability pages share: :func:`current_instruments` and
:func:`load_report` (the report from ``ratings_frame()``, computed per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from rater import audit
from rater.auth.models import User
from rater.coding.service import coded_values
from rater.extensions import db
from rater.instruments import Answer, Instrument, Item, ItemKind, answer_json
from rater.rating.frame import ratings_frame, sessions_frame
from rater.rating.models import Assignment, ConsensusScore, Rating
from rater.reliability.report import ReliabilityReport, report
from rater.reliability.values import session_minutes
from rater.states import Purpose, RatingStatus
from rater.study.instrument_store import all_versions, instrument_of
from rater.study.models import InstrumentVersion, TherapySession
from rater.timeutil import utcnow

DISAGREEMENT_POINTS = 2  # without instruments: an item differing by this much is a disagreement
ANSWER_COLUMNS = ("score", "value_text", "not_applicable")


def current_instruments() -> list[Instrument]:
    """The latest stored version of every instrument (read-only: no sync in a GET)."""
    latest: dict[str, InstrumentVersion] = {}
    for version in all_versions():
        latest[version.code] = version
    return [instrument_of(v) for _, v in sorted(latest.items())]


def load_report(design: str = "all", instrument: str | None = None) -> ReliabilityReport:
    """The reliability report of the submitted ratings, optionally of one instrument."""
    frame = ratings_frame()
    instruments = current_instruments()
    if instrument is not None:
        instruments = [i for i in instruments if i.code == instrument]
        frame = frame[frame["instrument"] == instrument]
    return report(
        frame,
        instruments,
        design=design,
        events=coded_values(instruments),
        minutes=session_minutes(sessions_frame()),
    )


@dataclass(frozen=True)
class Disagreement:
    session_id: str
    patient: str
    session_number: int
    raters: tuple[str, ...]
    items: tuple[tuple[str, int], ...]  # (item, largest difference), largest first
    n_consensus: int = 0
    # (item, the answers given, e.g. "cognitive ≠ monitoring" or "N/A ≠ 3"): different
    # categories of a nominal item, or "not applicable" against an answer
    mismatches: tuple[tuple[str, str], ...] = ()

    @property
    def largest(self) -> int:
        return self.items[0][1] if self.items else 0


def thresholds(instruments: list[Instrument]) -> dict[str, float]:
    """Item -> its disagreement threshold (``Instrument.disagreement_of``; ordinal items)."""
    return {
        item.code: limit
        for inst in instruments
        for item in inst.items
        if (limit := inst.disagreement_of(item)) is not None
    }


def disagreements(
    frame: pd.DataFrame,
    instruments: list[Instrument] | None = None,
    points: float = DISAGREEMENT_POINTS,
) -> list[Disagreement]:
    """Double-coded sessions (main/double) where two ratings of some item disagree.

    An ordinal item's scores differ by its instrument's threshold or more, a count item's by
    ``Instrument.count_threshold`` (``points`` for every scored item when ``instruments`` is
    None); a single-choice nominal item got different categories; or one rating says "not
    applicable" where another gives an answer. Largest score difference first.
    """
    main = frame[frame["purpose"] != Purpose.CALIBRATION]
    if main.empty:
        return []
    numeric = _numeric_hits(main[main["score"].notna()], instruments, points)
    mismatches = _mismatches(main, instruments)
    sessions = sorted(set(numeric) | set(mismatches))
    if not sessions:
        return []
    meta = main.drop_duplicates("session_id").set_index("session_id")
    raters = main.groupby("session_id")["rater"].unique()
    counts = _consensus_counts(sessions)
    out = [
        Disagreement(
            session_id=session_id,
            patient=str(meta.at[session_id, "patient"]),
            session_number=int(meta.at[session_id, "session_number"]),
            raters=tuple(sorted(raters[session_id])),
            items=numeric.get(session_id, ()),
            n_consensus=counts.get(session_id, 0),
            mismatches=mismatches.get(session_id, ()),
        )
        for session_id in sessions
    ]
    return sorted(out, key=lambda d: (-d.largest, d.session_id))


def _numeric_hits(
    scored: pd.DataFrame, instruments: list[Instrument] | None, points: float
) -> dict[str, tuple[tuple[str, int], ...]]:
    """Session -> (item, difference) of the ordinal and count items past their threshold."""
    if scored.empty:
        return {}
    spread = scored.groupby(["session_id", "item"])["score"].agg(["min", "max", "size"])
    spread = spread[spread["size"] >= 2].reset_index()
    spread["diff"] = (spread["max"] - spread["min"]).astype("int64")
    if instruments is None:
        limit = pd.Series(points, index=spread.index, dtype="float64")
    else:
        limit = spread["item"].map(thresholds(instruments)).astype("float64")
        counts = {
            i.code: inst for inst in instruments for i in inst.items if i.kind == ItemKind.COUNT
        }
        for row in spread[spread["item"].isin(counts)].itertuples():
            limit.at[row.Index] = counts[row.item].count_threshold(float(row.max))
    hits = spread[spread["diff"] >= limit]  # NaN limit (nominal, text): never a hit
    found = {}
    for session_id, rows in hits.groupby("session_id", sort=True):
        rows = rows.sort_values(["diff", "item"], ascending=[False, True])
        found[str(session_id)] = tuple(zip(rows["item"], rows["diff"].astype(int), strict=True))
    return found


def _mismatches(
    main: pd.DataFrame, instruments: list[Instrument] | None
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Session -> (item, answers) where a single-choice nominal item got different categories,
    or "not applicable" stands against an answer."""
    if "not_applicable" not in main:
        return {}
    single = {
        i.code
        for inst in instruments or []
        for i in inst.items
        if i.kind == ItemKind.NOMINAL and not i.multiple
    }
    na = main["not_applicable"] == 1
    answered = main["score"].notna() | main["value"].notna()
    rows = main[na | answered]
    found: dict[str, list[tuple[str, str]]] = {}
    for (session_id, item), group in rows.groupby(["session_id", "item"], sort=True):
        if group["rater"].nunique() < 2:
            continue
        answers = [
            "N/A" if flag == 1 else (str(int(score)) if pd.notna(score) else str(value))
            for flag, score, value in zip(
                group["not_applicable"], group["score"], group["value"], strict=True
            )
        ]
        distinct = sorted(set(answers), key=answers.index)
        has_na = "N/A" in distinct and len(distinct) > 1
        if has_na or (item in single and len(distinct) > 1):
            found.setdefault(str(session_id), []).append((str(item), " ≠ ".join(distinct)))
    return {session: tuple(items) for session, items in found.items()}


def _consensus_counts(session_codes: list[str]) -> dict[str, int]:
    if not session_codes:
        return {}
    rows = db.session.execute(
        select(TherapySession.code, ConsensusScore.id)
        .join(ConsensusScore, ConsensusScore.session_id == TherapySession.id)
        .where(TherapySession.code.in_(session_codes))
    ).all()
    counts: dict[str, int] = {}
    for code, _ in rows:
        counts[code] = counts.get(code, 0) + 1
    return counts


@dataclass
class ConsensusView:
    """Everything the consensus page shows for one session."""

    session: TherapySession
    ratings: list[Rating]  # submitted main/double ratings, by rater name
    instruments: list[tuple[Instrument, InstrumentVersion]]
    scores: dict[int, dict[str, Answer]]  # rating id -> item -> answer
    consensus: dict[str, ConsensusScore] = field(default_factory=dict)

    def differs(self, item: str) -> int | None:
        """Largest difference between the ratings' scores of ``item`` (None when fewer than two
        scored it with a number)."""
        values = [v for s in self.scores.values() if isinstance(v := s.get(item), int)]
        if len(values) < 2:
            return None
        return max(values) - min(values)

    def threshold(self, item: str) -> float | None:
        return thresholds([inst for inst, _ in self.instruments]).get(item)

    def answer_text(self, rating_id: int, item: str) -> str:
        return Item.answer_text(self.scores[rating_id].get(item))

    def suggested(self, item: str) -> Answer | None:
        """The saved consensus, else the common answer when the ratings agree."""
        if item in self.consensus:
            return self.consensus[item].answer
        values = {s.get(item) for s in self.scores.values()}
        return values.pop() if len(values) == 1 else None


def consensus_view(session_code: str) -> ConsensusView | None:
    """The double-coded session's submitted ratings (with notes) and its consensus scores.

    None when the session does not exist or has fewer than two submitted main/double ratings.
    """
    session = db.session.scalar(select(TherapySession).where(TherapySession.code == session_code))
    if session is None:
        return None
    ratings = list(
        db.session.scalars(
            select(Rating)
            .join(Assignment, Rating.assignment_id == Assignment.id)
            .join(User, Assignment.rater_id == User.id)
            .where(
                Assignment.session_id == session.id,
                Assignment.purpose != Purpose.CALIBRATION,
                Rating.status == RatingStatus.SUBMITTED,
            )
            .options(
                selectinload(Rating.scores),
                selectinload(Rating.notes),
                selectinload(Rating.instrument_versions),
            )
            .order_by(User.username)
        )
    )
    if len(ratings) < 2:
        return None
    versions = {v.id: v for r in ratings for v in r.instrument_versions}
    versions.update({v.id: v for v in _score_versions(ratings)})
    by_code: dict[str, InstrumentVersion] = {}
    for v in sorted(versions.values(), key=lambda v: v.version):
        by_code[v.code] = v
    consensus = {
        c.item_code: c
        for c in db.session.scalars(
            select(ConsensusScore).where(ConsensusScore.session_id == session.id)
        )
    }
    return ConsensusView(
        session=session,
        ratings=ratings,
        instruments=[(instrument_of(v), v) for _, v in sorted(by_code.items())],
        scores={r.id: {s.item_code: s.answer for s in r.scores} for r in ratings},
        consensus=consensus,
    )


def _score_versions(ratings: list[Rating]) -> list[InstrumentVersion]:
    ids = {s.instrument_version_id for r in ratings for s in r.scores}
    if not ids:
        return []
    return list(db.session.scalars(select(InstrumentVersion).where(InstrumentVersion.id.in_(ids))))


def save_consensus(view: ConsensusView, scores: dict[str, Answer | None], user: User) -> int:
    """Record consensus answers (None clears one); returns how many changed.  Flush only.

    Only items of the session's instruments are accepted; the independent ratings are read,
    never written.  Each change is audited with its before and after.
    """
    version_of = {item.code: v for inst, v in view.instruments for item in inst.items}
    definition = {item.code: item for inst, _ in view.instruments for item in inst.items}
    changed = 0
    for item, score in scores.items():
        if item not in version_of:
            raise ValueError(f"unknown item {item!r}")
        if score is not None:
            try:
                definition[item].answer(answer_json(score))
            except ValueError as exc:
                raise ValueError(f"answer {Item.answer_text(score)} of {item}: {exc}") from None
        existing = view.consensus.get(item)
        before = None if existing is None else existing.answer
        if before == score:
            continue
        columns = {}
        if score is not None:
            columns = dict(zip(ANSWER_COLUMNS, Item.columns(score), strict=True))
        if score is None:
            db.session.delete(existing)
            del view.consensus[item]
        elif existing is None:
            existing = ConsensusScore(
                session_id=view.session.id,
                instrument_version_id=version_of[item].id,
                item_code=item,
                **columns,
                decided_by_id=user.id,
                decided_at=utcnow(),
            )
            db.session.add(existing)
            view.consensus[item] = existing
        else:
            for name, value in columns.items():
                setattr(existing, name, value)
            existing.decided_by_id = user.id
            existing.decided_at = utcnow()
        audit.record(
            "consensus.set" if score is not None else "consensus.clear",
            "consensus_score",
            f"{view.session.code}:{item}",
            before=None if before is None else {"score": answer_json(before)},
            after=None
            if score is None
            else {"score": answer_json(score), "decided_by": user.username},
        )
        changed += 1
    db.session.flush()
    return changed
