"""SPSS ``.sav`` and Stata ``.dta`` files of the ``wide`` and ``sessions`` exports, with variable
labels (the codebook's labels) and value labels (the anchors of ordinal items, the categories of
nominal items), written with pyreadstat.

Nominal items are stored as numbers (``Item.category_number``: 1, 2, ... in file order) with
their category labels as value labels; several categories of one answer stay text. "Not
applicable" is missing, as in the CSV files. Names that SPSS and Stata do not accept (a hyphen)
are written with an underscore.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

from rater.export.tables import VersionedInstrument, columns_of
from rater.instruments import ItemKind

STATS_FORMATS = ("sav", "dta")
STATS_KINDS = ("wide", "sessions")


def variable_name(name: str) -> str:
    """A name SPSS and Stata accept: letters, digits and underscores, at most 32 characters."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)[:32]


def labelled(
    frame: pd.DataFrame, kind: str, instruments: Sequence[VersionedInstrument]
) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict[float, str]]]:
    """The frame as the statistics packages take it, its variable labels and value labels."""
    out = pd.DataFrame(index=frame.index)
    value_labels: dict[str, dict[float, str]] = {}
    items = {i.code: i for vi in instruments for i in vi.instrument.items}
    for name in frame.columns:
        column = frame[name]
        item = items.get(name)
        target = variable_name(name)
        if item is not None and item.kind == ItemKind.NOMINAL and not item.multiple:
            out[target] = column.map(
                lambda v, item=item: item.category_number(v) if isinstance(v, str) else None
            ).astype("float64")
            value_labels[target] = {
                float(item.category_number(c)): label for c, label in item.categories.items()
            }
            continue
        if item is not None and item.kind == ItemKind.ORDINAL and item.anchors:
            value_labels[target] = {float(p): text for p, text in item.anchors.items()}
        out[target] = _plain(column)
    labels = {variable_name(c.name): c.label[:80] for c in columns_of(kind, instruments, None)}
    return out, {c: labels.get(c, c) for c in out.columns}, value_labels


def _plain(column: pd.Series) -> pd.Series:
    """Nullable integers and booleans as floats (NaN missing), text as Python strings."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
        return column.astype("float64")
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column
    return column.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))


def write_stats(
    frame: pd.DataFrame,
    fmt: str,
    kind: str,
    instruments: Sequence[VersionedInstrument],
    target: IO[bytes],
) -> dict[str, Any]:
    """Write ``frame`` as .sav or .dta to ``target``; the meta figures (rows, columns)."""
    import pyreadstat

    data, labels, values = labelled(frame, kind, instruments)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"export.{fmt}"
        names = list(data.columns)
        column_labels: list[str | None] = [labels[c] for c in names]
        if fmt == "sav":
            pyreadstat.write_sav(
                data, str(path), column_labels=column_labels, variable_value_labels=values
            )
        else:
            pyreadstat.write_dta(
                data, str(path), column_labels=column_labels, variable_value_labels=values
            )
        content = path.read_bytes()
        target.write(content)
    return {
        "rows": len(data),
        "columns": names,
        "file_sha256": hashlib.sha256(content).hexdigest(),
    }
