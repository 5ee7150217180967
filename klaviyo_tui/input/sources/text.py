"""Delimited text (CSV, TSV, ...; compressed or not) with pyarrow's streaming CSV reader.

Much faster than pandas, and every column is read as a string, so zip codes and ids keep their
leading zeros. Encoding and delimiter are detected on the first 256 KB of the decompressed text;
the header row is read whole (up to MAX_HEADER_BYTES) before anything else, so a very wide header
is counted, not cut. Text that is neither all UTF-8 nor all cp1252 is refused with the line to
fix, never read one way or the other: either way, some of its accents would arrive corrupted.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from klaviyo_tui.input.sources.common import (
    MAX_COLUMNS,
    SourceError,
    check_width,
    first_invalid_utf8,
    line_at,
    rebatch,
    select,
)
from klaviyo_tui.input.sources.files import FileKind, OpenSource, open_stream
from klaviyo_tui.input.sources.watch import PassTracker

SAMPLE_BYTES = 256 * 1024
# The streaming reader reads ~25 blocks ahead of the consumer, so its memory is ~25 x this size:
# measured at 1M rows, 2 MB blocks held 50-75 MB in Arrow's pool, 256 KB blocks ~9 MB, same CPU.
_BLOCK_BYTES = 256 << 10
# A row must fit in one block: files with huge fields are read again with bigger blocks.
BLOCK_SIZES = (_BLOCK_BYTES, 8 << 20, 64 << 20)
#: The header row must fit in this much text (it is also the largest row the reader accepts).
MAX_HEADER_BYTES = BLOCK_SIZES[-1]


#: One well-formed UTF-8 character of two to four bytes (RFC 3629's table).
_UTF8_CHAR = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


class MixedEncoding(ValueError):
    """UTF-8 characters and bytes that are not UTF-8 in one sample: read as UTF-8 the bad bytes
    fail, read as cp1252 every correct accent turns into two wrong characters (é -> Ã©)."""

    def __init__(self, utf8_at: int, bad_at: int) -> None:
        super().__init__("the text mixes UTF-8 with bytes that are not UTF-8")
        self.utf8_at = utf8_at  # offset of the first well-formed multibyte character
        self.bad_at = bad_at  # offset of the first byte that is not UTF-8


def detect_encoding(sample: bytes, *, whole: bool = False) -> str:
    """BOMs first, then UTF-8 if it decodes, then cp1252 (a superset of Latin-1 printables) when
    no multibyte UTF-8 character is there; MixedEncoding when one is (neither reading is right).
    `whole`: the sample is the whole file, so a character cut at its end is not the sample's."""
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
        if not whole and exc.reason == "unexpected end of data" and exc.end == len(sample):
            return "utf-8"  # a multibyte character cut by the sample boundary
        if utf8 := _UTF8_CHAR.search(sample):
            raise MixedEncoding(utf8.start(), exc.start) from None
        return "cp1252"


def _mixed(where: str, data: bytes, exc: MixedEncoding) -> SourceError:
    """The refusal of a file that is part UTF-8, part not: both lines, so either can be checked."""
    found = _UTF8_CHAR.match(data, exc.utf8_at)
    char = found.group().decode() if found else "?"
    # the same bytes as cp1252 (a Windows export): "é" as "Ã©", or, when the file is cp1252 after
    # all, what they were ("ß“" reads as the UTF-8 character "ߓ"): the user can tell which
    as_cp1252 = found.group().decode("cp1252", errors="replace") if found else "?"
    line = line_at(data, exc.bad_at)
    return SourceError(
        f"{where} mixes two text encodings: line {line_at(data, exc.utf8_at):,} has UTF-8 text "
        f"({char!r}; {as_cp1252!r} if read as cp1252) but line {line:,} has the byte "
        f"0x{data[exc.bad_at]:02X}, which is not UTF-8; "
        f"read either way, some of its text would be corrupted. Fix line {line:,}, or export the "
        "whole file again as UTF-8, then retry."
    )


def _not_utf8(
    src: OpenSource, kind: FileKind, delimiter: str, header: list[str], arrow: str
) -> SourceError | None:
    """pyarrow's "invalid UTF8 data" with the line to fix: pyarrow names no line, and its column
    number counts from 0. The file is read again for it, only after pyarrow has failed."""
    with open_stream(src, kind) as stream:
        bad = first_invalid_utf8(stream)
    if bad is None:
        return None
    column = ""
    index = re.search(r"column #(\d+)", arrow)
    if index is not None and bad.before is not None:
        try:  # the byte's column, by its line up to it; named only if pyarrow's agrees
            fields = next(csv.reader([bad.before.decode("utf-8")], delimiter=delimiter), [""])
        except csv.Error:
            fields = []
        if len(fields) - 1 == int(index.group(1)) < len(header):
            column = f" (column {header[len(fields) - 1]!r})"
    return SourceError(
        f"Cannot read {src.path}: it is not valid UTF-8 at line {bad.line:,}{column}, which has "
        f"the byte 0x{bad.byte:02X}. Fix that line, or export the whole file again as UTF-8, "
        "then retry."
    )


DELIMITERS = ",;\t|"
_SAMPLE_RECORDS = 50


