"""A corpus of malformed and awkward inputs, each built into a test's tmp_path on demand.

Each `Case` says what the user should see: an unusable input (exit 3, one message naming the
problem, nothing sent) or a usable one (the `delivered` emails land in the list, the `rejected`
rows are in the rejects file with a reason). Shared by the CLI, engine and TUI hardening tests.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import lzma
import os
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

GOOD = ("ada@example.com", "bob@example.com", "cy@example.org")
FORMULAS = ('=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(A1:A2)", "-2+3")


@dataclass(frozen=True)
class Source:
    """Where a segment reads from: a file path, or a database plus a query."""

    path: str
    query: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Source]
    unusable: bool = False  # exit 3, nothing sent
    message: str = ""  # a fragment of the one message (unusable) the user sees, lower case
    mapping: dict[str, Any] = field(default_factory=lambda: {"email": "email"})
    delivered: tuple[str, ...] = ()  # the list's exact contents afterwards (usable cases)
    rejected: tuple[tuple[int, str], ...] = ()  # (source row, reason fragment) in the rejects


# ---- writers --------------------------------------------------------------------------------


def _bytes(name: str, data: bytes) -> Callable[[Path], Source]:
    def build(tmp: Path) -> Source:
        (tmp / name).write_bytes(data)
        return Source(str(tmp / name))

    return build


def _csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _text(name: str, rows: list[list[str]], encoding: str = "utf-8") -> Callable[[Path], Source]:
    return _bytes(name, _csv_text(rows).encode(encoding))


def _frame(rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows[1:], columns=rows[0])


def _parquet_bytes(rows: list[list[Any]]) -> bytes:
    out = io.BytesIO()
    _frame(rows).to_parquet(out, index=False)
    return out.getvalue()


def _xlsx_bytes(rows: list[list[Any]]) -> bytes:
    out = io.BytesIO()
    _frame(rows).to_excel(out, index=False, engine="openpyxl")
    return out.getvalue()


def _jsonl(name: str, records: list[dict[str, Any]]) -> Callable[[Path], Source]:
    return _bytes(name, "".join(json.dumps(r) + "\n" for r in records).encode())


def _sqlite(query: str, rows: list[list[Any]] | None = None) -> Callable[[Path], Source]:
    def build(tmp: Path) -> Source:
        db = tmp / "shop.sqlite3"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE customers (email TEXT, name TEXT)")
            conn.executemany("INSERT INTO customers VALUES (?, ?)", (rows or BASIC)[1:])
        conn.close()
        return Source(str(db), query)

    return build


def _url(url: str, query: str) -> Callable[[Path], Source]:
    return lambda tmp: Source(url, query)


def _path(make: Callable[[Path], Path]) -> Callable[[Path], Source]:
    return lambda tmp: Source(str(make(tmp)))


def _inside_a_file(tmp: Path) -> Path:
    (tmp / "plain.txt").write_text("x")
    return tmp / "plain.txt" / "c.csv"


def _sql_text_file(tmp: Path) -> Source:
    (tmp / "shop.db").write_text("email\na@example.com\n")
    return Source(str(tmp / "shop.db"), "SELECT email FROM customers")


def _directory(tmp: Path) -> Path:
    (tmp / "folder.csv").mkdir()
    return tmp / "folder.csv"


BASIC = [["email", "name"], [GOOD[0], "Ada"], [GOOD[1], "Bob"], ["not-an-email", "Nope"]]


class Outcome(TypedDict):
    """What a usable case leaves behind, spread into `ok(...)`."""

    delivered: tuple[str, ...]
    rejected: tuple[tuple[int, str], ...]


BASIC_OUT: Outcome = {"delivered": GOOD[:2], "rejected": ((3, "invalid email"),)}
ALL_BAD = [["email", "name"], ["nope", "A"], ["also@", "B"], ["", "C"]]
CSV_UNUSABLE = "cannot read"


def ok(
    name: str,
    build: Callable[[Path], Source],
    mapping: dict[str, Any] | None = None,
    delivered: tuple[str, ...] = (),
    rejected: tuple[tuple[int, str], ...] = (),
) -> Case:
    """A usable input: `delivered` end in the list, `rejected` rows in the rejects file."""
    return Case(name, build, False, "", mapping or {"email": "email"}, delivered, rejected)


def _cases() -> list[Case]:
    wide = [["email", *[f"c{i}" for i in range(9_999)]]]
    wide += [[e, *["v"] * 9_999] for e in GOOD]
    big = "x" * 1_000_000
    unusable = [
        Case("empty_file", _bytes("c.csv", b""), True, "is empty"),
        Case("blank_lines_only", _bytes("c.csv", b"\n\n  \n"), True, "is empty"),
        Case("header_only", _bytes("c.csv", b"email,name\n"), True, "no data rows"),
        Case("header_only_crlf_no_newline", _bytes("c.csv", b"email,name"), True, "no data rows"),
        Case("no_email_column", _text("c.csv", [["name", "city"], ["Ada", "X"]]), True, "'email'"),
        Case("every_email_invalid", _text("c.csv", ALL_BAD), True, "no valid rows"),
        Case("binary_garbage", _bytes("c.csv", bytes(range(256)) * 64), True, "binary"),
        Case("binary_no_nul", _bytes("c.csv", bytes(range(1, 256)) * 64), True, "'email'"),
        Case("nul_bytes", _bytes("c.csv", b"email,name\na@example.com,A\x00da\n"), True, "nul"),
        Case(
            "truncated_parquet",
            lambda t: _trunc(t, "c.parquet", _parquet_bytes(BASIC)),
            True,
            CSV_UNUSABLE,
        ),
        Case(
            "truncated_xlsx", lambda t: _trunc(t, "c.xlsx", _xlsx_bytes(BASIC)), True, CSV_UNUSABLE
        ),
        Case("csv_named_parquet", _text("c.parquet", BASIC), True, "as parquet"),
        Case("parquet_named_csv", _bytes("c.csv", _parquet_bytes(BASIC)), True, "binary"),
        Case("xlsx_named_jsonl", _bytes("c.jsonl", _xlsx_bytes(BASIC)), True, "as jsonl"),
        Case("pdf_extension", _bytes("c.pdf", b"%PDF-1.4\n%garbage"), True, "unsupported"),
        Case("no_extension", _text("customers", BASIC), True, "unsupported"),
        Case(
            "empty_parquet",
            _bytes("c.parquet", _parquet_bytes([["email", "name"]])),
            True,
            "no data rows",
        ),
        Case(
            "empty_xlsx", _bytes("c.xlsx", _xlsx_bytes([["email", "name"]])), True, "no data rows"
        ),
        Case("zip_named_xlsx", lambda t: _zip(t, "c.xlsx"), True, CSV_UNUSABLE),
        Case("empty_jsonl", _bytes("c.jsonl", b""), True, "no data rows"),
        Case(
            "broken_jsonl",
            _bytes("c.jsonl", b'{"email": "a@example.com"}\n{not json\n'),
            True,
            CSV_UNUSABLE,
        ),
        Case(
            "duplicate_headers",
            _text("c.csv", [["email", "name", "email"], ["a@b.co", "A", "c@d.co"]]),
            True,
            "duplicate column",
        ),
        Case("missing_path", _path(lambda t: t / "nope.csv"), True, "file not found"),
        Case("path_inside_a_file", _path(_inside_a_file), True, "file not found"),
        Case("directory", _path(_directory), True, "directory"),
        Case("sql_bad_query", _sqlite("SELEC email FROM customers"), True, "refused the query"),
        Case("sql_missing_table", _sqlite("SELECT email FROM clients"), True, "no such table"),
        Case(
            "sql_driver_missing",
            _url("postgresql+psycopg2://u:secret@127.0.0.1:9/db", "SELECT email FROM customers"),
            True,
            "not installed",
        ),
        Case("sql_unknown_dialect", _url("nosuchdb://u@h/db", "SELECT 1"), True, "dialect"),
        Case("sql_not_a_database", _sql_text_file, True, "not a sqlite"),
        Case("sql_no_email_column", _sqlite("SELECT name FROM customers"), True, "'email'"),
        Case(
            "zip_two_members",
            _zipped("c.zip", {"a.csv": _csv_text(BASIC).encode(), "b.csv": b"email\n"}),
            True,
            "holds 2 files: 'a.csv', 'b.csv'",
        ),
        Case("zip_empty", _zipped("c.zip", {}), True, "holds no files"),
        Case(
            "gzip_truncated",
            lambda t: _trunc(t, "c.csv.gz", gzip.compress(b"x" * 9999)),
            True,
            CSV_UNUSABLE,
        ),
        Case(
            "compressed_parquet",
            _bytes("c.parquet.gz", gzip.compress(_parquet_bytes(BASIC))),
            True,
            "decompress it first",
        ),
        Case("fifo_named_csv", _fifo, True, "named pipe (fifo), not a regular file"),
        Case("dev_zero_named_jsonl", _endless, True, "character device, not a regular file"),
        Case(
            "million_columns", _million_columns, True, "has 1,000,000 columns; the limit is 10,000"
        ),
        Case("jsonl_line_over_16_mb", _huge_jsonl_line, True, "line 2 is longer than 16 mb"),
        Case("xlsx_zip_bomb", _xlsx_bomb, True, "zip bomb"),
    ]
    usable = [
        ok("utf8_bom", _bytes("c.csv", b"\xef\xbb\xbf" + _csv_text(BASIC).encode()), **BASIC_OUT),
        ok("utf16_bom", _bytes("c.csv", _csv_text(BASIC).encode("utf-16")), **BASIC_OUT),
        ok("utf16le_no_bom", _text("c.csv", BASIC, "utf-16-le"), **BASIC_OUT),
        ok(
            "latin1",
            _text(
                "c.csv", [["email", "name"], [GOOD[0], "José Müller"], [GOOD[1], "Zoë"]], "latin-1"
            ),
            {"email": "email", "first_name": "name"},
            delivered=GOOD[:2],
        ),
        ok(
            "quoted_newlines",
            _text(
                "c.csv",
                [
                    ["email", "name"],
                    [GOOD[0], "line1\nline2"],
                    ["bad\nmail@x.com", "B"],
                    [GOOD[1], 'say "hi",\r\nthere'],
                ],
            ),
            {"email": "email", "first_name": "name"},
            GOOD[:2],
            ((2, "invalid email"),),
        ),
        ok(
            "one_mb_field",
            _text("c.csv", [["email", "note"], [GOOD[0], big], [GOOD[1], "ok"]]),
            {"email": "email", "properties": ["note"]},
            GOOD[:2],  # the row is sent without its 1 MB property (a warning in the rejects file)
            ((1, "100 kb"),),
        ),
        ok(
            "one_mb_unmapped_field",
            _text("c.csv", [["email", "note"], [GOOD[0], big], [GOOD[1], "ok"]]),
            delivered=GOOD[:2],
        ),
        ok("ten_thousand_columns", _text("c.csv", wide), delivered=GOOD),
        ok(
            "formula_cells",
            _text(
                "c.csv",
                [
                    ["email", "name"],
                    *[[e, f] for e, f in zip(GOOD, FORMULAS, strict=False)],
                    [FORMULAS[0], "x"],
                ],
            ),
            {"email": "email", "first_name": "name"},
            GOOD,
            ((4, "invalid email"),),
        ),
        ok(
            "idn_and_unicode_emails",
            _text(
                "c.csv",
                [["email"], ["user@bücher.de"], ["用户@例子.广告"], ["Zoë@example.com"], [GOOD[0]]],
            ),
            delivered=("user@xn--bcher-kva.de", GOOD[0]),
            rejected=((2, "ascii email addresses only"), (3, "ascii email addresses only")),
        ),
        ok(
            "surrounding_whitespace",
            _text(
                "c.csv", [["email"], ["  Ada@Example.com "], ["\tbob@example.com\u00a0"], ["   "]]
            ),
            delivered=GOOD[:2],
            rejected=((3, "missing"),),
        ),
        ok(
            "semicolons_crlf",
            _bytes("c.csv", b"email;name\r\nada@example.com;A\r\nbob@example.com;B\r\n"),
            delivered=GOOD[:2],
        ),
        ok(
            "mixed_types_jsonl",
            _jsonl(
                "c.jsonl",
                [
                    {"email": GOOD[0], "score": 1, "vip": True},
                    {"email": 12345, "score": "high", "vip": None},
                    {"email": GOOD[1], "score": 2.5, "vip": "yes", "extra": {"a": 1}},
                    {"email": None, "score": None},
                ],
            ),
            {"email": "email", "properties": ["score", "vip"]},
            GOOD[:2],
            ((2, "invalid email"), (4, "missing")),
        ),
        ok(
            "mixed_types_xlsx",
            _bytes(
                "c.xlsx", _xlsx_bytes([["email", "n"], [GOOD[0], 1], [42, "two"], [GOOD[1], 3.5]])
            ),
            {"email": "email", "properties": ["n"]},
            GOOD[:2],
            ((2, "invalid email"),),
        ),
        ok(
            "parquet_with_nulls",
            _bytes(
                "c.parquet",
                _parquet_bytes([["email", "n"], [GOOD[0], 1.0], [None, 2.0], [GOOD[1], None]]),
            ),
            delivered=GOOD[:2],
            rejected=((2, "missing"),),
        ),
        ok(
            "duplicates_and_case",
            _text(
                "c.csv",
                [["email", "name"], [GOOD[0], "A"], ["ADA@example.com", "A2"], [GOOD[1], "B"]],
            ),
            delivered=GOOD[:2],
            rejected=((1, "duplicate of main row 2"),),
        ),
        ok(
            "overlong_email",
            _text(
                "c.csv",
                [["email"], ["a" * 65 + "@example.com"], ["b@" + "x" * 250 + ".com"], [GOOD[0]]],
            ),
            delivered=(GOOD[0],),
            rejected=((1, "invalid email"), (2, "invalid email")),
        ),
        ok("sqlite_some_invalid", _sqlite("SELECT email, name FROM customers"), **BASIC_OUT),
        ok("gzip_csv", _gzip("c.csv.gz", BASIC), **BASIC_OUT),
        ok(
            "xz_tsv",
            _bytes("c.tsv.xz", lzma.compress(_csv_text(BASIC).replace(",", "\t").encode())),
            **BASIC_OUT,
        ),
        ok(
            "zip_one_csv_from_a_mac",  # Finder adds __MACOSX/ resource entries: not files
            _zipped(
                "c.zip",
                {
                    "customers.csv": _csv_text(BASIC).encode("utf-16"),
                    "__MACOSX/._customers.csv": b"x",
                },
            ),
            **BASIC_OUT,
        ),
        Case(
            "ragged_rows",
            _bytes("c.csv", b"email,name\nada@example.com,A,extra\nbob@example.com\n"),
            True,
            "cannot read",
        ),
    ]
    return unusable + usable


def _trunc(tmp: Path, name: str, data: bytes) -> Source:
    (tmp / name).write_bytes(data[: len(data) // 2])
    return Source(str(tmp / name))


def _gzip(name: str, rows: list[list[str]]) -> Callable[[Path], Source]:
    return _bytes(name, gzip.compress(_csv_text(rows).encode()))


def _zipped(name: str, members: dict[str, bytes]) -> Callable[[Path], Source]:
    def build(tmp: Path) -> Source:
        with zipfile.ZipFile(tmp / name, "w", zipfile.ZIP_DEFLATED) as z:
            for member, data in members.items():
                z.writestr(member, data)
        return Source(str(tmp / name))

    return build


def _fifo(tmp: Path) -> Source:
    os.mkfifo(tmp / "c.csv")  # nobody writes to it: opening it for reading would wait forever
    return Source(str(tmp / "c.csv"))


def _endless(tmp: Path) -> Source:
    (tmp / "c.jsonl").symlink_to("/dev/zero")  # bytes without end, and no line break
    return Source(str(tmp / "c.jsonl"))


def _million_columns(tmp: Path) -> Source:
    header = ",".join(["email", *[f"c{i}" for i in range(1, 1_000_000)]])
    (tmp / "c.csv").write_text(header + "\n" + GOOD[0] + "\n")
    return Source(str(tmp / "c.csv"))


def _huge_jsonl_line(tmp: Path) -> Source:
    lines = [{"email": GOOD[0]}, {"email": GOOD[1], "note": "x" * (17 << 20)}]
    (tmp / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return Source(str(tmp / "c.jsonl"))


def _xlsx_bomb(tmp: Path) -> Source:
    """A real workbook whose sheet XML is padded with 40 MB of spaces: ~1000:1 when deflated."""
    with zipfile.ZipFile(io.BytesIO(_xlsx_bytes(BASIC))) as src:
        parts = {i.filename: src.read(i.filename) for i in src.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = parts[sheet].replace(b"<sheetData>", b"<sheetData>" + b" " * (40 << 20), 1)
    with zipfile.ZipFile(tmp / "c.xlsx", "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in parts.items():
            out.writestr(name, data)
    return Source(str(tmp / "c.xlsx"))


def _zip(tmp: Path, name: str) -> Source:
    with zipfile.ZipFile(tmp / name, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return Source(str(tmp / name))


CASES: list[Case] = _cases()
BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
