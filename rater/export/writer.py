"""Writing export tables: CSV and Parquet (streamed in chunks), xlsx, and the companion meta file.

CSV conventions (RFC 4180): UTF-8 (a BOM only for Excel), a header row, no index column, CRLF,
missing values as empty cells, dates as ``YYYY-MM-DD`` and times as ISO 8601 UTC
(``2024-05-01T10:15:00Z``, microseconds only when present). Text cells that a spreadsheet would
run as a formula get a leading single quote (OWASP's advice; ``rater.spreadsheet``, whose
``unneutralise`` the importers use to undo it exactly); numeric columns are never touched, so
``-1.5`` stays a number.
The same table gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeAlias

import numpy as np
import pandas as pd

from rater.spreadsheet import neutralise

CHUNK_ROWS = 50_000
XLSX_MAX_ROWS = 1_048_575
BOM = "\ufeff".encode()
# RFC 4180 line ends; the csv module then also quotes fields holding a bare CR or LF.
LINE_END = "\r\n"


def _iso_datetime(value: pd.Timestamp | dt.datetime) -> str:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if stamp.microsecond:
        text += f".{stamp.microsecond:06d}"
    return text + "Z"


def _cell_text(value: Any) -> str | None:
    """One distinct value of a text (object) column as written."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return _iso_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return neutralise(str(value))


def _format_by_uniques(column: pd.Series, convert: Callable[[Any], str | None]) -> pd.Series:
    """Convert each distinct value once (columns repeat a lot: codes, items, timestamps)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    converted = np.array([convert(v) for v in uniques] + [None], dtype=object)
    return pd.Series(converted[codes], index=column.index, dtype=object)


def _iso_datetimes(column: pd.Series) -> pd.Series:
    """Vectorised ISO 8601 UTC text of a datetime column (each distinct value once)."""
    if column.dt.tz is not None:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    stamps = np.asarray(uniques, dtype="datetime64[us]")
    whole = np.datetime_as_string(stamps, unit="s")
    fine = np.datetime_as_string(stamps, unit="us")
    has_fraction = stamps.astype("int64") % 1_000_000 != 0
    text = np.where(has_fraction, fine, whole).astype(object) + "Z"
    text = np.append(text, np.array([None], dtype=object))  # code -1: missing
    return pd.Series(text[codes], index=column.index, dtype=object)


def _neutralise_strings(column: pd.Series) -> pd.Series:
    """A string column with formula-like cells quoted.

    A cell starting with a letter or digit never needs a quote (every trigger of
    :func:`neutralise` is a quote, whitespace or a symbol), so only the other cells go through
    it, each distinct value once; most columns (codes, items, names) have none.
    """
    maybe = ~column.str.slice(0, 1).str.isalnum().fillna(True).astype(bool)
    if not maybe.any():
        return column
    return column.where(~maybe, _format_by_uniques(column[maybe], neutralise))


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as written to text formats: datetimes ISO, text neutralised, numbers as is."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            out[name] = _iso_datetimes(column)
        elif pd.api.types.is_bool_dtype(column):
            out[name] = column.astype("Int64")
        elif isinstance(column.dtype, pd.StringDtype):
            out[name] = _neutralise_strings(column)
        elif column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = _format_by_uniques(column.astype(object), _cell_text)
        else:
            out[name] = column
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


class _HashingWriter:
    """Writes bytes to a binary file while hashing the file and its data rows."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.file_hash = hashlib.sha256()
        self.rows_hash = hashlib.sha256()

    def write(self, data: bytes, rows: bool) -> None:
        self.target.write(data)
        self.file_hash.update(data)
        if rows:
            self.rows_hash.update(data)


