"""Sources that attack or surprise: compressed files, pipes and devices, inflating workbooks,
endless lines, enormous headers, and files that change while a run reads them."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.events import RowState, RunSummary
from klaviyo_tui.input import pipeline
from klaviyo_tui.input.sources import (
    SUPPORTED_EXTENSIONS,
    SourceChanged,
    SourceError,
    SourceWatch,
    read_chunks,
)
from klaviyo_tui.input.sources import xlsx as xlsx_source
from klaviyo_tui.input.sources.files import open_source
from klaviyo_tui.input.sources.watch import CHECKPOINT_BYTES
from klaviyo_tui.run.engine import run_export
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config, Export, Mapping, Segment
from klaviyo_tui.store.history import HistoryStore
from tests.support.engine import (
    create_list,
    import_jobs,
    list_emails,
    run_id_of,
    write_config,
    write_customers,
)

ROWS = [
    {"email": "ada@example.com", "zip": "02134", "note": "first"},
    {"email": "grace@example.com", "zip": "90210", "note": "line one\nline two"},
    {"email": "linus@example.com", "zip": "00501", "note": "Zoë, Müller"},
]


def _all(path: Path, **kw: object) -> pd.DataFrame:
    return pd.concat(list(read_chunks(Segment("s", str(path)), **kw)))  # type: ignore[arg-type]


def _error(path: Path | str, columns: list[str] | None = None) -> str:
    with pytest.raises(SourceError) as info:
        list(read_chunks(Segment("s", str(path)), columns))
    assert not isinstance(info.value, SourceChanged)
    return str(info.value)


def _check(df: pd.DataFrame) -> None:
    assert list(df["email"]) == [r["email"] for r in ROWS]
    assert list(df["zip"]) == ["02134", "90210", "00501"]
    assert list(df["note"]) == [r["note"] for r in ROWS]
    assert list(df.index) == [1, 2, 3]


# pandas and pyarrow are untyped here: their text and bytes come back as Any


def _csv(sep: str = ",", encoding: str = "utf-8") -> bytes:
    text: str = pd.DataFrame(ROWS).to_csv(sep=sep, index=False)
    return text.encode(encoding)


def _jsonl() -> bytes:
    text: str = pd.DataFrame(ROWS).to_json(orient="records", lines=True)
    return text.encode()


def _zstd(data: bytes) -> bytes:
    frame: bytes = pa.compress(data, codec="zstd", asbytes=True)  # a standard .zst frame
    return frame


# ---- compressed sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("c.csv.gz", gzip.compress(_csv())),
        ("c.csv.bz2", bz2.compress(_csv(";"))),
        ("c.csv.zst", _zstd(_csv("|"))),
        ("c.csv.xz", lzma.compress(_csv())),
        ("c.tsv.gz", gzip.compress(_csv("\t"))),
        ("c.CSV.GZ", gzip.compress(_csv(encoding="utf-16"))),  # encoding found after inflating
        ("c.txt.gz", gzip.compress(_csv(";", "cp1252"))),
        ("c.jsonl.gz", gzip.compress(_jsonl())),
        ("c.ndjson.zst", _zstd(_jsonl())),
        ("c.jsonl.bz2", bz2.compress(_jsonl())),
    ],
)
def test_compressed_text_is_read_as_a_stream(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    _check(_all(tmp_path / name))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def test_a_zip_with_one_file_is_read_by_that_file_s_type(tmp_path: Path) -> None:
    _check(_all(_zip(tmp_path / "a.zip", {"export/customers.tsv": _csv("\t")})))
    _check(_all(_zip(tmp_path / "b.zip", {"customers.jsonl": _jsonl(), "__MACOSX/._x": b"."})))


def test_a_zip_must_hold_exactly_one_file(tmp_path: Path) -> None:
    many = _zip(tmp_path / "m.zip", {f"part{i}.csv": _csv() for i in range(12)})
    message = _error(many)
    assert "exactly one file" in message
    assert "'part0.csv'" in message and "'part9.csv'" in message and "2 more" in message
    assert "holds no files" in _error(_zip(tmp_path / "none.zip", {}))
    message = _error(_zip(tmp_path / "pq.zip", {"c.parquet": b"PAR1"}))
    assert "'c.parquet'" in message and "not delimited text" in message
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    assert "not a valid .zip" in _error(tmp_path / "fake.zip")


def test_damaged_or_mislabelled_compression_is_reported(tmp_path: Path) -> None:
    data = gzip.compress(_csv() * 2000)
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    assert "Cannot read" in _error(tmp_path / "cut.csv.gz")
    assert "gzip-compressed CSV" in _error(tmp_path / "cut.csv.gz")
    (tmp_path / "plain.csv.gz").write_bytes(_csv())
    assert "gzip-compressed CSV" in _error(tmp_path / "plain.csv.gz")
    (tmp_path / "c.parquet.gz").write_bytes(b"x")
    assert "decompress it first" in _error(tmp_path / "c.parquet.gz")
    (tmp_path / "customers.gz").write_bytes(gzip.compress(_csv()))
    assert "customers.csv.gz" in _error(tmp_path / "customers.gz")


def test_supported_types_include_compressed_ones(tmp_path: Path) -> None:
    for ext in (".csv.gz", ".tsv.bz2", ".jsonl.zst", ".csv.xz", ".zip"):
        assert ext in SUPPORTED_EXTENSIONS
    (tmp_path / "a.doc").write_text("x")
    message = _error(tmp_path / "a.doc")
    assert ".gz" in message and ".zst" in message and ".zip" in message


# ---- only regular files ---------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.csv")
    assert "named pipe (FIFO), not a regular file" in _error(tmp_path / "x.csv")
    seg = Segment("s", str(tmp_path / "x.csv"), query="select 1")  # a SQLite path, too
    with pytest.raises(SourceError, match="not a regular file"):
        list(read_chunks(seg))


@pytest.mark.timeout(20)
def test_a_fifo_swapped_in_after_the_path_check_is_refused_on_the_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the path checked out as a file, then became a FIFO before it was opened."""
    from klaviyo_tui.input.sources import files

    os.mkfifo(tmp_path / "x.csv")
    monkeypatch.setattr(files, "check_path", lambda path: None)
    with pytest.raises(SourceError, match="named pipe"), open_source(tmp_path / "x.csv"):
        pass


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("name", "device"), [("x.jsonl", "/dev/zero"), ("x.xlsx", "/dev/zero"), ("x.csv", "/dev/zero")]
)
def test_devices_are_refused(tmp_path: Path, name: str, device: str) -> None:
    (tmp_path / name).symlink_to(device)
    assert "character device, not a regular file" in _error(tmp_path / name)


