"""Import existing ratings (from paper or spreadsheets) in long form, all-or-nothing.

Columns: ``session_id, rater, instrument, item, score``; optional ``value, not_applicable,
purpose, submitted_at``. An item's answer is ``score`` (ordinal and count items: a whole number
in the item's range), ``value`` (nominal items: a category code, several joined by ";"; text
items: the text) or ``not_applicable`` = 1 (where the item allows it; score and value empty),
as the ``long`` export writes them. Extra columns are ignored, so a ``long`` export can be
imported back. Each (session, rater) becomes an assignment with a submitted rating.

Imported ratings keep the design's invariants as ratings made in the browser do:

- a session has one ``main`` rater: a second one is refused, whether both are in the file or
  one is stored already. A rater whose purpose the file leaves open is ``main`` when the session
  has no main rater yet (stored, or anywhere in the file), else ``double``;
- a rating scores every required item of its instruments: one that does not is refused, unless
  the import allows incomplete ratings, which it then lists.

The whole file is checked before anything is written; then it is written in blocks of ratings
with multi-row INSERTs (``rater.bulk``), in the caller's transaction, without an ORM object per
row, so a file of a million scores imports as one all-or-nothing change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from rater import data_version
from rater.auth.models import User
from rater.bulk import (
    chunked,
    insert_audit_events,
    insert_rows,
    select_in,
    update_in,
    update_rows,
)
from rater.csvinput import (
    ImportFailed,
    Problem,
    Record,
    in_file_order,
    read_csv_records,
    whole_number,
)
from rater.extensions import db, length_of, table_of
from rater.instruments import NOT_APPLICABLE, Answer, Instrument, Item, ItemKind, answer_json
from rater.rating.models import Assignment, ItemScore, Rating, rating_instruments
from rater.rating.service import instruments_of_rows
from rater.spreadsheet import unneutralise
from rater.states import AssignmentStatus, Purpose, RatingStatus, Role
from rater.study.instrument_store import current_versions, instrument_of
from rater.study.models import InstrumentVersion, TherapySession
from rater.timeutil import utcnow

REQUIRED = ("session_id", "rater", "instrument", "item", "score")
KEYS = ("session_id", "rater", "instrument", "item")  # never empty
NA_FLAGS = {"": False, "0": False, "1": True}
ASSIGNMENTS, RATINGS, SCORES = table_of(Assignment), table_of(Rating), table_of(ItemScore)
SESSIONS, USERS = table_of(TherapySession), table_of(User)
# The most characters each looked-up column takes, from the schema.
LENGTHS = {
    "session_id": length_of(SESSIONS.c.code),
    "rater": length_of(USERS.c.username),
    "instrument": length_of(table_of(InstrumentVersion).c.code),
    "item": length_of(SCORES.c.item_code),
}
ANSWER_COLUMNS = ("score", "value_text", "not_applicable")
BLOCK = 5_000  # ratings written (and audited) per step


@dataclass(slots=True, eq=False)
class FileRating:
    """The rows of one (session, rater) in the file, and what the import will do with them."""

    session: str
    rater: str
    rater_id: int
    line: int  # its first line
    items: list[str] = field(default_factory=list)
    item_instruments: list[str] = field(default_factory=list)
    scores: list[Answer] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    instruments: set[str] = field(default_factory=set)
    purposes: dict[str, int] = field(default_factory=dict)  # stated purpose -> its first line
    submitted_at: datetime | None = None  # the latest one given
    # Filled once the database has been read:
    session_id: int = 0
    purpose: str = ""
    assignment_id: int | None = None
    rating_id: int | None = None


@dataclass(frozen=True)
class IncompleteRating:
    """A rating imported without all of its required items (``allow_incomplete``)."""

    file: str
    line: int
    session: str
    rater: str
    missing: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.file}, line {self.line}: session {self.session} by {self.rater} lacks "
            + ", ".join(self.missing)
        )


@dataclass
class RatingsImportResult:
    ratings: int = 0
    scores: int = 0
    assignments_created: int = 0
    incomplete: list[IncompleteRating] = field(default_factory=list)


@dataclass(frozen=True)
class Known:
    """What the rows are checked against: raters, and the current instrument versions."""

    raters: dict[str, int]  # username -> id
    instruments: dict[str, Instrument]
    version_ids: dict[str, int]  # instrument code -> id of its current version
    items: dict[str, frozenset[str]]  # instrument code -> its item codes


def _parse_datetime(text: str) -> datetime:
    """ISO 8601; an offset is converted to naive UTC as stored."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


