"""JSON Lines (compressed or not): one JSON object per line, read a chunk of lines at a time.

Lines are read with a length cap, so a file without line breaks (or one enormous record) is
refused with its line number instead of being read into memory whole. Each chunk is parsed by
pandas exactly as `read_json(lines=True, chunksize=...)` would (blank lines skipped, values kept
as they are typed in the JSON). pyarrow's JSON reader is faster but refuses a column whose type
changes from line to line (a number, then a string), which real exports have.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator

import pandas as pd

from klaviyo_tui.input.sources.common import SourceError, check_width, numbered
from klaviyo_tui.input.sources.files import FileKind, OpenSource, open_stream
from klaviyo_tui.input.sources.watch import PassTracker

#: The longest line (one record) accepted. A customer record is a few KB; 16 MB leaves room for
#: large nested properties while keeping a runaway line from filling memory.
MAX_LINE_BYTES = 16 << 20
_READ_BYTES = 4 << 20


def _parse(lines: list[bytes], columns: list[str] | None, where: str) -> pd.DataFrame:
    df = pd.read_json(
        io.BytesIO(b"\n".join(lines)),
        lines=True,
        dtype=False,
        encoding="utf-8",
        encoding_errors="strict",
    )
    check_width(df.shape[1], where)
    if columns is not None:
        for col in columns:  # a key absent from every line of a chunk is just empty
            if col not in df.columns:
                df[col] = None
        df = df[list(columns)]
    return df


def _lines(stream: io.BufferedIOBase, where: str) -> Iterator[list[bytes]]:
    """The file's non-blank lines, a block at a time; no line may pass MAX_LINE_BYTES."""
    carry = b""
    done = 0  # lines before `carry`
    first = True
    while block := stream.read(_READ_BYTES):
        if first and block.startswith(codecs.BOM_UTF8):
            block = block[len(codecs.BOM_UTF8) :]
        first = False
        lines = (carry + block).split(b"\n")
        carry = lines.pop()
        longest = max(map(len, lines), default=0)
        if longest > MAX_LINE_BYTES + 1 or len(carry) > MAX_LINE_BYTES + 1:  # + 1 for "\r"
            too_long = (i for i, line in enumerate(lines) if len(line) > MAX_LINE_BYTES + 1)
            at = next(too_long, len(lines))  # or the unfinished line after them
            raise SourceError(
                f"{where}: line {done + at + 1:,} is longer than {MAX_LINE_BYTES >> 20} MB; "
                "a JSON Lines file holds one record per line (is this one JSON document?)."
            )
        done += len(lines)
        yield [line for line in lines if line.strip()]
    if carry.strip():
        yield [carry]


def jsonl_chunks(
    src: OpenSource,
    kind: FileKind,
    columns: list[str] | None,
    chunk_rows: int,
    tracker: PassTracker | None,
) -> Iterator[pd.DataFrame]:
    where = str(src.path)
    seen = tracker.seen() if tracker is not None else None
    start = 0
    pending: list[bytes] = []
    with open_stream(src, kind, seen) as stream:
        for lines in _lines(stream, where):
            pending.extend(lines)
            while len(pending) >= chunk_rows:
                df = _parse(pending[:chunk_rows], columns, where)
                yield numbered(df, start)
                start += len(df)
                del pending[:chunk_rows]
        if pending:
            yield numbered(_parse(pending, columns, where), start)
