"""Reading CSV uploads: decoding, header checks and problems that name file, line and column.

Both importers (sessions and ratings) read through ``read_csv_records`` so they report bad
input the same way and never half-write: they collect every problem first and change the
database only when there are none.

A value is refused here, with its line and column, when no database column could hold it: a NUL
character (PostgreSQL cannot store one), a lone surrogate (not Unicode text; neither driver can
encode it), or more characters than the column takes. The checks are the same whichever engine
runs, so a file is accepted or refused alike on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

MAX_FIELD = 100_000
# An INTEGER column holds at most this on PostgreSQL (SQLite's hold more; the limit is checked
# here so that both engines take the same values).
INT_MAX = 2_147_483_647
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column '{self.column}'"
        shown = "" if self.value is None else f" (value {_short(self.value)!r})"
        return f"{where}: {self.message}{shown}"


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def in_file_order(problems: Iterable[Problem]) -> list[Problem]:
    """Problems by line, then column (as a reader of the file meets them)."""
    return sorted(problems, key=lambda p: (p.line or 0, p.column or ""))


class ImportFailed(Exception):
    """An import found problems; nothing was written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported")


class Record(NamedTuple):
    line: int
    values: dict[str, str]


def decode(data: bytes, source: str) -> str:
    """UTF-8 (a BOM is allowed); anything else is refused with its line.

    Surrogates encoded as UTF-8 bytes pass decoding so that the field holding one is named
    (``read_csv_records`` refuses it with its line and column).
    """
    try:
        return data.decode("utf-8-sig", errors="surrogatepass")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed(
            [Problem(source, line, None, None, "the file is not UTF-8 text; save it as UTF-8")]
        ) from None


def whole_number(text: str, low: int | None = None, high: int | None = None) -> int:
    """``text`` as an integer (from ``low`` to ``high`` when given); ValueError for anything else.

    Only ASCII digits with an optional sign count (Python's ``int`` would also take ``1_000``
    and digits of other scripts).
    """
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (0 < len(digits) <= 30 and digits.isascii() and digits.isdigit()):
        raise ValueError(text)
    number = int(text)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(text)
    return number


def _text_stream(data: bytes, source: str) -> tuple[io.TextIOWrapper, bool]:
    """The file as text read line by line, and whether it holds a character no column stores.

    The decoded text is only held for these checks: kept whole in a text buffer it would take
    four bytes a character. Most files hold no unstorable character; then a value needs a look
    only in a row long enough to hold an over-long field, or where its column has a limit.
    """
    text = decode(data, source)
    characters = _UNSTORABLE.search(text) is not None
    del text
    stream = io.TextIOWrapper(
        io.BytesIO(data), encoding="utf-8-sig", errors="surrogatepass", newline=""
    )
    return stream, characters


def read_csv_records(
    data: bytes,
    source: str,
    required: Sequence[str],
    lengths: Mapping[str, int] | None = None,
) -> tuple[Iterator[Record], list[Problem]]:
    """Rows as dicts of stripped strings keyed by lower-case column name, with line numbers.

    The rows come one at a time (a file of a million rows is never held as dicts); the list of
    problems is complete once they have all been read. Unknown extra columns are ignored (so an
    export can be imported back); a missing header, missing required columns, ragged rows and
    values no column could store (see the module docstring; ``lengths`` gives the most
    characters of a column) are problems, and such a row is not yielded.
    """
    stream, characters = _text_stream(data, source)
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return iter(()), [
            Problem(source, 1, None, None, "the file is empty; a header row is needed")
        ]
    except csv.Error as exc:
        return iter(()), [Problem(source, 1, None, None, f"the header cannot be read: {exc}")]
    columns = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in columns]
    if missing:
        return iter(()), [
            Problem(source, 1, c, None, "required column is missing from the header")
            for c in missing
        ]
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        return iter(()), [Problem(source, 1, c, None, "column appears twice") for c in dupes]
    problems: list[Problem] = []
    limits = {c: n for c, n in (lengths or {}).items() if c in columns}
    return _records(reader, columns, source, problems, limits, characters), problems


def _records(
    reader, columns: list[str], source: str, problems: list[Problem], limits, characters: bool
) -> Iterator[Record]:
    for line, row in _rows(reader, source, problems):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            problems.append(
                Problem(
                    source, line, None, None, f"has {len(row)} fields, the header {len(columns)}"
                )
            )
            continue
        values = {c: v.strip() for c, v in zip(columns, row, strict=True) if c}
        scan_all = characters or sum(map(len, row)) > MAX_FIELD
        found = _unstorable(values, source, line, limits, scan_all)
        if found:
            problems.extend(found)
        else:
            yield Record(line, values)


def _unstorable(
    values: dict[str, str], source: str, line: int, limits: Mapping[str, int], scan_all: bool
) -> list[Problem]:
    """Problems of the values of one row that no database column could store."""
    if not scan_all:
        return [
            _too_long(source, line, column, values[column], limit)
            for column, limit in limits.items()
            if len(values[column]) > limit
        ]
    found = []
    for column, value in values.items():
        if len(value) > MAX_FIELD:
            found.append(Problem(source, line, column, None, f"field longer than {MAX_FIELD}"))
        elif bad := _UNSTORABLE.search(value):
            found.append(Problem(source, line, column, value, _character_message(bad.group())))
        elif column in limits and len(value) > limits[column]:
            found.append(_too_long(source, line, column, value, limits[column]))
    return found


def _too_long(source: str, line: int, column: str, value: str, limit: int) -> Problem:
    return Problem(source, line, column, value, f"longer than {limit} characters")


def _character_message(character: str) -> str:
    if character == "\x00":
        return "contains a NUL character, which no database column can store"
    return (
        f"contains a lone surrogate (U+{ord(character):04X}), which is not Unicode text; "
        "save the file as UTF-8"
    )


def _rows(reader, source: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(Problem(source, reader.line_num, None, None, f"unreadable: {exc}"))
            return
        yield start, row
        start = reader.line_num + 1