def test_dev_null_is_not_an_empty_csv(tmp_path: Path) -> None:
    (tmp_path / "x.csv").symlink_to("/dev/null")
    assert "not a regular file" in _error(tmp_path / "x.csv")


# ---- bounded memory: xlsx and JSON Lines -------------------------------------------------------


def _xlsx(path: Path, rows: int) -> Path:
    pd.DataFrame({"email": [f"u{i}@example.com" for i in range(rows)], "n": range(rows)}).to_excel(
        path, index=False
    )
    return path


def _rewrite_sheet(path: Path, change: object) -> None:
    with zipfile.ZipFile(path) as src:
        parts = {i.filename: src.read(i.filename) for i in src.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = change(parts[sheet])  # type: ignore[operator]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in parts.items():
            out.writestr(name, data)


def test_xlsx_is_streamed_not_loaded_whole(tmp_path: Path) -> None:
    """A sheet cut off near its end still yields its first rows: nothing waits for the whole."""
    path = _xlsx(tmp_path / "c.xlsx", 3_000)
    _rewrite_sheet(path, lambda xml: xml[: int(len(xml) * 0.9)])
    chunks = read_chunks(Segment("s", str(path)), chunk_rows=500)
    first = next(chunks)
    assert list(first.index[:2]) == [1, 2] and first["email"].iloc[0] == "u0@example.com"
    with pytest.raises(SourceError, match="Cannot read"):
        list(chunks)


def test_xlsx_chunks_carry_row_numbers(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "c.xlsx", 2_500)
    chunks = list(read_chunks(Segment("s", str(path)), ["email"], chunk_rows=1_000))
    assert [len(c) for c in chunks] == [1_000, 1_000, 500]
    assert chunks[2].index[-1] == 2_500 and chunks[2]["email"].iloc[-1] == "u2499@example.com"


def test_xlsx_zip_bomb_is_refused_before_reading(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "c.xlsx", 3)
    _rewrite_sheet(
        path, lambda xml: xml.replace(b"<sheetData>", b"<sheetData>" + b" " * (20 << 20))
    )
    message = _error(path)
    assert "zip bomb" in message and "xl/worksheets/sheet1.xml" in message


def test_xlsx_sheet_over_the_cap_is_refused_with_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _xlsx(tmp_path / "c.xlsx", 20_000)
    size = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml").file_size
    monkeypatch.setattr(xlsx_source, "MAX_SHEET_BYTES", size - 1)  # 1 GiB is too big to build
    message = _error(path)
    assert f"inflates to {size / (1 << 20):,.0f} MB" in message and "limit" in message
    monkeypatch.setattr(xlsx_source, "MAX_SHEET_BYTES", size)
    assert len(_all(path)) == 20_000


def test_jsonl_line_over_the_cap_is_refused_with_its_number(tmp_path: Path) -> None:
    big = '{"email": "b@example.com", "note": "' + "x" * (16 << 20) + '"}'
    lines = ['{"email": "a@example.com"}', "", big, '{"email": "c@example.com"}']
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    message = _error(tmp_path / "c.jsonl")
    assert "line 3 is longer than 16 MB" in message
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress((tmp_path / "c.jsonl").read_bytes()))
    assert "line 3 is longer than 16 MB" in _error(tmp_path / "c.jsonl.gz")


