"""CSV / xlsx / Parquet writing: formula neutralisation, encoding, determinism, read-back."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rater import spreadsheet
from rater.export import writer

UMLAUTS = "Übung für Gefühle – Spaziergang"


def sample() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": ["=SUM(A1:A2)", "+1", "-x", "@cmd", "\tx", "\rx", UMLAUTS, None],
            "code": ["P01", "P02", "a,b", 'say "hi"', "multi\nline", "", "ok", "z"],
            "number": [-1.5, 2.25, np.nan, 0.0, 1e-7, 3.0, -2.0, 4.5],
            "count": pd.array([1, None, -3, 4, 5, 6, 7, 8], dtype="Int64"),
            "when": pd.to_datetime(
                [
                    "2024-03-01 09:30:15.123456",
                    "2024-03-01 09:30:15",
                    None,
                    "2024-12-31 23:59:59",
                    "2024-01-01",
                    "2024-01-01",
                    "2024-01-01",
                    "2024-01-01",
                ],
                format="ISO8601",
            ),
            "day": [dt.date(2024, 1, 9), None, *[dt.date(2024, 2, 1)] * 6],
        }
    )


def write(frame: writer.Frames, **kwargs) -> tuple[bytes, dict]:
    buffer = io.BytesIO()
    written = writer.write_csv(frame, buffer, **kwargs)
    return buffer.getvalue(), written


def test_formula_like_text_is_neutralised_and_numbers_stay_numbers() -> None:
    data, _ = write(sample())
    back = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])
    assert back["text"].tolist()[:6] == ["'=SUM(A1:A2)", "'+1", "'-x", "'@cmd", "'\tx", "'\rx"]
    assert back["text"][6] == UMLAUTS and pd.isna(back["text"][7])
    assert back["number"].dtype == float and back["number"][0] == -1.5
    assert back["count"][0] == 1 and pd.isna(back["count"][1]) and back["count"][2] == -3
    assert back["code"].tolist()[2:5] == ["a,b", 'say "hi"', "multi\nline"]


# Cells a spreadsheet would still run as a formula: whitespace or a line break before the
# formula character, and the full-width forms of = + - @ (which Excel reads as formulas too).
HIDDEN_FORMULAS = [
    " =SUM(A1)",
    "  +1",
    "\n=1+1",
    "\r\n-2",
    "\u00a0@cmd",
    "\u3000=1",
    "\uff1dSUM(A1)",
    "\uff0b1",
    "\uff0d1",
    "\uff20cmd",
    " \uff1d1",
]
HARMLESS = ["a = b", "x+1", "P01-S01", "' quoted", "'", "", "note\n=1", "\u00fcber"]


@pytest.mark.parametrize("text", HIDDEN_FORMULAS)
def test_formulas_behind_whitespace_or_in_full_width_are_neutralised(text: str) -> None:
    assert spreadsheet.neutralise(text) == "'" + text
    frame = pd.DataFrame({"object": pd.Series([text], dtype=object), "string": [text]})
    assert str(frame["string"].dtype) != "object"  # both column paths of prepare()
    prepared = writer.prepare(frame)
    assert prepared["object"][0] == prepared["string"][0] == "'" + text
    data, _ = write(frame)
    back = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert back.iloc[0].tolist() == ["'" + text] * 2
    book = io.BytesIO()
    writer.write_xlsx({"cells": frame}, book)
    sheet = pd.read_excel(io.BytesIO(book.getvalue()), dtype=str)
    in_xml = text.replace("\r\n", "\n")  # XML reads CR LF back as LF
    assert sheet.iloc[0].tolist() == ["'" + in_xml] * 2


@pytest.mark.parametrize("text", HARMLESS)
def test_text_that_starts_no_formula_is_left_alone(text: str) -> None:
    assert spreadsheet.neutralise(text) == text


def test_a_quote_before_a_formula_gets_one_more_so_removing_one_is_exact() -> None:
    assert spreadsheet.neutralise("'=1") == "''=1"  # not "'=1", which is how "=1" is written
    assert spreadsheet.unneutralise("''=1") == "'=1" and spreadsheet.unneutralise("'=1") == "=1"
    assert spreadsheet.unneutralise("' quoted") == "' quoted"  # a quote before harmless text stays


formula_like = st.text(alphabet=st.sampled_from(list("'=+-@ \t\r\n\u3000\uff1d\uff20ab1")))


@given(st.one_of(formula_like, st.text()))
def test_unneutralise_inverts_neutralise(text: str) -> None:
    written = spreadsheet.neutralise(text)
    assert written in (text, "'" + text)
    assert spreadsheet.unneutralise(written) == text
    # Independently of the module's pattern: what a spreadsheet sees never starts a formula.
    starts = written.lstrip()[:1]
    assert written.startswith("'") or (
        written[:1] not in {"\t", "\r"} and starts not in set("=+-@\uff1d\uff0b\uff0d\uff20")
    )


@given(st.lists(st.one_of(st.none(), formula_like, st.text()), max_size=12))
def test_both_text_column_paths_quote_exactly_what_neutralise_quotes(values: list) -> None:
    frame = pd.DataFrame({"text": pd.Series(values, dtype="str"), "object": values})
    frame["object"] = frame["object"].astype(object)
    prepared = writer.prepare(frame)
    expected = [None if v is None else spreadsheet.neutralise(v) for v in values]
    for name in ("text", "object"):
        assert [None if pd.isna(v) else v for v in prepared[name]] == expected, name


def test_dates_are_iso_and_missing_values_empty() -> None:
    data, _ = write(sample())
    text = data.decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == "text,code,number,count,when,day"
    assert "2024-03-01T09:30:15.123456Z,2024-01-09" in lines[1]
    assert lines[2].endswith(",2024-03-01T09:30:15Z,")
    assert ",,-3,," in text  # missing number, count -3, missing time
    assert "nan" not in text.lower() and "<NA>" not in text and "NaT" not in text
    assert not text.startswith("\ufeff") and not text.startswith(",")  # no BOM, no index


def test_excel_adds_a_bom_and_hashes_cover_rows_only() -> None:
    plain, meta_plain = write(sample())
    excel, meta_excel = write(sample(), excel=True)
    assert excel == writer.BOM + plain
    assert meta_plain["rows_sha256"] == meta_excel["rows_sha256"]
    body = plain.split(b"\r\n", 1)[1]
    assert meta_plain["rows_sha256"] == hashlib.sha256(body).hexdigest()
    assert meta_excel["file_sha256"] == hashlib.sha256(excel).hexdigest()
    assert meta_plain["rows"] == 8


def test_bytes_do_not_depend_on_the_chunk_size() -> None:
    frame = pd.concat([sample()] * 50, ignore_index=True)
    whole, _ = write(frame)
    assert write(frame, chunk_rows=7)[0] == whole
    assert write(frame.copy(), chunk_rows=1000)[0] == whole


def test_progress_reports_rows_written() -> None:
    seen: list[int] = []
    write(pd.concat([sample()] * 5, ignore_index=True), chunk_rows=16, progress=seen.append)
    assert seen == [16, 32, 40]


def test_empty_table_has_a_header_only() -> None:
    data, written = write(sample().iloc[:0])
    assert data == b"text,code,number,count,when,day\r\n" and written["rows"] == 0


def test_xlsx_neutralises_text_and_reads_back() -> None:
    buffer = io.BytesIO()
    writer.write_xlsx({"one": sample(), "two": sample().iloc[:2]}, buffer)
    sheets = pd.read_excel(io.BytesIO(buffer.getvalue()), sheet_name=None)
    assert list(sheets) == ["one", "two"]
    one = sheets["one"]
    assert one["text"][0] == "'=SUM(A1:A2)" and one["text"][6] == UMLAUTS
    assert one["number"][0] == -1.5 and one["when"][0] == "2024-03-01T09:30:15.123456Z"


def test_parquet_keeps_types() -> None:
    buffer = io.BytesIO()
    writer.write_parquet(sample(), buffer)
    back = pd.read_parquet(io.BytesIO(buffer.getvalue()))
    assert back["text"][0] == "=SUM(A1:A2)"  # raw: Parquet is not a spreadsheet
    assert str(back["count"].dtype) == "Int64" and back["number"][0] == -1.5
    assert back["when"][0] == pd.Timestamp("2024-03-01 09:30:15.123456")


@pytest.mark.r
@pytest.mark.parametrize("excel", [False, True])
def test_r_reads_the_csv(tmp_path, read_r, excel: bool) -> None:
    path = tmp_path / "sample.csv"
    path.write_bytes(write(sample(), excel=excel)[0])
    classes, back = read_r(path, bom=excel)
    assert classes == {
        "text": "character",
        "code": "character",
        "number": "numeric",
        "count": "integer",
        "when": "character",
        "day": "character",
    }
    assert back["text"][6] == UMLAUTS and back["text"][0] == "'=SUM(A1:A2)"
    assert back["code"][4] == "multi\nline"
    assert float(back["number"][0]) == -1.5 and back["count"][2] == "-3"
    assert back["when"][0] == "2024-03-01T09:30:15.123456Z" and back["day"][0] == "2024-01-09"


def test_a_stream_of_frames_gives_the_bytes_of_the_whole_table() -> None:
    frame = pd.concat([sample()] * 9, ignore_index=True)
    whole, written = write(frame)
    pieces = [frame.iloc[:5], frame.iloc[5:5], frame.iloc[5:40], frame.iloc[40:]]
    streamed, streamed_written = write(iter(pieces), chunk_rows=16)
    assert streamed == whole and streamed_written == written
    header_only, _ = write(iter([frame.iloc[:0]]))
    assert header_only == write(frame.iloc[:0])[0]
    with pytest.raises(ValueError):
        write(iter([]))


def test_parquet_from_a_stream_types_text_from_later_chunks() -> None:
    first = pd.DataFrame({"code": pd.Series([None, None], dtype=object), "n": [1, 2]})
    later = pd.DataFrame({"code": pd.Series(["a", None], dtype=object), "n": [3, 4]})
    buffer = io.BytesIO()
    seen: list[int] = []
    written = writer.write_parquet(iter([first, later]), buffer, progress=seen.append)
    back = pd.read_parquet(io.BytesIO(buffer.getvalue()))
    assert written["rows"] == 4 and seen == [2, 4]
    assert back["n"].tolist() == [1, 2, 3, 4]
    assert back["code"].isna().tolist() == [True, True, False, True] and back["code"][2] == "a"
