"""xlsx, streamed with openpyxl's read-only mode: the first sheet, a chunk of rows at a time.

An xlsx is a zip of XML parts, and a few MB of zip can inflate to GBs of XML (by accident or on
purpose). Before reading, every part's declared uncompressed size (a hard bound: Python's zipfile
never inflates past it) is checked against these limits, and a part that inflates far more than
real spreadsheet XML does is refused as a zip bomb:

- MAX_SHEET_BYTES (1 GiB) per worksheet: a full 1M-row sheet of ~15 columns, as openpyxl or
  pandas write it (inline strings; Excel's shared strings make sheets smaller);
- MAX_PART_BYTES (128 MiB) for every other part; openpyxl holds the shared strings in memory;
- MAX_RATIO (100:1) for parts over 16 MiB: sheet XML compresses ~9-15:1, even all-identical rows.

Cells come out as pandas' `read_excel(dtype=str, keep_default_na=False)` gave them (the reader
this replaces): empty cells are "", whole floats lose their ".0", dates print as
"2024-01-31 00:00:00", blank header cells are named "Unnamed: N" and repeated names get ".1".
Blank rows inside the data are kept (their row numbers count); blank rows at the end are not.
Cells to the right of the header's last named column are ignored.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from klaviyo_tui.input.sources.common import SourceError, check_width, numbered, select
from klaviyo_tui.input.sources.files import OpenSource

MAX_SHEET_BYTES = 1 << 30
MAX_PART_BYTES = 128 << 20
MAX_RATIO = 100
_RATIO_FLOOR = 16 << 20


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"


def check_inflation(src: OpenSource) -> None:
    """Refuse a workbook whose parts would inflate past the limits, before reading any."""
    with zipfile.ZipFile(src.reader()) as archive:
        infos = archive.infolist()
    for info in infos:
        sheet = info.filename.startswith("xl/worksheets/")
        limit = MAX_SHEET_BYTES if sheet else MAX_PART_BYTES
        what = "a worksheet" if sheet else "a part"
        if info.file_size > limit:
            raise SourceError(
                f"{src.path}: {info.filename} inflates to {_mb(info.file_size)}, over the "
                f"{_mb(limit)} limit for {what} of an xlsx. Save the sheet as CSV and read that."
            )
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            ratio = info.file_size // max(info.compress_size, 1)
            raise SourceError(
                f"{src.path}: {info.filename} inflates {ratio:,}:1 ({_mb(info.file_size)}), far "
                f"beyond real spreadsheet data (at most ~{MAX_RATIO}:1); refusing a zip bomb."
            )


def cell_text(value: Any) -> str:
    """A cell as pandas' reader with dtype=str wrote it."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def header_names(row: Sequence[Any]) -> list[str]:
    """Names as pandas gave them: trailing blanks dropped, "Unnamed: N", ".1" for repeats."""
    names = [cell_text(v) for v in row]
    while names and names[-1] == "":
        names.pop()
    names = [name or f"Unnamed: {i}" for i, name in enumerate(names)]
    counts: dict[str, int] = {}
    for i, name in enumerate(names):
        seen = counts.get(name, 0)
        while seen > 0:
            counts[name] = seen + 1
            name = f"{name}.{seen}"
            seen = counts.get(name, 0)
        names[i] = name
        counts[name] = seen + 1
    return names


def _frame(rows: list[tuple[str, ...]], names: list[str], start: int) -> pd.DataFrame:
    arrays = [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]
    return numbered(pa.Table.from_arrays(arrays, names=names).to_pandas(), start)


def xlsx_chunks(
    src: OpenSource, columns: list[str] | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    import openpyxl

    where = str(src.path)
    check_inflation(src)
    book = openpyxl.load_workbook(src.reader(), read_only=True, data_only=True, keep_links=False)
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # trust the rows, not the declared size (often wrong)
        first = next(sheet.iter_rows(max_row=1, values_only=True), ())
        names = header_names(first)
        if not names:
            raise SourceError(f"{where} has no header row (the first row of the first sheet).")
        check_width(len(names), f"{where}: the header row")
        if columns is not None:
            select(pd.DataFrame(columns=names), columns, where)
        width = len(names)
        blank = ("",) * width
        rows: list[tuple[str, ...]] = []
        start = blanks = 0
        for values in sheet.iter_rows(min_row=2, max_col=width, values_only=True):
            row = tuple(cell_text(v) for v in values)
            if row == blank:
                blanks += 1  # kept only if a row with data follows
                continue
            rows.extend([blank] * blanks)
            blanks = 0
            rows.append(row)
            while len(rows) >= chunk_rows:
                df = _frame(rows[:chunk_rows], names, start)
                yield df if columns is None else df[list(columns)]
                start += chunk_rows
                del rows[:chunk_rows]
        if rows:
            df = _frame(rows, names, start)
            yield df if columns is None else df[list(columns)]
    finally:
        book.close()
