"""What every reader shares: the errors, the limits, and the chunk helpers.

Limits are documented here because they are part of what a user can rely on: a source past one of
them is refused up front with the number it has and the limit, instead of eating memory or time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

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


def line_at(data: bytes, pos: int) -> int:
    """The 1-based line of `data[pos]`, counting "\\n", "\\r\\n" and a lone "\\r" as line ends."""
    head = data[:pos]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


@dataclass(frozen=True, slots=True)
class BadByte:
    """Where a stream stops being UTF-8, so a message can point at the line to fix."""

    line: int  # 1-based, as a text editor counts lines (not rows: quoted line breaks count)
    byte: int  # the first byte that is not UTF-8
    before: bytes | None  # its line's bytes before it; None when that part is very long


_SCAN_BYTES = 1 << 20
_BEFORE_BYTES = 64 << 10


def first_invalid_utf8(stream: io.BufferedIOBase) -> BadByte | None:
    """The first byte of `stream` that is not UTF-8, or None. Reads it whole, block by block:
    only for a file already known to be bad, never on the normal path."""
    lines, carry, tail, cr = 1, b"", b"", False  # tail: the current line before `data`
    while True:
        block = stream.read(_SCAN_BYTES)
        data = carry + block
        if not data:
            return None
        try:
            data.decode("utf-8")
            good = len(data)
        except UnicodeDecodeError as exc:
            cut = bool(block) and exc.end == len(data) and exc.reason == "unexpected end of data"
            if not cut:  # a bad byte (or a character cut by the end of the file)
                start = max(data.rfind(b"\n", 0, exc.start), data.rfind(b"\r", 0, exc.start))
                before = data[start + 1 : exc.start] if start >= 0 else tail + data[: exc.start]
                lines += line_at(data, exc.start) - 1 - (cr and data.startswith(b"\n"))
                kept = before if len(before) <= _BEFORE_BYTES else None
                return BadByte(lines, data[exc.start], kept)
            good = exc.start  # a character cut by the block's end: finish it with the next
        checked, carry = data[:good], data[good:]
        lines += line_at(checked, good) - 1 - (cr and checked.startswith(b"\n"))
        start = max(checked.rfind(b"\n"), checked.rfind(b"\r"))
        tail = checked[start + 1 :] if start >= 0 else (tail + checked)[-_BEFORE_BYTES - 1 :]
        cr = checked.endswith(b"\r") if checked else cr


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