def detect_delimiter(text: str, suffix: str) -> str:
    """The candidate under which the csv module reads the sample most like a table: a header of
    more than one column, then records of the header's width; on a tie, the earlier candidate.

    csv.Sniffer guessed from quote marks next to delimiters, so one quoted cell holding a tab
    (`",\t"`) in the first rows turned a comma file into one tab-separated column."""
    if suffix in (".tsv", ".tab"):
        return "\t"
    sample = text.lstrip("\ufeff")
    if not sample.endswith(("\n", "\r")):  # the sample may end inside a record: leave it out
        sample = sample[: max(sample.rfind("\n"), sample.rfind("\r")) + 1] or sample
    best, best_score = ",", (False, 0.0, 0)
    for candidate in DELIMITERS:
        records = _records(sample, candidate)
        if not records:
            continue
        width = len(records[0])
        rest = records[1:]
        same = sum(len(r) == width for r in rest) / len(rest) if rest else 1.0
        score = (width > 1, same, width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _records(sample: str, delimiter: str) -> list[list[str]]:
    """The sample's first records under `delimiter` (blank lines skipped), up to a parse error."""
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    try:
        for record in reader:
            if record:
                records.append(record)
                if len(records) > _SAMPLE_RECORDS:
                    break
    except csv.Error:
        pass
    return records


def _read(stream: io.BufferedIOBase, size: int) -> bytes:
    """Up to `size` bytes; fewer only at the end of the stream."""
    parts, got = [], 0
    while got < size and (chunk := stream.read(size - got)):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _first_record(text: str, delimiter: str, where: str) -> tuple[list[str], bool]:
    """The header row and whether the text holds all of it (the parser got past it)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise SourceError(f"{where}: cannot read the header row: {exc}.") from None
    try:
        next(reader)
    except StopIteration:
        return header, False
    except csv.Error:
        pass  # a problem in a data row is the reader's to report, with its row
    return header, True


def _header(src: OpenSource, kind: FileKind) -> tuple[str, str, list[str], int]:
    """Encoding, delimiter, the whole header row and the bytes read to find all of it."""
    where = str(src.path)
    with open_stream(src, kind) as stream:
        data = _read(stream, SAMPLE_BYTES)
        if not data.strip():
            raise SourceError(f"{where} is empty.")
        try:
            encoding = detect_encoding(data, whole=len(data) < SAMPLE_BYTES)
        except MixedEncoding as exc:
            raise _mixed(where, data, exc) from None
        text = data.decode(encoding, errors="replace")
        delimiter = detect_delimiter(text, kind.suffix)
        ended = len(data) < SAMPLE_BYTES
        while True:
            header, whole = _first_record(text, delimiter, where)
            if whole or ended:
                return encoding, delimiter, header, len(data)
            if len(data) >= MAX_HEADER_BYTES:
                if len(header) > MAX_COLUMNS:
                    raise SourceError(
                        f"{where}: the header row has more than {len(header):,} columns (in its "
                        f"first {MAX_HEADER_BYTES >> 20} MB alone); the limit is {MAX_COLUMNS:,}."
                    )
                raise SourceError(
                    f"{where}: the header row is larger than {MAX_HEADER_BYTES >> 20} MB; "
                    "this does not look like a delimited text file."
                )
            more = _read(stream, len(data))
            ended = len(more) < len(data)
            data += more
            text = data.decode(encoding, errors="replace")


def csv_chunks(
    src: OpenSource,
    kind: FileKind,
    columns: list[str] | None,
    chunk_rows: int,
    tracker: PassTracker | None,
) -> Iterator[pd.DataFrame]:
    where = str(src.path)
    encoding, delimiter, header, header_bytes = _header(src, kind)
    if not header:
        raise SourceError(f"{where} has no header row.")
    check_width(len(header), f"{where}: the header row")
    if len(header) != len(set(header)):
        counts: dict[str, int] = {}
        for name in header:
            counts[name] = counts.get(name, 0) + 1
        dupes = sorted(name for name, n in counts.items() if n > 1)
        raise SourceError(f"{where}: duplicate column names {dupes}; rename them in the file.")
    if columns is not None:
        select(pd.DataFrame(columns=header), columns, where)
    pa_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    done = 0  # rows already yielded, skipped when a retry starts over
    for block in [size for size in BLOCK_SIZES if size >= header_bytes]:  # header in block 1
        seen = tracker.seen() if tracker is not None else None
        with open_stream(src, kind, seen) as stream:
            try:
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(encoding=pa_encoding, block_size=block),
                    parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types={name: pa.string() for name in header},
                        include_columns=list(columns) if columns is not None else None,
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
                for df in rebatch(_skip(iter(reader), done), chunk_rows, done):
                    done += len(df)
                    yield df
                return
            except pa.ArrowInvalid as exc:
                if "Empty CSV file" in str(exc):
                    raise SourceError(f"{where} has no data rows.") from None
                if pa_encoding == "utf8" and "invalid UTF8" in str(exc):
                    error = _not_utf8(src, kind, delimiter, header, str(exc))
                    if error is not None:
                        raise error from None
                if "straddl" not in str(exc):
                    raise
    raise SourceError(
        f"{where}: a row is larger than {BLOCK_SIZES[-1] >> 20} MB; "
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