def _chunks(frame: pd.DataFrame, size: int) -> Iterable[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


Frames: TypeAlias = pd.DataFrame | Iterable[pd.DataFrame]


def _first_and_rest(frames: Frames, size: int) -> tuple[pd.DataFrame, Iterable[pd.DataFrame]]:
    """The first frame (for the header or schema) and every chunk of at most ``size`` rows.

    A single frame is cut into chunks; an iterable of frames (a stream of unknown length, at
    least one frame, all with the same columns) is cut further where a frame is larger.
    """
    if isinstance(frames, pd.DataFrame):
        return frames, _chunks(frames, size)
    stream: Iterator[pd.DataFrame] = iter(frames)
    first = next(stream, None)
    if first is None:
        raise ValueError("no frame to write: give at least one (possibly empty) frame")

    def chunks() -> Iterator[pd.DataFrame]:
        for frame in itertools.chain([first], stream):
            yield from _chunks(frame, size)

    return first, chunks()


def write_csv(
    frames: Frames,
    target: IO[bytes],
    *,
    excel: bool = False,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Stream a table as CSV to a binary file in chunks; return rows, columns and hashes.

    ``frames`` is one DataFrame or an iterable of DataFrames with the same columns (the table
    in order, e.g. :func:`rater.rating.frame.iter_ratings_frames`): memory is then bounded by
    one chunk and its formatted text. The bytes do not depend on how the table is cut.
    ``rows_sha256`` hashes the data rows as written (UTF-8, without the BOM and the header).
    """
    first, chunks = _first_and_rest(frames, chunk_rows)
    out = _HashingWriter(target)
    if excel:
        out.write(BOM, rows=False)
    header = io.StringIO()
    first.iloc[:0].to_csv(header, index=False, lineterminator=LINE_END)
    out.write(header.getvalue().encode("utf-8"), rows=False)
    done = 0
    for chunk in chunks:
        if chunk.empty:
            continue
        buffer = io.StringIO()
        prepare(chunk).to_csv(buffer, header=False, index=False, lineterminator=LINE_END, na_rep="")
        out.write(buffer.getvalue().encode("utf-8"), rows=True)
        done += len(chunk)
        if progress:
            progress(done)
    return {
        "rows": done,
        "columns": list(map(str, first.columns)),
        "rows_sha256": out.rows_hash.hexdigest(),
        "file_sha256": out.file_hash.hexdigest(),
    }


def _xlsx_value(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, float) and np.isinf(value):
        return str(value)  # Excel has no infinity: the text CSV holds, '-inf' or 'inf'
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_xlsx(
    sheets: dict[str, pd.DataFrame],
    target: IO[bytes],
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """One sheet per table (write-only workbook, bounded memory); text cells neutralised."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    book.properties.creator = "rater"
    book.properties.created = book.properties.modified = dt.datetime(2000, 1, 1)
    done = 0
    for name, frame in sheets.items():
        if len(frame) > XLSX_MAX_ROWS:
            raise ValueError(f"{name}: {len(frame)} rows do not fit an Excel sheet; use CSV")
        sheet = book.create_sheet(title=name[:31])
        sheet.append([str(c) for c in frame.columns])
        for chunk in _chunks(frame, CHUNK_ROWS):
            for row in prepare(chunk).itertuples(index=False, name=None):
                sheet.append([_xlsx_value(v) for v in row])
            done += len(chunk)
            if progress:
                progress(done)
    book.save(target)
    return {
        "rows": {name: len(frame) for name, frame in sheets.items()},
        "columns": {name: list(map(str, frame.columns)) for name, frame in sheets.items()},
    }


def write_parquet(
    frames: Frames,
    target: IO[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Typed columns as they are (no formula neutralisation: Parquet is not a spreadsheet).

    Written one row group per chunk, so a stream of frames needs memory for one chunk only.
    The schema comes from the first frame, with text columns typed as strings even where that
    frame holds no value (a later chunk may).
    """
    import pyarrow.parquet as pq

    first, chunks = _first_and_rest(frames, chunk_rows)
    schema = _arrow_schema(first)
    done = 0
    with pq.ParquetWriter(target, schema) as parquet:
        for chunk in chunks:
            if chunk.empty:
                continue
            parquet.write_table(_arrow_table(chunk, schema))
            done += len(chunk)
            if progress:
                progress(done)
    return {"rows": done, "columns": list(map(str, first.columns))}


def _arrow_schema(frame: pd.DataFrame):
    import pyarrow as pa

    schema = pa.Schema.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    for index, field in enumerate(schema):
        if pa.types.is_null(field.type):
            schema = schema.set(index, field.with_type(pa.string()))
    return schema


def _arrow_table(frame: pd.DataFrame, schema):
    import pyarrow as pa

    return pa.Table.from_pandas(frame.reset_index(drop=True), schema=schema, preserve_index=False)


def meta_path(path: Path) -> Path:
    """``study.csv`` -> ``study.csv.meta.json``."""
    return path.with_name(path.name + ".meta.json")


def meta_document(
    version: str,
    kind: str,
    fmt: str,
    options: dict[str, Any],
    written: dict[str, Any],
    *,
    exported_at: dt.datetime,
    resolution: dict[str, Any] | None,
) -> dict[str, Any]:
    """What an analysis needs to cite exactly the export it used (``exported_at``: naive UTC)."""
    return {
        "tool": "rater",
        "tool_version": version,
        "exported_at": exported_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kind": kind,
        "format": fmt,
        "options": options,
        "resolution": resolution,
        **written,
    }


def write_meta(path: Path, document: dict[str, Any]) -> None:
    path.write_text(
        json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