class _RowReader:
    """Checks one row at a time against ``known``; remembers the last timestamp parsed (the
    rows of one rating usually repeat it)."""

    def __init__(self, source: str, known: Known) -> None:
        self.source, self.known = source, known
        self._last_stamp: tuple[str, datetime] | None = None

    def read(self, record: Record) -> tuple[tuple | None, list[Problem]]:
        v, problems = record.values, []

        def bad(column: str, message: str) -> None:
            problems.append(Problem(self.source, record.line, column, v.get(column), message))

        for column in KEYS:
            if not v.get(column):
                bad(column, "is empty")
        if v.get("rater") and v["rater"] not in self.known.raters:
            bad("rater", "unknown rater (add the user with role rater first)")
        items = self.known.items.get(v.get("instrument", ""))
        item = None
        if v.get("instrument") and items is None:
            bad("instrument", "unknown instrument")
        elif items is not None and v.get("item") and v["item"] not in items:
            bad("item", f"not an item of {v['instrument']}")
        elif items is not None and v.get("item"):
            item = self.known.instruments[v["instrument"]].item(v["item"])
        score = _answer(v, item, bad)
        purpose = v.get("purpose") or None
        if purpose is not None and purpose not in set(Purpose):
            bad("purpose", f"must be one of {', '.join(Purpose)}")
        submitted_at = self._stamp(v.get("submitted_at"), bad)
        if problems:
            return None, problems
        return (
            (v["session_id"], v["rater"], v["instrument"], v["item"], score, purpose, submitted_at),
            [],
        )

    def _stamp(self, text: str | None, bad: Callable[[str, str], None]) -> datetime | None:
        if not text:
            return None
        if self._last_stamp is not None and self._last_stamp[0] == text:
            return self._last_stamp[1]
        try:
            value = _parse_datetime(text)
        except (ValueError, OverflowError):  # OverflowError: an offset moving year 1 to year 0
            bad("submitted_at", "must be an ISO 8601 date and time")
            return None
        self._last_stamp = (text, value)
        return value


def _answer(v: dict[str, str], item: Item | None, bad: Callable[[str, str], None]) -> Answer | None:
    """The row's answer to ``item`` (checked against the item when it is known)."""
    score, value = v.get("score") or "", v.get("value") or ""
    na = NA_FLAGS.get(v.get("not_applicable") or "")
    if na is None:
        bad("not_applicable", "must be 1 (not applicable), 0 or empty")
        return None
    if na:
        if score or value:
            bad("not_applicable", "is 1 but the row gives a score or value too; give one of them")
        elif item is not None and not item.allows_not_applicable:
            bad("not_applicable", f"{item.code} has no 'not applicable' choice")
        return NOT_APPLICABLE
    if item is not None and not item.is_numeric:
        return _text_answer(score, value, item, bad)
    if value:
        bad("value", "must be empty: give the score of this item in 'score'")
    if not score:
        bad("score", "is empty")
        return None
    allowed = f"from {item.scale.min} to {item.scale.max}" if item and item.scale else ""
    try:
        number = whole_number(score)
    except ValueError:
        bad("score", " ".join(("must be a whole number", allowed)).strip())
        return None
    if item is None:
        return number
    try:
        return item.answer(number)
    except ValueError as exc:
        if item.scale is not None:
            bad("score", f"out of range: {item.code} takes whole numbers {allowed}")
        else:
            bad("score", f"{item.code} {exc}")
        return None


def _text_answer(
    score: str, value: str, item: Item, bad: Callable[[str, str], None]
) -> Answer | None:
    """The answer of a nominal or text item, from ``value``."""
    what = "a category code" if item.kind == ItemKind.NOMINAL else "its text"
    if score:
        bad("score", f"must be empty: {item.code} is a {item.kind} item; give {what} in 'value'")
        return None
    if not value:
        bad("value", f"is empty: {item.code} takes {what} (or not_applicable = 1)")
        return None
    try:
        return item.answer(value)
    except ValueError as exc:
        bad("value", f"{item.code} {exc}")
        return None


