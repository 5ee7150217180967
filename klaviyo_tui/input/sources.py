"""Read a segment's source in chunks: CSV/TSV, Parquet, xlsx, JSON Lines, or a SQL query.

Every chunk is a pandas DataFrame whose **index is the 1-based source row number** (data rows,
header excluded; for SQL, the row's position in the query result). Filters keep the index, so row
numbers survive all the way to rejects files and Klaviyo error pointers.

Delimited text is read with pyarrow's streaming CSV reader (much faster than pandas) and every
column as a string, so zip codes and ids keep their leading zeros. Errors a user can cause become
`SourceError` with a message that says what to fix; callers never see a traceback.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.store.config import Segment

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
"""File extension -> reader. SQL sources are recognised by `Segment.query`, not by extension."""

_SAMPLE_BYTES = 256 * 1024
# The streaming reader reads ~25 blocks ahead of the consumer, so its memory is ~25 x this size:
# measured at 1M rows, 2 MB blocks held 50-75 MB in Arrow's pool, 256 KB blocks ~9 MB, same CPU.
_BLOCK_BYTES = 256 << 10
# A row must fit in one block: files with huge fields are read again with bigger blocks.
_BLOCK_SIZES = (_BLOCK_BYTES, 8 << 20, 64 << 20)


class SourceError(AppError):
    """A source that cannot be read; the message says what happened and what to do."""

    title = "Could not read the source"
    default_hint = "Check the path, format or query, then retry."
    exit_code = ExitCode.INPUT


# ---- public API -----------------------------------------------------------------------------


def read_chunks(
    segment: Segment, columns: list[str] | None = None, chunk_rows: int = 50_000
) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most `chunk_rows` rows, index = 1-based source row number.

    `columns` limits what is read (every listed column must exist; SourceError names the missing
    ones and the available ones). Raises SourceError when the source has no data rows.
    """
    produced = False
    for df in _raw_chunks(segment, columns, chunk_rows):
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
    source = _safe_url(segment.source) if segment.query else segment.source
    return f"Segment {segment.name!r} ({source})"


def _raw_chunks(
    segment: Segment, columns: list[str] | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    if segment.query:
        yield from _sql_chunks(segment, columns, chunk_rows)
        return
    path = Path(segment.source).expanduser()
    _check_file(path)
    kind = _kind_of(path)
    try:
        if kind == "csv":
            yield from _csv_chunks(path, columns, chunk_rows)
        elif kind == "parquet":
            yield from _parquet_chunks(path, columns, chunk_rows)
        elif kind == "xlsx":
            yield from _xlsx_chunks(path, columns, chunk_rows)
        else:
            yield from _jsonl_chunks(path, columns, chunk_rows)
    except SourceError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError, UnicodeError) as exc:
        raise SourceError(
            f"Cannot read {path} as {kind.upper()}: {_short(exc)}. "
            f"Check that the file is a complete, valid {kind.upper()} file."
        ) from None
    except Exception as exc:  # openpyxl/zipfile raise many types for damaged files
        raise SourceError(
            f"Cannot read {path} as {kind.upper()}: {type(exc).__name__}: {_short(exc)}."
        ) from None


def _kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise SourceError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}. "
            f"Supported: {supported}; or set a SQL query for a database source."
        )
    return SUPPORTED_EXTENSIONS[suffix]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: file not found. Check the segment's source path.")
    if path.is_dir():
        raise SourceError(f"{path} is a directory; the source must be a file.")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: permission denied; make the file readable for this user.")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _select(df: pd.DataFrame, columns: list[str] | None, where: str) -> pd.DataFrame:
    df.columns = [str(c) for c in df.columns]
    if columns is None:
        return df
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SourceError(
            f"{where}: column(s) {', '.join(map(repr, missing))} not found. "
            f"Available: {', '.join(map(repr, df.columns))}."
        )
    return df[list(columns)]


def _numbered(df: pd.DataFrame, start: int) -> pd.DataFrame:
    df.index = pd.RangeIndex(start + 1, start + 1 + len(df), name="row")
    return df


# ---- delimited text -------------------------------------------------------------------------


