"""Text that is not (all) UTF-8, and JSON Lines that is not JSON: refused with the line to fix.

A file that mixes UTF-8 and other bytes must not be read as cp1252 (every correct accent would
arrive as two wrong characters); a bad byte past the detection sample must be reported with its
line, not as pyarrow's 0-based "column #1"; a bad JSON line by its line, not a byte position.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RunSummary
from klaviyo_tui.input.sources import SourceError, read_chunks
from klaviyo_tui.input.sources.common import first_invalid_utf8
from klaviyo_tui.input.sources.text import SAMPLE_BYTES, MixedEncoding, detect_encoding
from klaviyo_tui.run.engine import run_export
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Segment
from klaviyo_tui.store.history import HistoryStore
from tests.support.engine import create_list, import_jobs, list_emails, write_config


def _all(path: Path, **kw: object) -> pd.DataFrame:
    return pd.concat(list(read_chunks(Segment("s", str(path)), **kw)))  # type: ignore[arg-type]


def _error(path: Path, columns: list[str] | None = None, chunk_rows: int = 50_000) -> str:
    with pytest.raises(SourceError) as info:
        list(read_chunks(Segment("s", str(path)), columns, chunk_rows))
    assert info.value.exit_code == ExitCode.INPUT
    return str(info.value)


# ---- A: UTF-8 and other bytes in the sample ----------------------------------------------------

MIXED = "email,name\na@example.com,Café\nb@example.com,Zoë\n".encode() + (
    b"c@example.com,x\xff\xfe\x80y\nd@example.com,Ren\xc3\xa9e\n"
)


def test_detect_encoding_refuses_utf8_mixed_with_other_bytes() -> None:
    with pytest.raises(MixedEncoding) as info:
        detect_encoding(MIXED)
    assert MIXED[info.value.bad_at] == 0xFF
    assert MIXED[info.value.utf8_at : info.value.utf8_at + 2] == "é".encode()


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"name\ncaf\xe9\n", "cp1252"),  # Latin-1 / cp1252: no multibyte UTF-8 anywhere
        (b"name\n\x93quoted\x94 caf\xe9\n", "cp1252"),
        ("name\ncafé\n".encode(), "utf-8"),
        ("name\ncafé".encode()[:-1], "utf-8"),  # a character cut by the end of the sample
    ],
)
def test_detect_encoding_keeps_plain_cp1252_and_utf8(sample: bytes, expected: str) -> None:
    assert detect_encoding(sample) == expected


def test_an_accent_at_the_end_of_a_whole_file_is_not_a_cut_utf8_character() -> None:
    assert detect_encoding(b"name\ncaf\xe9", whole=True) == "cp1252"
    assert detect_encoding(b"name\ncaf\xe9") == "utf-8"  # a sample: the rest may follow


def test_a_mixed_file_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixbytes.csv"
    path.write_bytes(MIXED)
    message = _error(path)
    assert message == (
        f"{path} mixes two text encodings: line 2 has UTF-8 text ('é'; 'Ã©' if read as cp1252) "
        "but line 4 has the byte 0xFF, which is not UTF-8; read either way, some of its text "
        "would be corrupted. Fix line 4, or export the whole file again as UTF-8, then retry."
    )


def test_a_cp1252_pair_that_looks_like_utf8_is_shown_both_ways(tmp_path: Path) -> None:
    """ "ß“" in cp1252 is the bytes of a well-formed UTF-8 character (U+07D3): the file can't be
    told from a mixed one, so it is refused, and the message shows the text the user wrote."""
    path = tmp_path / "latin.csv"
    path.write_bytes("email,name\na@example.com,Fuß“\nb@example.com,café\n".encode("cp1252"))
    message = _error(path)
    assert "('\u07d3'; 'ß“' if read as cp1252)" in message and "line 3 has the byte 0xE9" in message
    (tmp_path / "mixbytes.csv.gz").write_bytes(gzip.compress(MIXED))
    assert "line 4 has the byte 0xFF" in _error(tmp_path / "mixbytes.csv.gz")


def test_a_cp1252_file_is_still_read_as_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"email,name\na@example.com,caf\xe9\nb@example.com,\x93Zo\xeb\x94\n")
    assert list(_all(path)["name"]) == ["café", "\u201cZoë\u201d"]


# ---- B: a bad byte past the sample -------------------------------------------------------------


def _late_bad(path: Path, bad: bytes, rows: int = 20_000) -> Path:
    """`rows` valid UTF-8 rows (well past the 256 KB sample), then `bad` as the last line."""
    body = "".join(f"u{i}@example.com,Zoë {i}\n" for i in range(rows)).encode()
    assert len(body) > SAMPLE_BYTES
    path.write_bytes(b"email,name\n" + body + bad)
    return path


def test_a_bad_byte_past_the_sample_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    path = _late_bad(tmp_path / "late_bad.csv", b"last@example.com,x\xffy\n")
    assert _error(path) == (
        f"Cannot read {path}: it is not valid UTF-8 at line 20,002 (column 'name'), which has "
        "the byte 0xFF. Fix that line, or export the whole file again as UTF-8, then retry."
    )
    gz = tmp_path / "late_bad.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert "not valid UTF-8 at line 20,002 (column 'name')" in _error(gz)


def test_the_line_is_physical_and_a_doubtful_column_is_not_named(tmp_path: Path) -> None:
    """A quoted line break: the line is the file's (as an editor counts), the column unsaid."""
    path = _late_bad(tmp_path / "c.csv", b'last@example.com,"one\r\ntw\xffo"\r\n')
    message = _error(path)
    assert "not valid UTF-8 at line 20,003, which has the byte 0xFF" in message
    assert "column" not in message