@dataclass
class _File:
    """A checked file: its ratings by (session code, rater), the problems found, and the
    (line, session code) of rows refused for other reasons (their session is checked too)."""

    ratings: dict[tuple[str, str], FileRating]
    problems: list[Problem]
    refused: list[tuple[int, str]]


def _read_file(data: bytes, source: str, known: Known) -> _File:
    records, problems = read_csv_records(data, source, REQUIRED, lengths=LENGTHS)
    reader = _RowReader(source, known)
    ratings: dict[tuple[str, str], FileRating] = {}
    refused: list[tuple[int, str]] = []
    for record in records:
        record = record._replace(values={k: unneutralise(v) for k, v in record.values.items()})
        row, row_problems = reader.read(record)
        if row is None:
            problems.extend(row_problems)
            if record.values.get("session_id"):
                refused.append((record.line, record.values["session_id"]))
            continue
        session, rater, instrument, item, score, purpose, submitted_at = row
        rating = ratings.get((session, rater))
        if rating is None:
            rating = ratings[(session, rater)] = FileRating(
                session, rater, known.raters[rater], record.line
            )
        if item in rating.items:
            first = rating.lines[rating.items.index(item)]
            problems.append(
                Problem(
                    source,
                    record.line,
                    "item",
                    item,
                    f"duplicate: this rater already scored this item on line {first}",
                )
            )
            continue
        rating.items.append(item)
        rating.item_instruments.append(instrument)
        rating.scores.append(score)
        rating.lines.append(record.line)
        rating.instruments.add(instrument)
        if purpose is not None:
            rating.purposes.setdefault(purpose, record.line)
        if submitted_at is not None and (
            rating.submitted_at is None or submitted_at > rating.submitted_at
        ):
            rating.submitted_at = submitted_at
    return _File(ratings, problems, refused)


def _known() -> Known:
    versions = current_versions()
    instruments = {code: instrument_of(v) for code, v in versions.items()}
    raters = db.session.execute(
        select(USERS.c.username, USERS.c.id).where(USERS.c.role == Role.RATER)
    )
    return Known(
        raters=dict(raters.all()),
        instruments=instruments,
        version_ids={code: v.id for code, v in versions.items()},
        items={code: frozenset(i.item_codes) for code, i in instruments.items()},
    )


def import_ratings(
    data: bytes,
    source: str,
    progress: Callable[[int], None] | None = None,
    *,
    allow_incomplete: bool = False,
) -> RatingsImportResult:
    """Validate everything, then write; raise ImportFailed (writing nothing) on any problem.

    ``progress`` is called with the number of scores written so far. The audit events of an
    import name no user: imports run from the command line.
    """
    known = _known()
    db.session.flush()
    connection = db.session.connection()
    content = _read_file(data, source, known)
    problems = content.problems
    ratings = _with_known_sessions(connection, content, source)
    stored = _Stored.read(connection, ratings)
    problems += _purpose_problems(ratings, stored, source)
    problems += _scored_already(ratings, stored, source)
    incomplete = _incomplete(ratings, stored, known, source)
    if not allow_incomplete:
        problems += [_incomplete_problem(i) for i in incomplete]
    if problems:
        raise ImportFailed(in_file_order(problems))
    result = RatingsImportResult(incomplete=incomplete)
    for block in chunked(ratings, BLOCK):
        result.assignments_created += _write_block(connection, block, stored, known)
        result.ratings += len(block)
        result.scores += sum(len(r.items) for r in block)
        if progress:
            progress(result.scores)
    if ratings:
        data_version.bump()  # Core writes: the ORM's flush listener does not see them
    db.session.expire_all()  # assignments and ratings the ORM holds may have changed under it
    return result


