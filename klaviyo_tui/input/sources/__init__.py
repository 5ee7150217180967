"""Read a segment's source in chunks: delimited text, Parquet, xlsx, JSON Lines, or a SQL query.

Every chunk is a pandas DataFrame whose **index is the 1-based source row number** (data rows,
header excluded; for SQL, the row's position in the query result). Filters keep the index, so row
numbers survive all the way to rejects files and Klaviyo error pointers.

One module per format family: `text` (CSV/TSV with pyarrow's streaming reader), `jsonl`, `xlsx`
(openpyxl, streamed), `parquet`, `sql`; `files` opens files safely (regular files only,
decompressed streams for .gz/.bz2/.zst/.xz/.zip) and `watch` notices a file that changes while a
run reads it. Errors a user can cause become `SourceError` with a message that says what to fix;
callers never see a traceback.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from klaviyo_tui.input.sources.common import MAX_COLUMNS, SourceChanged, SourceError, short
from klaviyo_tui.input.sources.files import (
    SUPPORTED_EXTENSIONS,
    SUPPORTED_SUMMARY,
    FileKind,
    OpenSource,
    kind_of,
    open_source,
    resolve,
)
from klaviyo_tui.input.sources.jsonl import MAX_LINE_BYTES, jsonl_chunks
from klaviyo_tui.input.sources.parquet import parquet_chunks
from klaviyo_tui.input.sources.sql import safe_url, sql_chunks
from klaviyo_tui.input.sources.text import csv_chunks
from klaviyo_tui.input.sources.watch import Fingerprint, PassTracker, SourceWatch
from klaviyo_tui.input.sources.xlsx import MAX_PART_BYTES, MAX_SHEET_BYTES, xlsx_chunks
from klaviyo_tui.store.config import Segment

__all__ = [
    "MAX_COLUMNS",
    "MAX_LINE_BYTES",
    "MAX_PART_BYTES",
    "MAX_SHEET_BYTES",
    "SUPPORTED_EXTENSIONS",
    "SUPPORTED_SUMMARY",
    "Fingerprint",
    "SourceChanged",
    "SourceError",
    "SourceWatch",
    "columns_of",
    "preview",
    "read_chunks",
]

_SEEK_READ = ("parquet", "xlsx")
# What the readers raise for a damaged file; anything else from them is converted too (openpyxl
# and zipfile raise many types), with its type name for the record.
_DAMAGED = (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError, UnicodeError, EOFError)


def read_chunks(
    segment: Segment,
    columns: list[str] | None = None,
    chunk_rows: int = 50_000,
    *,
    watch: SourceWatch | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most `chunk_rows` rows, index = 1-based source row number.

    `columns` limits what is read (every listed column must exist; SourceError names the missing
    ones and the available ones). Raises SourceError when the source has no data rows. With a
    `watch`, the file is checked against the previous read through the same watch (SourceChanged
    when it differs) and this read is recorded for the next.
    """
    produced = False
    for df in _raw_chunks(segment, columns, chunk_rows, watch):
        if len(df):
            produced = True
            yield df
    if not produced:
        raise SourceError(f"{_label(segment)} has no data rows.")


def preview(segment: Segment, n: int = 20) -> pd.DataFrame:
    """The first `n` rows, every column (index = source row number)."""
    for df in read_chunks(segment, None, chunk_rows=max(n, 1)):
        return df.head(n)
    raise SourceError(f"{_label(segment)} has no data rows.")  # pragma: no cover


def columns_of(segment: Segment) -> list[str]:
    """The source's column names, in source order."""
    return [str(c) for c in preview(segment, 1).columns]


# ---- dispatch -------------------------------------------------------------------------------


def _label(segment: Segment) -> str:
    source = safe_url(segment.source) if segment.query else segment.source
    return f"Segment {segment.name!r} ({source})"


def _raw_chunks(
    segment: Segment, columns: list[str] | None, chunk_rows: int, watch: SourceWatch | None
) -> Iterator[pd.DataFrame]:
    if segment.query:
        yield from sql_chunks(segment, columns, chunk_rows)
        return
    path = Path(segment.source).expanduser()
    with open_source(path) as src:
        kind = kind_of(path)
        tracker = watch.begin(src) if watch is not None else None
        try:
            kind = resolve(src, kind)
            if tracker is not None and (kind.compression == "zip" or kind.kind in _SEEK_READ):
                tracker.hash_file()  # read by seeking: its reads are no sequential stream
            for df in _by_kind(src, kind, columns, chunk_rows, tracker):
                if tracker is not None:
                    tracker.check()
                yield df
            if tracker is not None:
                tracker.finish()
        except SourceChanged:
            raise
        except Exception as exc:
            if tracker is not None:
                tracker.failed()  # SourceChanged if the file changed: that explains the error
            if isinstance(exc, SourceError):
                raise
            raise _unreadable(path, kind, exc) from None


def _by_kind(
    src: OpenSource,
    kind: FileKind,
    columns: list[str] | None,
    chunk_rows: int,
    tracker: PassTracker | None,
) -> Iterator[pd.DataFrame]:
    if kind.kind == "csv":
        return csv_chunks(src, kind, columns, chunk_rows, tracker)
    if kind.kind == "jsonl":
        return jsonl_chunks(src, kind, columns, chunk_rows, tracker)
    if kind.kind == "parquet":
        return parquet_chunks(src, columns, chunk_rows)
    return xlsx_chunks(src, columns, chunk_rows)


def _unreadable(path: Path, kind: FileKind, exc: Exception) -> SourceError:
    if isinstance(exc, zipfile.BadZipFile) and kind.compression == "zip":
        return SourceError(f"{path} is not a valid .zip file ({short(exc)}).")
    if isinstance(exc, NotImplementedError) and kind.compression == "zip":
        return SourceError(f"{path}: {short(exc)}; re-create the zip with standard compression.")
    if isinstance(exc, _DAMAGED):
        return SourceError(
            f"Cannot read {path} as {kind.label}: {short(exc)}. "
            f"Check that the file is a complete, valid {kind.label} file."
        )
    return SourceError(f"Cannot read {path} as {kind.label}: {type(exc).__name__}: {short(exc)}.")
