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


def _parse(lines: list[bytes], columns: list[str] | None, where: str) -> pd.DataFrame:
    if not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    df = pd.read_json(
        io.BytesIO(b"".join(lines)),
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


def jsonl_chunks(
    src: OpenSource,
    kind: FileKind,
    columns: list[str] | None,
    chunk_rows: int,
    tracker: PassTracker | None,
) -> Iterator[pd.DataFrame]:
    where = str(src.path)
    seen = tracker.content_hash().update if tracker is not None else None
    start = line_no = 0
    lines: list[bytes] = []
    with open_stream(src, kind, seen) as stream:
        while line := stream.readline(MAX_LINE_BYTES + 2):  # + room for "\r\n"
            line_no += 1
            if len(line) > MAX_LINE_BYTES and len(line.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                raise SourceError(
                    f"{where}: line {line_no:,} is longer than {MAX_LINE_BYTES >> 20} MB; "
                    "a JSON Lines file holds one record per line (is this one JSON document?)."
                )
            if line_no == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8) :]
            if not line.strip():
                continue
            lines.append(line)
            if len(lines) == chunk_rows:
                df = _parse(lines, columns, where)
                yield numbered(df, start)
                start += len(df)
                lines = []
        if lines:
            yield numbered(_parse(lines, columns, where), start)