def _with_known_sessions(connection: Connection, content: _File, source: str) -> list[FileRating]:
    """The file's ratings of stored sessions (with their ids); an unknown session is a problem
    on every row naming it."""
    codes = {code for code, _ in content.ratings} | {code for _, code in content.refused}
    ids = dict(
        select_in(connection, select(SESSIONS.c.code, SESSIONS.c.id), SESSIONS.c.code, codes)
    )
    unknown = [(line, code) for line, code in content.refused if code not in ids]
    ratings = []
    for rating in content.ratings.values():
        if rating.session in ids:
            rating.session_id = ids[rating.session]
            ratings.append(rating)
        else:
            unknown += [(line, rating.session) for line in rating.lines]
    content.problems += [
        Problem(source, line, "session_id", code, "unknown session") for line, code in unknown
    ]
    return ratings


@dataclass
class _Stored:
    """What the database already holds for the sessions of the file."""

    assignments: dict[tuple[int, int], tuple[int, str]]  # (session, rater) -> (id, purpose)
    main_raters: dict[int, str]  # session id -> username of its main rater
    ratings: dict[int, tuple[int, datetime | None]]  # assignment id -> (rating id, submitted)
    scored: dict[int, set[str]]  # rating id -> item codes scored
    pinned: dict[int, dict[int, Instrument]]  # rating id -> version id -> instrument

    def pinned_of(self, rating_id: int | None) -> dict[int, Instrument]:
        """What a stored rating has pinned (nothing for a rating not stored yet)."""
        return self.pinned.get(rating_id, {}) if rating_id is not None else {}

    def scored_of(self, rating_id: int | None) -> set[str]:
        """The items a stored rating has scores for (none for a rating not stored yet)."""
        return self.scored.get(rating_id, set()) if rating_id is not None else set()

    @classmethod
    def read(cls, connection: Connection, file_ratings: list[FileRating]) -> _Stored:
        stored = cls({}, {}, {}, defaultdict(set), defaultdict(dict))
        session_ids = sorted({r.session_id for r in file_ratings})
        found = select_in(
            connection,
            select(
                ASSIGNMENTS.c.session_id,
                ASSIGNMENTS.c.rater_id,
                ASSIGNMENTS.c.id,
                ASSIGNMENTS.c.purpose,
                USERS.c.username,
            ).join(USERS, USERS.c.id == ASSIGNMENTS.c.rater_id),
            ASSIGNMENTS.c.session_id,
            session_ids,
        )
        for session_id, rater_id, assignment_id, purpose, username in found:
            stored.assignments[(session_id, rater_id)] = (assignment_id, purpose)
            if purpose == Purpose.MAIN:
                stored.main_raters[session_id] = username
        pairs = {(r.session_id, r.rater_id) for r in file_ratings}
        stored._read_ratings(
            connection, [a for pair, (a, _) in stored.assignments.items() if pair in pairs]
        )
        return stored

    def _read_ratings(self, connection: Connection, assignment_ids: list[int]) -> None:
        found = select_in(
            connection,
            select(RATINGS.c.assignment_id, RATINGS.c.id, RATINGS.c.submitted_at),
            RATINGS.c.assignment_id,
            assignment_ids,
        )
        for assignment_id, rating_id, submitted_at in found:
            self.ratings[assignment_id] = (rating_id, submitted_at)
        rating_ids = [rating_id for rating_id, _ in self.ratings.values()]
        scores = select(SCORES.c.rating_id, SCORES.c.item_code)
        for rating_id, item in select_in(connection, scores, SCORES.c.rating_id, rating_ids):
            self.scored[rating_id].add(item)
        versions = table_of(InstrumentVersion)
        pins = select(
            rating_instruments.c.rating_id, versions.c.id, versions.c.code, versions.c.content_hash
        ).join(versions, versions.c.id == rating_instruments.c.instrument_version_id)
        for rating_id, *version in select_in(
            connection, pins, rating_instruments.c.rating_id, rating_ids
        ):
            [(version_id, instrument)] = instruments_of_rows([version])
            self.pinned[rating_id][version_id] = instrument


