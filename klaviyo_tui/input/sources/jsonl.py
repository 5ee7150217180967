"""JSON Lines (compressed or not): one JSON object per line, read a chunk of lines at a time.

Lines are read with a length cap, so a file without line breaks (or one enormous record) is
refused with its line number instead of being read into memory whole. Each chunk is parsed by
pandas exactly as `read_json(lines=True, chunksize=...)` would (blank lines skipped, values kept
as they are typed in the JSON). pyarrow's JSON reader is faster but refuses a column whose type
changes from line to line (a number, then a string), which real exports have. When pandas refuses
a chunk, its lines are checked one by one for the message: pandas gives a byte position in the
chunk, not a line of the file.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator

import pandas as pd

from klaviyo_tui.input.sources.common import SourceError, check_width, numbered
from klaviyo_tui.input.sources.files import FileKind, OpenSource, open_stream
from klaviyo_tui.input.sources.watch import PassTracker

#: The longest line (one record) accepted. A customer record is a few KB; 16 MB leaves room for
#: large nested properties while keeping a runaway line from filling memory.
MAX_LINE_BYTES = 16 << 20
_READ_BYTES = 4 << 20
#: JSON's names for what a line that is not an object holds, for the message.
_JSON_TYPES: dict[type, str] = {
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


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


def _problem(line: bytes) -> tuple[str, str] | None:
    """What is wrong with one line of JSON Lines and what to do, in words; None if nothing is."""
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return (
            f"has the byte 0x{line[exc.start]:02X}, which is not UTF-8",
            "Fix that line, or export the whole file again as UTF-8",
        )
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc.msg} at character {exc.colno})"
    else:
        if isinstance(value, dict):
            return None
        problem = f"holds a JSON {_JSON_TYPES.get(type(value), 'value')}, not an object"
    return problem, "A JSON Lines file holds one JSON object per line: fix that line"


def _refusal(src: OpenSource, kind: FileKind, lines: list[bytes], start: int) -> SourceError | None:
    """Why pandas refused `lines` (records start+1, ...), with the file line to fix."""
    for index, line in enumerate(lines):
        if (problem := _problem(line)) is not None:
            number = _line_number(src, kind, start + index + 1)
            other = (
                " If the file is not JSON Lines at all, name it by its type." if number == 1 else ""
            )
            return SourceError(
                f"Cannot read {src.path} as {kind.label}: line {number:,} {problem[0]}. "
                f"{problem[1]}, then retry.{other}"
            )
    return None


def _line_number(src: OpenSource, kind: FileKind, record: int) -> int:
    """The file line of the `record`-th non-blank line, read again (only to explain an error)."""
    done = 0
    with open_stream(src, kind) as stream:
        for lines in _split(stream, str(src.path)):
            for index, line in enumerate(lines):
                if line.strip():
                    record -= 1
                    if record == 0:
                        return done + index + 1
            done += len(lines)
    return done


def _lines(stream: io.BufferedIOBase, where: str) -> Iterator[list[bytes]]:
    """The file's non-blank lines, a block at a time; no line may pass MAX_LINE_BYTES."""
    for lines in _split(stream, where):
        yield [line for line in lines if line.strip()]


def _split(stream: io.BufferedIOBase, where: str) -> Iterator[list[bytes]]:
    """All the file's lines, a block at a time; no line may pass MAX_LINE_BYTES."""
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
        yield lines
    if carry:
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
                df = _checked(src, kind, pending[:chunk_rows], columns, start)
                yield numbered(df, start)
                start += len(df)
                del pending[:chunk_rows]
        if pending:
            yield numbered(_checked(src, kind, pending, columns, start), start)


def _checked(
    src: OpenSource, kind: FileKind, lines: list[bytes], columns: list[str] | None, start: int
) -> pd.DataFrame:
    """`_parse`, or a SourceError naming the first line pandas could not read."""
    try:
        return _parse(lines, columns, str(src.path))
    except (ValueError, TypeError):  # bad JSON or UTF-8; TypeError: objects mixed with others
        refusal = _refusal(src, kind, lines, start)
        if refusal is None:
            raise
        raise refusal from None
