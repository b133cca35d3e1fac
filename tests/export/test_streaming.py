"""The ``long`` export streams from the one ratings query: same bytes however it is cut."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import event

from rater.export import service
from rater.extensions import db
from rater.rating.frame import ratings_frame


def export(runner, path, *options: str) -> bytes:
    result = runner.invoke(args=["export", "long", "-o", str(path), *options])
    assert result.exit_code == 0, result.output
    return path.read_bytes()


@pytest.mark.parametrize("options", [(), ("--include-drafts", "--excel")])
@pytest.mark.usefixtures("study")
def test_long_bytes_do_not_depend_on_the_chunk_size(runner, tmp_path, monkeypatch, options) -> None:
    whole = export(runner, tmp_path / "default.csv", *options)
    for chunk_rows in (1, 7):
        monkeypatch.setattr(service, "LONG_CHUNK_ROWS", chunk_rows)
        assert export(runner, tmp_path / f"{chunk_rows}.csv", *options) == whole, chunk_rows


@pytest.mark.usefixtures("study")
def test_the_stream_is_the_long_table_of_the_frame() -> None:
    from rater.export import tables

    options = service.Options(include_drafts=True)
    chunks = list(service.stream_long(options, 7))
    assert len(chunks) == -(-len(ratings_frame(include_drafts=True)) // 7)
    pd.testing.assert_frame_equal(
        pd.concat(chunks, ignore_index=True),
        tables.long_table(ratings_frame(include_drafts=True)),
    )


@pytest.mark.usefixtures("study")
def test_long_export_reads_the_scores_with_one_query(runner, tmp_path) -> None:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        export(runner, tmp_path / "long.csv")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    rows = [s for s in statements if "FROM item_scores" in s and "count(" not in s]
    counts = [s for s in statements if "FROM item_scores" in s and "count(" in s]
    assert len(rows) == 1 and "ORDER BY" in rows[0]
    assert len(counts) == 1  # the total for the progress bar
    assert len(statements) <= 3, statements  # + the instrument versions (item layout)


@pytest.mark.usefixtures("study")
def test_long_parquet_streams_the_same_table(runner, tmp_path, monkeypatch) -> None:
    export(runner, tmp_path / "long.csv", "--include-drafts")
    monkeypatch.setattr(service, "LONG_CHUNK_ROWS", 7)
    export(runner, tmp_path / "long.parquet", "--include-drafts")
    back = pd.read_parquet(tmp_path / "long.parquet")
    csv = pd.read_csv(tmp_path / "long.csv")
    assert list(back.columns) == list(csv.columns)
    for column in ("session_id", "rater", "item", "score"):
        assert back[column].tolist() == csv[column].tolist(), column
    assert back["subscale"].isna().tolist() == csv["subscale"].isna().tolist()
    assert back["submitted_at"].isna().sum() == (back["rating_status"] == "draft").sum() > 0