def _purpose_problems(ratings: list[FileRating], stored: _Stored, source: str) -> list[Problem]:
    """Settle each rating's purpose; the problems: purposes that differ within a rating or from
    its stored assignment, and a second main rater of a session."""
    problems = []
    new_mains: dict[int, list[tuple[int, FileRating]]] = defaultdict(list)
    for rating in ratings:
        existing = stored.assignments.get((rating.session_id, rating.rater_id))
        if len(rating.purposes) > 1:
            problems.append(
                Problem(source, rating.line, "purpose", None, "differs between rows of one rating")
            )
        if existing is not None:
            rating.assignment_id, rating.purpose = existing
            stated = next(iter(rating.purposes), rating.purpose)
            if stated != rating.purpose:
                problems.append(
                    Problem(
                        source,
                        rating.purposes[stated],
                        "purpose",
                        stated,
                        f"the existing assignment's purpose is {rating.purpose}",
                    )
                )
        elif rating.purposes:
            rating.purpose = min(rating.purposes, key=rating.purposes.__getitem__)
            if rating.purpose == Purpose.MAIN:
                new_mains[rating.session_id].append((rating.purposes[Purpose.MAIN], rating))
    for session_id, mains in new_mains.items():
        problems += _second_mains(sorted(mains), stored.main_raters.get(session_id), source)
    _default_purposes(ratings, stored, set(new_mains))
    return problems


def _second_mains(
    mains: list[tuple[int, FileRating]], stored_main: str | None, source: str
) -> list[Problem]:
    """A session has one main rater: every main rater the file adds after the first (or beside
    the stored one) is a problem on the line stating it."""
    if stored_main is not None:
        first, where = stored_main, "in the database"
        seconds = mains
    else:
        first_line, first_rating = mains[0]
        first, where = first_rating.rater, f"on line {first_line}"
        seconds = mains[1:]
    return [
        Problem(
            source,
            line,
            "purpose",
            Purpose.MAIN.value,
            f"second main rater of session {rating.session}: {first} is its main rater {where}",
        )
        for line, rating in seconds
    ]


def _default_purposes(ratings: list[FileRating], stored: _Stored, with_main: set[int]) -> None:
    """A purpose the file leaves open: ``main`` for the first such rater of a session without
    a main rater (stored or in the file), else ``double``."""
    with_main = with_main | set(stored.main_raters)
    for rating in ratings:
        if rating.purpose:
            continue
        rating.purpose = Purpose.DOUBLE if rating.session_id in with_main else Purpose.MAIN
        with_main.add(rating.session_id)


def _incomplete(
    ratings: list[FileRating], stored: _Stored, known: Known, source: str
) -> list[IncompleteRating]:
    """Ratings that would lack required items of their instruments (those pinned already and
    those the file scores)."""
    found = []
    for rating in ratings:
        rating_id = _stored_rating_id(rating, stored)
        instruments = {i.code: i for i in stored.pinned_of(rating_id).values()}
        instruments |= {code: known.instruments[code] for code in rating.instruments}
        scored = stored.scored_of(rating_id) | set(rating.items)
        missing = [
            code
            for _, instrument in sorted(instruments.items())
            for code in instrument.required_item_codes
            if code not in scored
        ]
        if missing:
            found.append(
                IncompleteRating(source, rating.line, rating.session, rating.rater, tuple(missing))
            )
    return found


def _incomplete_problem(rating: IncompleteRating) -> Problem:
    return Problem(
        rating.file,
        rating.line,
        None,
        None,
        f"the rating of session {rating.session} by {rating.rater} lacks required items "
        f"{', '.join(rating.missing)} (import it anyway with --allow-incomplete)",
    )


def _stored_rating_id(rating: FileRating, stored: _Stored) -> int | None:
    if rating.assignment_id is None or rating.assignment_id not in stored.ratings:
        return None
    return stored.ratings[rating.assignment_id][0]


def _scored_already(ratings: list[FileRating], stored: _Stored, source: str) -> list[Problem]:
    """Rows scoring an item the stored rating has a score for already (one score per item)."""
    problems = []
    for rating in ratings:
        scored = stored.scored_of(_stored_rating_id(rating, stored))
        problems += [
            Problem(
                source,
                line,
                "item",
                item,
                "duplicate: this rater's rating already has a score for this item",
            )
            for item, line in zip(rating.items, rating.lines, strict=True)
            if item in scored
        ]
    return problems