def test_first_invalid_utf8_across_block_boundaries() -> None:
    """A character and a CRLF cut by the scan's 1 MB blocks count as one character, one line."""
    head = b"a" * ((1 << 20) - 1)
    data = head + "é\n".encode() + b"x" * ((1 << 20) - 2) + b"\r\nok\rok\nbad\x80"
    bad = first_invalid_utf8(io.BytesIO(data))
    assert bad is not None
    assert (bad.line, bad.byte, bad.before) == (5, 0x80, b"bad")
    assert first_invalid_utf8(io.BytesIO("fine é\n".encode())) is None


async def test_a_run_on_a_late_bad_byte_sends_nothing(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    source = _late_bad(tmp_path / "late_bad.csv", b"la\xffst@example.com,x\n")
    list_id = create_list(sandbox.base_url)
    config = write_config(
        tmp_path / "config.toml",
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"m": source},
    )
    store = HistoryStore()
    try:
        summaries = [
            event
            async for event in run_export(
                config.exports["customers"], config=config, api_key=DEMO_KEY, store=store
            )
            if isinstance(event, RunSummary)
        ]
        assert [s.exit_code for s in summaries] == [ExitCode.INPUT]
        assert "not valid UTF-8 at line 20,002 (column 'email')" in (summaries[0].error or "")
    finally:
        store.close()
    assert import_jobs(sandbox.base_url) == []
    assert list_emails(sandbox.base_url, list_id) == []


# ---- C: JSON Lines --------------------------------------------------------------------------


def _jsonl(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("name", ["c.jsonl", "c.jsonl.gz"])
@pytest.mark.parametrize("chunk_rows", [1, 2, 50_000])
def test_a_bad_json_line_is_reported_by_its_line(
    tmp_path: Path, name: str, chunk_rows: int
) -> None:
    good = b'{"email": "a@example.com", "name": "Ada"}\n'
    data = good + b"\n" + good + b"\r\n" + good + b'{"email": "b@example.com", name}\n' + good
    message = _error(_jsonl(tmp_path, name, data), chunk_rows=chunk_rows)
    assert "position" not in message
    assert f"as {'gzip-compressed ' if name.endswith('.gz') else ''}JSONL: line 6 is not" in message
    assert message.endswith(
        "is not valid JSON (Expecting property name enclosed in double quotes at character 28). "
        "A JSON Lines file holds one JSON object per line: fix that line, then retry."
    )


def test_jsonl_bytes_that_are_not_utf8_and_lines_that_are_not_objects(tmp_path: Path) -> None:
    good = b'{"email": "a@example.com"}\n'
    message = _error(_jsonl(tmp_path, "a.jsonl", good * 3 + b'{"email": "Z\xfcrich"}\n'))
    assert message.endswith(
        "line 4 has the byte 0xFC, which is not UTF-8. Fix that line, or export the whole file "
        "again as UTF-8, then retry."
    )
    message = _error(_jsonl(tmp_path, "b.jsonl", good + b"[1, 2]\n" + good))
    assert "line 2 holds a JSON array, not an object" in message