def test_jsonl_blank_lines_bom_and_last_line_without_newline(tmp_path: Path) -> None:
    text = '\ufeff{"email": "a@example.com"}\n\n  \n{"email": "b@example.com", "n": 2}'
    (tmp_path / "c.jsonl").write_text(text, encoding="utf-8")
    df = _all(tmp_path / "c.jsonl", chunk_rows=1)
    assert list(df["email"]) == ["a@example.com", "b@example.com"]
    assert list(df.index) == [1, 2]


# ---- headers ----------------------------------------------------------------------------------


def test_a_million_column_header_is_counted_not_misread(tmp_path: Path) -> None:
    header = ",".join(f"column_{i}" for i in range(1_000_000))
    (tmp_path / "c.csv").write_text(header + "\n" + "x," * 999_999 + "x\n")
    message = _error(tmp_path / "c.csv")
    assert "has 1,000,000 columns; the limit is 10,000" in message
    assert "duplicate" not in message


def test_one_column_over_the_cap_is_refused_and_the_cap_itself_is_read(tmp_path: Path) -> None:
    names = ["email", *[f"c{i}" for i in range(1, 10_001)]]
    (tmp_path / "wide.csv").write_text(",".join(names) + "\n" + "a@example.com" + ",v" * 10_000)
    assert "has 10,001 columns; the limit is 10,000" in _error(tmp_path / "wide.csv")
    (tmp_path / "ok.csv").write_text(",".join(names[:-1]) + "\n" + "a@example.com" + ",v" * 9_999)
    assert len(_all(tmp_path / "ok.csv").columns) == 10_000


def test_a_header_longer_than_the_sample_is_read_whole(tmp_path: Path) -> None:
    """8,000 long names: ~500 KB of header, more than the 256 KB sample the delimiter needs."""
    names = [f"a_rather_long_and_descriptive_column_name_number_{i:05d}_" for i in range(8_000)]
    names[-1] = "email"
    (tmp_path / "c.csv").write_text(",".join(names) + "\n" + "v," * 7_999 + "a@example.com\n")
    df = _all(tmp_path / "c.csv", columns=["email", names[0]])
    assert df.loc[1, "email"] == "a@example.com" and df.loc[1, names[0]] == "v"


