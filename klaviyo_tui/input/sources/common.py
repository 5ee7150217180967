"""What every reader shares: the errors, the limits, and the chunk helpers.

Limits are documented here because they are part of what a user can rely on: a source past one of
them is refused up front with the number it has and the limit, instead of eating memory or time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa

from klaviyo_tui.errors import AppError, ExitCode

#: Columns a source may have. Wide enough for any real export (the corpus reads 10,000); a header
#: past it is almost always a file that is not what it seems (or one written to exhaust memory).
MAX_COLUMNS = 10_000


class SourceError(AppError):
    """A source that cannot be read; the message says what happened and what to do."""

    title = "Could not read the source"
    default_hint = "Check the path, format or query, then retry."
    exit_code = ExitCode.INPUT


class SourceChanged(SourceError):
    """The file changed while a run was reading it: what was read no longer matches the file.

    Not an input error: the run stops as interrupted so that it can be resumed (batches Klaviyo
    already accepted are not sent again) once whatever writes the file has finished.
    """

    title = "The source changed during the run"
    default_hint = "Wait until the file is no longer being written, then resume the run."
    exit_code = ExitCode.INTERRUPTED


def short(exc: BaseException) -> str:
    """The first line of an exception's text, for a one-line message."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def check_width(count: int, where: str) -> None:
    """Refuse a source with more than MAX_COLUMNS columns, saying how many it has."""
    if count > MAX_COLUMNS:
        raise SourceError(
            f"{where} has {count:,} columns; the limit is {MAX_COLUMNS:,}. "
            "Export only the columns you need."
        )


def select(df: pd.DataFrame, columns: list[str] | None, where: str) -> pd.DataFrame:
    """`df` limited to `columns` (all of which must exist; the message lists the available ones)."""
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


def numbered(df: pd.DataFrame, start: int) -> pd.DataFrame:
    """Index the rows start+1, start+2, ...: the 1-based source row numbers."""
    df.index = pd.RangeIndex(start + 1, start + 1 + len(df), name="row")
    return df


def rebatch(
    batches: Iterator[pa.RecordBatch], chunk_rows: int, start: int = 0
) -> Iterator[pd.DataFrame]:
    """Arrow record batches of any size as numbered DataFrames of exactly `chunk_rows` rows."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending)
            head, rest = table.slice(0, chunk_rows), table.slice(chunk_rows)
            yield numbered(head.to_pandas(), start)
            start += chunk_rows
            pending = rest.to_batches()
            pending_rows = rest.num_rows
    if pending_rows:
        yield numbered(pa.Table.from_batches(pending).to_pandas(), start)