def _detect_encoding(sample: bytes) -> str:
    """BOMs first, then UTF-8 if it decodes, then cp1252 (a superset of Latin-1 printables)."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if sample.startswith(bom):
            return name
    if b"\x00" in sample:
        # UTF-16 without a BOM shows as every other byte zero in ASCII-heavy text.
        if sample[1::2].count(0) > len(sample) // 4:
            return "utf-16-le"
        if sample[0::2].count(0) > len(sample) // 4:
            return "utf-16-be"
        raise ValueError("the file looks binary (it contains NUL bytes), not delimited text")
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:  # a multibyte character cut by the sample boundary
            return "utf-8"
        return "cp1252"


def _detect_delimiter(text: str, suffix: str) -> str:
    if suffix in (".tsv", ".tab"):
        return "\t"
    lines = text.splitlines()[:50]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        head = lines[0] if lines else ""
        return max(",;\t|", key=head.count) if head else ","


def _csv_chunks(path: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with open(path, "rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if not sample.strip():
        raise SourceError(f"{path} is empty.")
    encoding = _detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    delimiter = _detect_delimiter(text, path.suffix.lower())
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter), [])
    if not header:
        raise SourceError(f"{path} has no header row.")
    if len(header) != len(set(header)):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise SourceError(f"{path}: duplicate column names {dupes}; rename them in the file.")
    if columns is not None:
        _select(pd.DataFrame(columns=header), columns, str(path))
    pa_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    done = 0  # rows already yielded, skipped when a retry starts over
    for block in _BLOCK_SIZES:
        try:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(encoding=pa_encoding, block_size=block),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    include_columns=list(columns) if columns is not None else None,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            for df in _rebatch(_skip(iter(reader), done), chunk_rows, done):
                done += len(df)
                yield df
            return
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                raise SourceError(f"{path} has no data rows.") from None
            if "straddl" not in str(exc):
                raise
    raise SourceError(
        f"{path}: a row is larger than {_BLOCK_SIZES[-1] >> 20} MB; "
        "split very large fields out of the file."
    )


def _skip(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The stream without its first `rows` rows."""
    for batch in batches:
        if rows >= batch.num_rows:
            rows -= batch.num_rows
            continue
        yield batch.slice(rows) if rows else batch
        rows = 0


def _rebatch(
    batches: Iterator[pa.RecordBatch], chunk_rows: int, start: int = 0
) -> Iterator[pd.DataFrame]:
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending)
            head, rest = table.slice(0, chunk_rows), table.slice(chunk_rows)
            yield _numbered(head.to_pandas(), start)
            start += chunk_rows
            pending = rest.to_batches()
            pending_rows = rest.num_rows
    if pending_rows:
        yield _numbered(pa.Table.from_batches(pending).to_pandas(), start)


# ---- binary formats -------------------------------------------------------------------------


def _parquet_chunks(
    path: Path, columns: list[str] | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if columns is not None:
        _select(pd.DataFrame(columns=names), columns, str(path))
    yield from _rebatch(pf.iter_batches(batch_size=chunk_rows, columns=columns), chunk_rows)


def _xlsx_chunks(path: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """xlsx cannot be streamed by pandas: read the first sheet once, then slice it."""
    df = pd.read_excel(path, dtype=str, engine="openpyxl", keep_default_na=False)
    df = _select(df, columns, str(path))
    df = _numbered(df, 0)
    for start in range(0, len(df), chunk_rows):
        yield df.iloc[start : start + chunk_rows]


def _jsonl_chunks(path: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    start = 0
    with pd.read_json(
        path,
        lines=True,
        chunksize=chunk_rows,
        dtype=False,
        encoding="utf-8",
        encoding_errors="strict",
    ) as reader:
        for df in reader:
            if columns is not None:
                for col in columns:  # a key absent from every line of a chunk is just empty
                    if col not in df.columns:
                        df[col] = None
                df = df[list(columns)]
            yield _numbered(df, start)
            start += len(df)


# ---- SQL ------------------------------------------------------------------------------------


def _sql_url(source: str) -> str:
    if "://" in source:
        return source
    path = Path(source).expanduser()
    _check_file(path)  # sqlite would silently create a missing file
    with open(path, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise SourceError(f"{path} is not a SQLite database file.")
    return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"


def _sql_chunks(
    segment: Segment, columns: list[str] | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    import sqlalchemy as sa
    from sqlalchemy import exc as saexc

    where = f"Segment {segment.name!r}"
    url = _sql_url(segment.source)
    try:
        engine = sa.create_engine(url)
    except saexc.NoSuchModuleError as exc:
        raise SourceError(
            f"{where}: no SQLAlchemy dialect for {_safe_url(url)} ({_short(exc)}). "
            "Install the database driver package."
        ) from None
    except ModuleNotFoundError as exc:
        raise SourceError(
            f"{where}: the database driver {exc.name!r} is not installed; "
            f"install it (pip install {exc.name}) in klaviyo-tui's environment."
        ) from None
    except saexc.ArgumentError as exc:
        raise SourceError(f"{where}: invalid database URL: {_short(exc)}.") from None
    start = 0
    try:
        with engine.connect() as conn:
            for df in pd.read_sql(sa.text(segment.query or ""), conn, chunksize=chunk_rows):
                df = _select(df, columns, where)
                yield _numbered(df, start)
                start += len(df)
    except SourceError:
        raise
    except (saexc.DBAPIError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
        orig = getattr(cause, "orig", None)
        detail = _short(orig) if orig is not None else _short(cause or exc)
        raise SourceError(
            f"{where}: the database refused the query: {detail}. "
            "Check the query, the table names and the connection."
        ) from None
    except saexc.SQLAlchemyError as exc:
        raise SourceError(f"{where}: query failed: {_short(exc)}.") from None
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    """A URL for messages, password masked."""
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://…"