def test_parquet_over_the_column_cap_is_refused(tmp_path: Path) -> None:
    table = pa.table({f"c{i}": [str(i)] for i in range(10_001)})
    pq.write_table(table, tmp_path / "c.parquet")
    assert "has 10,001 columns" in _error(tmp_path / "c.parquet")


# ---- a source that changes while it is read ---------------------------------------------------


def _passes(path: Path, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Pass 1 whole (recorded by the watch), then pass 2 through the same watch."""
    watch = SourceWatch()
    seg = Segment("s", str(path))
    assert sum(len(df) for df in read_chunks(seg, columns, 1_000, watch=watch)) > 0
    return read_chunks(seg, columns, 1_000, watch=watch)


def _customers(n: int) -> bytes:
    return "".join(["email,name\n", *[f"u{i}@example.com,N{i:06d}\n" for i in range(n)]]).encode()


def _same_size_same_mtime(path: Path, offset: int) -> None:
    """Change one byte in place and put the modification time back: only the content differs."""
    st = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(b"7" if byte != b"7" else b"8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _write(path: Path, name: str, data: bytes) -> Path:
    target = path / name
    target.write_bytes(data)
    return target


@pytest.mark.parametrize(
    "name", ["c.csv", "c.csv.gz", "c.jsonl", "c.zip", "c.xlsx", "c.parquet", "c.tsv.zst"]
)
def test_an_unchanged_file_reads_twice_without_complaint(tmp_path: Path, name: str) -> None:
    rows = pd.DataFrame({"email": [f"u{i}@example.com" for i in range(2_500)]})
    path = tmp_path / name
    if name.endswith(".xlsx"):
        rows.to_excel(path, index=False)
    elif name.endswith(".parquet"):
        rows.to_parquet(path)
    elif name.endswith(".jsonl"):
        rows.to_json(path, orient="records", lines=True)
    elif name.endswith(".zip"):
        _zip(path, {"c.csv": rows.to_csv(index=False).encode()})
    elif name.endswith(".zst"):
        path.write_bytes(_zstd(rows.to_csv(index=False).encode()))
    else:
        rows.to_csv(path, index=False)
    assert sum(len(df) for df in _passes(path)) == 2_500


def test_replaced_between_passes(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", _customers(100))
    passes = _passes(path)
    _write(tmp_path, "new.csv", _customers(100)).replace(path)  # same bytes, another file
    with pytest.raises(SourceChanged, match="replaced by another file") as info:
        next(passes)
    assert info.value.exit_code == ExitCode.INTERRUPTED
    assert isinstance(info.value, AppError)
    assert "Resume it once the file is stable" in str(info.value)


@pytest.mark.parametrize("how", ["appended", "truncated"])
def test_resized_between_passes(tmp_path: Path, how: str) -> None:
    path = _write(tmp_path, "c.csv", _customers(100))
    passes = _passes(path, ["email"])
    data = _customers(101) if how == "appended" else _customers(99)
    path.write_bytes(data)
    with pytest.raises(SourceChanged, match="its size went from"):
        next(passes)


@pytest.mark.parametrize("name", ["c.csv", "c.csv.gz", "c.jsonl", "c.parquet", "c.xlsx"])
def test_content_changed_in_place_with_the_same_size_and_time(tmp_path: Path, name: str) -> None:
    df = pd.DataFrame({"email": [f"u{i}@example.com" for i in range(2_000)]})
    path = tmp_path / name
    {
        "c.csv": lambda: df.to_csv(path, index=False),
        "c.csv.gz": lambda: path.write_bytes(gzip.compress(df.to_csv(index=False).encode())),
        "c.jsonl": lambda: df.to_json(path, orient="records", lines=True),
        "c.parquet": lambda: df.to_parquet(path),
        "c.xlsx": lambda: df.to_excel(path, index=False),
    }[name]()
    passes = _passes(path)
    _same_size_same_mtime(path, path.stat().st_size - 20)
    with pytest.raises(SourceChanged, match="changed while it was being read"):
        list(passes)


def test_content_change_is_noticed_early_in_a_large_file(tmp_path: Path) -> None:
    """Checkpoint digests catch a change in the first MBs long before the last chunk is read."""
    path = _write(tmp_path, "c.csv", _customers(700_000))  # ~19 MB: four checkpoints
    assert path.stat().st_size > 4 * CHECKPOINT_BYTES
    passes = _passes(path)
    _same_size_same_mtime(path, path.read_bytes().index(b"u40@") + 1)  # u40@ -> u70@
    seen: list[int] = []
    with pytest.raises(SourceChanged, match="content differs"):
        seen.extend(len(df) for df in passes)
    assert sum(seen) < 350_000


def test_appended_during_a_pass(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", _customers(5_000))
    chunks = read_chunks(Segment("s", str(path)), chunk_rows=1_000, watch=SourceWatch())
    next(chunks)
    with open(path, "ab") as handle:
        handle.write(b"late@example.com,Late\n")
    with pytest.raises(SourceChanged, match="its size went from"):
        list(chunks)


def test_deleted_during_a_pass(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.csv", _customers(5_000))
    chunks = read_chunks(Segment("s", str(path)), chunk_rows=1_000, watch=SourceWatch())
    next(chunks)
    path.unlink()
    with pytest.raises(SourceChanged, match="deleted or moved"):
        list(chunks)


def test_the_pipeline_compares_its_two_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "c.csv", _customers(100))
    export = Export("e", "sandbox", "L1", ("s",), Mapping(email="email"))
    real_first_pass = pipeline.first_pass

    def first_pass_then_edit(*args: object, **kw: object) -> object:
        done = real_first_pass(*args, **kw)  # type: ignore[arg-type]
        path.write_bytes(_customers(100).replace(b"u7@", b"v7@"))
        return done

    monkeypatch.setattr(pipeline, "first_pass", first_pass_then_edit)
    with pytest.raises(SourceChanged):
        list(pipeline.iter_validated(export, {"s": Segment("s", str(path))}))


# ---- the engine: an interrupted, resumable run with true counts ---------------------------------


async def _drain(config: Config, store: HistoryStore, **kw: object) -> RunSummary:
    summary = None
    async for event in run_export(
        config.exports["customers"],
        config=config,
        api_key=DEMO_KEY,
        store=store,
        **kw,  # type: ignore[arg-type]
    ):
        if isinstance(event, RunSummary):
            summary = event
    assert summary is not None
    return summary


def _edit_after_first_pass(monkeypatch: pytest.MonkeyPatch, path: Path, data: bytes) -> None:
    real_first_pass = pipeline.first_pass

    def first_pass_then_replace(*args: object, **kw: object) -> object:
        done = real_first_pass(*args, **kw)  # type: ignore[arg-type]
        (path.parent / "incoming.csv").write_bytes(data)
        (path.parent / "incoming.csv").replace(path)  # how exports usually land: a rename
        monkeypatch.setattr(pipeline, "first_pass", real_first_pass)  # once
        return done

    monkeypatch.setattr(pipeline, "first_pass", first_pass_then_replace)


def _rows(start: int, n: int) -> list[dict[str, str]]:
    return [{"email": f"c{i}@example.com"} for i in range(start, start + n)]


async def test_engine_stops_as_interrupted_when_the_file_is_replaced_between_passes(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_customers(tmp_path / "c.csv", _rows(0, 50))
    list_id = create_list(sandbox.base_url)
    config = write_config(
        tmp_path / "config.toml", base_url=sandbox.base_url, list_id=list_id, sources={"m": source}
    )
    _edit_after_first_pass(monkeypatch, source, source.read_bytes() + b"late@example.com\n")
    store = HistoryStore()
    try:
        summary = await _drain(config, store)
        assert summary.exit_code == ExitCode.INTERRUPTED
        assert summary.error is not None and "changed while it was being read" in summary.error
        assert summary.counts[RowState.NOT_SENT.value] == 0
        assert summary.counts[RowState.IMPORTED.value] == 0
        assert import_jobs(sandbox.base_url) == [] and list_emails(sandbox.base_url, list_id) == []
        record = store.run(run_id_of(summary))
        assert record is not None and record.status == "interrupted"
        assert store.resumable_run("customers") is not None
        resumed = await _drain(config, store, resume=True)  # the file is stable now
        assert resumed.exit_code == ExitCode.OK and resumed.run_id == summary.run_id
        assert len(list_emails(sandbox.base_url, list_id)) == 51
    finally:
        store.close()


async def test_engine_counts_what_klaviyo_accepted_before_the_change_as_imported(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segment a fills a whole batch (sent) before segment b, replaced after pass 1, is reached."""
    a = write_customers(tmp_path / "a.csv", _rows(0, 10_050))
    b = write_customers(tmp_path / "b.csv", _rows(20_000, 30))
    list_id = create_list(sandbox.base_url)
    config = write_config(
        tmp_path / "config.toml",
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"a": a, "b": b},
    )
    new_b = write_customers(tmp_path / "next-b.csv", _rows(30_000, 40)).read_bytes()
    _edit_after_first_pass(monkeypatch, b, new_b)
    store = HistoryStore()
    try:
        summary = await _drain(config, store)
        assert summary.exit_code == ExitCode.INTERRUPTED, summary.error
        assert summary.counts[RowState.IMPORTED.value] == 10_000  # batch 1, confirmed
        assert summary.counts[RowState.NOT_SENT.value] == 50  # read from a, never sent
        assert len(list_emails(sandbox.base_url, list_id)) == 10_000
        jobs = len(import_jobs(sandbox.base_url))
        assert jobs == 1
        resumed = await _drain(config, store, resume=True)
        assert resumed.exit_code == ExitCode.OK, resumed.error
        assert resumed.counts[RowState.IMPORTED.value] == 10_090
        assert len(import_jobs(sandbox.base_url)) == jobs + 1  # batch 1 was not sent again
        members = set(list_emails(sandbox.base_url, list_id))
        assert members == {r["email"] for r in [*_rows(0, 10_050), *_rows(30_000, 40)]}
    finally:
        store.close()


