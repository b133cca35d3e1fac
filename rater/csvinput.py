"""Reading CSV uploads: decoding, header checks and problems that name file, line and column.

Both importers (sessions and ratings) read through ``read_csv_records`` so they report bad
input the same way and never half-write: they collect every problem first and change the
database only when there are none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MAX_FIELD = 100_000


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


class ImportFailed(Exception):
    """An import found problems; nothing was written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported")


@dataclass(frozen=True)
class Record:
    line: int
    values: dict[str, str]


def decode(data: bytes, source: str) -> str:
    """UTF-8 (a BOM is allowed); anything else is refused with the byte offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed(
            [Problem(source, line, None, None, "the file is not UTF-8 text; save it as UTF-8")]
        ) from None


def read_csv_records(
    data: bytes, source: str, required: Sequence[str], optional: Sequence[str] = ()
) -> tuple[list[Record], list[Problem]]:
    """Rows as dicts of stripped strings keyed by lower-case column name, with line numbers.

    Unknown extra columns are ignored (so an export can be imported back); missing required
    columns, a missing header, ragged rows and oversized fields are problems.
    """
    text = decode(data, source)
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [Problem(source, 1, None, None, "the file is empty; a header row is needed")]
    except csv.Error as exc:
        return [], [Problem(source, 1, None, None, f"the header cannot be read: {exc}")]
    columns = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in columns]
    if missing:
        return [], [
            Problem(source, 1, c, None, "required column is missing from the header")
            for c in missing
        ]
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        return [], [Problem(source, 1, c, None, "column appears twice") for c in dupes]
    records: list[Record] = []
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
        too_long = [c for c, v in values.items() if len(v) > MAX_FIELD]
        for c in too_long:
            problems.append(Problem(source, line, c, None, f"field longer than {MAX_FIELD}"))
        if not too_long:
            records.append(Record(line, values))
    return records, problems


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