def _write_block(
    connection: Connection, block: list[FileRating], stored: _Stored, known: Known
) -> int:
    """Write one block of checked ratings; the number of assignments it created."""
    now = utcnow()
    stored_assignments = [r.assignment_id for r in block if r.assignment_id is not None]
    update_in(
        connection,
        update(ASSIGNMENTS).values(status=AssignmentStatus.SUBMITTED),
        ASSIGNMENTS.c.id,
        stored_assignments,
    )
    created = _create_assignments(connection, [r for r in block if r.assignment_id is None])
    fresh = [r for r in block if r.assignment_id not in stored.ratings]
    insert_rows(
        connection,
        RATINGS,
        (
            {
                "assignment_id": r.assignment_id,
                "status": RatingStatus.SUBMITTED,
                "submitted_at": r.submitted_at or now,
            }
            for r in fresh
        ),
    )
    ids = dict(
        select_in(
            connection,
            select(RATINGS.c.assignment_id, RATINGS.c.id),
            RATINGS.c.assignment_id,
            [r.assignment_id for r in fresh],
        )
    )
    for rating in fresh:
        rating.rating_id = ids[rating.assignment_id]
    _submit_stored(connection, [r for r in block if r.assignment_id in stored.ratings], stored, now)
    insert_rows(connection, rating_instruments, _new_pins(block, stored, known))
    insert_rows(
        connection,
        SCORES,
        (
            {
                "rating_id": r.rating_id,
                "instrument_version_id": known.version_ids[instrument],
                "item_code": item,
                **dict(zip(ANSWER_COLUMNS, Item.columns(answer), strict=True)),
            }
            for r in block
            for item, instrument, answer in zip(r.items, r.item_instruments, r.scores, strict=True)
        ),
    )
    events = (
        (r.rating_id, None, {i: answer_json(a) for i, a in zip(r.items, r.scores, strict=True)})
        for r in block
    )
    insert_audit_events(connection, "rating.import", "rating", events)
    return created


def _create_assignments(connection: Connection, new: list[FileRating]) -> int:
    insert_rows(
        connection,
        ASSIGNMENTS,
        (
            {
                "session_id": r.session_id,
                "rater_id": r.rater_id,
                "purpose": r.purpose,
                "status": AssignmentStatus.SUBMITTED,
            }
            for r in new
        ),
    )
    ids = {
        (session_id, rater_id): assignment_id
        for session_id, rater_id, assignment_id in select_in(
            connection,
            select(ASSIGNMENTS.c.session_id, ASSIGNMENTS.c.rater_id, ASSIGNMENTS.c.id),
            ASSIGNMENTS.c.session_id,
            sorted({r.session_id for r in new}),
        )
    }
    for rating in new:
        rating.assignment_id = ids[(rating.session_id, rating.rater_id)]
    return len(new)


def _submit_stored(
    connection: Connection, ratings: list[FileRating], stored: _Stored, now: datetime
) -> None:
    """Stored ratings the file adds scores to: submitted, at the file's latest time, else the
    time they had, else now."""
    changes = []
    for rating in ratings:
        assert rating.assignment_id is not None  # a stored rating has its assignment
        rating.rating_id, submitted_at = stored.ratings[rating.assignment_id]
        changes.append(
            {"rating": rating.rating_id, "submitted_at": rating.submitted_at or submitted_at or now}
        )
    statement = (
        update(RATINGS)
        .where(RATINGS.c.id == bindparam("rating"))
        .values(status=RatingStatus.SUBMITTED, submitted_at=bindparam("submitted_at"))
    )
    update_rows(connection, statement, changes)


def _new_pins(block: list[FileRating], stored: _Stored, known: Known) -> Iterable[dict[str, Any]]:
    """The instrument versions each rating uses and has not pinned yet."""
    for rating in block:
        pinned = stored.pinned_of(rating.rating_id)
        for code in sorted(rating.instruments):
            if known.version_ids[code] not in pinned:
                yield {
                    "rating_id": rating.rating_id,
                    "instrument_version_id": known.version_ids[code],
                }