async def test_the_file_picker_shows_compressed_sources(tmp_path: Path) -> None:
    from textual.app import App, ComposeResult

    from klaviyo_tui.tui.screens.pickers import SourceTree

    names = ["a.csv.gz", "b.TSV.BZ2", "c.jsonl.zst", "d.zip", "e.csv", "f.doc", "g.tar.gz"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    paths = [tmp_path / name for name in names]

    class Picker(App[None]):
        def compose(self) -> ComposeResult:
            yield SourceTree(tmp_path, SUPPORTED_EXTENSIONS)

    async with Picker().run_test() as pilot:
        tree = pilot.app.query_one(SourceTree)
        shown = {p.name for p in tree.filter_paths(paths)}
    assert shown == {"a.csv.gz", "b.TSV.BZ2", "c.jsonl.zst", "d.zip", "e.csv"}


def test_an_error_only_the_second_pass_meets_in_an_unchanged_file_stays_an_input_error(
    tmp_path: Path,
) -> None:
    """pyarrow checks UTF-8 only in the columns it converts: pass 2 reads more of them."""
    rows = [f"u{i}@example.com,City{i}\n".encode() for i in range(20_000)]
    rows[15_000] = b"u15000@example.com,Z\xfcrich\n"  # Latin-1, past the 256 KB sample
    path = _write(tmp_path, "c.csv", b"email,city\n" + b"".join(rows))
    watch = SourceWatch()
    seg = Segment("s", str(path))
    assert sum(len(df) for df in read_chunks(seg, ["email"], 1_000, watch=watch)) == 20_000
    with pytest.raises(SourceError, match="Cannot read") as info:
        list(read_chunks(seg, ["email", "city"], 1_000, watch=watch))
    assert not isinstance(info.value, SourceChanged)
    assert info.value.exit_code == ExitCode.INPUT
