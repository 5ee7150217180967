"""Every source format, encodings and delimiters, and the SourceError messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from klaviyo_tui.input.sources import (
    SUPPORTED_EXTENSIONS,
    SourceError,
    columns_of,
    preview,
    read_chunks,
)
from klaviyo_tui.store.config import Segment

ROWS = [
    {"email": "ada@example.com", "zip": "02134", "note": "first"},
    {"email": "grace@example.com", "zip": "90210", "note": "line one\nline two"},
    {"email": "linus@example.com", "zip": "00501", "note": "Zoë, Müller"},
]


def _all(segment: Segment, **kw: object) -> pd.DataFrame:
    return pd.concat(list(read_chunks(segment, **kw)))  # type: ignore[arg-type]


def _check(df: pd.DataFrame) -> None:
    assert list(df["email"]) == [r["email"] for r in ROWS]
    assert list(df["zip"]) == ["02134", "90210", "00501"]  # leading zeros kept
    assert list(df["note"]) == [r["note"] for r in ROWS]
    assert list(df.index) == [1, 2, 3]


def _write_text(path: Path, sep: str, encoding: str) -> Path:
    pd.DataFrame(ROWS).to_csv(path, sep=sep, index=False, encoding=encoding)
    return path


@pytest.mark.parametrize(
    ("name", "sep", "encoding"),
    [
        ("a.csv", ",", "utf-8"),
        ("b.csv", ";", "utf-8"),
        ("c.tsv", "\t", "utf-8"),
        ("d.csv", ",", "utf-8-sig"),
        ("e.csv", ";", "utf-16"),
        ("f.csv", "|", "latin-1"),
        ("g.txt", "\t", "cp1252"),
    ],
)
def test_delimited_text(tmp_path: Path, name: str, sep: str, encoding: str) -> None:
    path = _write_text(tmp_path / name, sep, encoding)
    df = _all(Segment("s", str(path)))
    _check(df)
    assert list(df.columns) == ["email", "zip", "note"]  # no BOM in the first name


def test_chunks_carry_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    pd.DataFrame({"email": [f"u{i}@x.com" for i in range(2500)]}).to_csv(path, index=False)
    chunks = list(read_chunks(Segment("s", str(path)), ["email"], chunk_rows=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert chunks[1].index[0] == 1001
    assert chunks[2]["email"].iloc[-1] == "u2499@x.com"
    assert chunks[2].index[-1] == 2500


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    _check(_all(Segment("s", str(path))))
    assert list(_all(Segment("s", str(path)), columns=["zip"]).columns) == ["zip"]


def test_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    pd.DataFrame(ROWS).to_excel(path, index=False)
    _check(_all(Segment("s", str(path))))


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    pd.DataFrame(ROWS).to_json(path, orient="records", lines=True)
    _check(_all(Segment("s", str(path))))


def test_sqlite_query(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table customers (email text, zip text, note text)")
        conn.executemany("insert into customers values (:email, :zip, :note)", ROWS)
    seg = Segment("s", str(path), query="select * from customers order by rowid")
    _check(_all(seg))
    seg_url = Segment("s", f"sqlite:///{path}", query="select email from customers")
    assert columns_of(seg_url) == ["email"]


def test_preview_and_columns(tmp_path: Path) -> None:
    path = _write_text(tmp_path / "a.csv", ",", "utf-8")
    assert columns_of(Segment("s", str(path))) == ["email", "zip", "note"]
    assert len(preview(Segment("s", str(path)), n=2)) == 2


def _error(segment: Segment, columns: list[str] | None = None) -> str:
    with pytest.raises(SourceError) as info:
        list(read_chunks(segment, columns))
    return str(info.value)


def test_errors_are_clear(tmp_path: Path) -> None:
    assert "not found" in _error(Segment("s", str(tmp_path / "missing.csv")))
    assert "directory" in _error(Segment("s", str(tmp_path)))
    (tmp_path / "a.doc").write_text("x")
    message = _error(Segment("s", str(tmp_path / "a.doc")))
    assert "unsupported" in message
    assert ".parquet" in message
    assert ".csv" in message
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 10)
    assert "binary" in _error(Segment("s", str(tmp_path / "bin.csv")))
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in _error(Segment("s", str(tmp_path / "empty.csv")))
    (tmp_path / "header.csv").write_text("email,zip\n")
    assert "no data rows" in _error(Segment("s", str(tmp_path / "header.csv")))
    path = _write_text(tmp_path / "a.csv", ",", "utf-8")
    message = _error(Segment("s", str(path)), ["mail"])
    assert "'mail' not found" in message
    assert "'email'" in message


def test_truncated_binary_files(tmp_path: Path) -> None:
    pq_path = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), pq_path)
    pq_path.write_bytes(pq_path.read_bytes()[:-30])
    assert "Cannot read" in _error(Segment("s", str(pq_path)))
    xl = tmp_path / "a.xlsx"
    pd.DataFrame(ROWS).to_excel(xl, index=False)
    xl.write_bytes(xl.read_bytes()[:200])
    assert "Cannot read" in _error(Segment("s", str(xl)))
    garbage = tmp_path / "g.parquet"
    garbage.write_text("email\nnot parquet\n")
    assert "PARQUET" in _error(Segment("s", str(garbage)))


def test_sql_errors(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table customers (email text)")
    assert "no data rows" in _error(Segment("s", str(path), query="select * from customers"))
    assert "no such table" in _error(Segment("s", str(path), query="select * from nope"))
    assert "refused" in _error(Segment("s", str(path), query="selec oops"))
    assert "not found" in _error(Segment("s", str(tmp_path / "none.db"), query="select 1"))
    notdb = tmp_path / "x.db"
    notdb.write_text("hello")
    assert "not a SQLite" in _error(Segment("s", str(notdb), query="select 1"))
    message = _error(Segment("s", "postgresql+nosuchdriver://u:secret@h/db", query="select 1"))
    assert "secret" not in message
    assert "driver" in message or "dialect" in message


def test_supported_extensions_listed() -> None:
    assert {".csv", ".tsv", ".parquet", ".xlsx", ".jsonl"} <= set(SUPPORTED_EXTENSIONS)


def test_xlsx_cells_read_as_pandas_read_excel_did(tmp_path: Path) -> None:
    """The streaming reader gives what `read_excel(dtype=str, keep_default_na=False)` gave:
    numbers without a stray ".0", dates as text, blank and repeated header names renamed, blank
    rows inside the data kept and blank rows at the end dropped."""
    import datetime

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["email", "n", None, "email", "when", "flag", 2024])
    sheet.append(["a@b.co", 1, "x", "dup", datetime.datetime(2024, 1, 2), True, 1.5])
    sheet.append([])
    sheet.append(["c@d.co", 2.0, None, None, datetime.date(2024, 3, 4), False, 1e20])
    sheet.append([None] * 7)
    sheet.append(["e@f.co", "=1+1", "  ", 12345678901234, datetime.time(12, 30), None, -0.0])
    sheet.append([])
    sheet.append([None, None])
    book.save(tmp_path / "t.xlsx")
    expected = pd.read_excel(tmp_path / "t.xlsx", dtype=str, keep_default_na=False)
    expected.columns = [str(c) for c in expected.columns]
    expected.index = pd.RangeIndex(1, len(expected) + 1, name="row")
    got = _all(Segment("s", str(tmp_path / "t.xlsx")), chunk_rows=2)
    assert got.to_dict("list") == expected.to_dict("list")
    assert list(got.index) == list(expected.index) == [1, 2, 3, 4, 5]
