"""Malformed input (tests/corpus.py) ends in one clear message and the right exit code, never a
traceback; unusable input sends nothing to Klaviyo, partly bad input delivers its valid rows and
lists the others, with reasons, in the rejects file.

Every case runs in-process through the engine; a representative set also runs through the CLI in
a subprocess, and a handful through the TUI. One sandbox serves the whole module.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RunSummary
from klaviyo_tui.run.engine import run_export
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.history import HistoryStore
from tests.support.corpus import BY_NAME, CASES, Case, Source
from tests.support.engine import create_list, import_jobs, list_emails, write_config

CLI_CASES = [
    "empty_file",
    "header_only",
    "no_email_column",
    "every_email_invalid",
    "binary_garbage",
    "truncated_parquet",
    "truncated_xlsx",
    "csv_named_parquet",
    "pdf_extension",
    "missing_path",
    "directory",
    "sql_missing_table",
    "sql_driver_missing",
    "utf16_bom",
    "formula_cells",
    "idn_and_unicode_emails",
    "gzip_csv",
    "zip_two_members",
    "fifo_named_csv",
    "million_columns",
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.0)) as server:
        yield server


def configure(case: Case, tmp_path: Path, base_url: str) -> tuple[str, Source, Config]:
    """A fresh list and a config with one segment reading the case's source."""
    source = case.build(tmp_path)
    list_id = create_list(base_url, name=case.name)
    path = Path(os.environ["KLAVIYO_TUI_CONFIG"])
    write_config(
        path,
        base_url=base_url,
        list_id=list_id,
        sources={"main": Path(source.path)},
        mapping=case.mapping,
    )
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    document["segments"]["main"]["source"] = source.path
    if source.query:
        document["segments"]["main"]["query"] = source.query
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    from klaviyo_tui.store.config_read import load_config

    return list_id, source, load_config(path)


def read_rejects(path: Path | None) -> dict[int, str]:
    assert path is not None and path.exists()
    with open(path, newline="", encoding="utf-8") as handle:
        return {int(r["row"]): r["reason"].lower() for r in csv.DictReader(handle)}


def check_outcome(
    case: Case,
    base_url: str,
    list_id: str,
    jobs_before: int,
    exit_code: int,
    message: str,
    rejects_path: Path | None,
) -> None:
    members = list_emails(base_url, list_id)
    if case.unusable:
        assert exit_code == ExitCode.INPUT, message
        assert case.message in message.lower(), message
        assert members == []
        assert len(import_jobs(base_url)) == jobs_before  # nothing but reading the list
        return
    assert exit_code == ExitCode.OK, message
    assert sorted(members) == sorted(case.delivered)
    rejects = read_rejects(rejects_path) if case.rejected else {}
    assert sorted(rejects) == sorted(row for row, _ in case.rejected)
    for row, reason in case.rejected:
        assert reason in rejects[row], rejects[row]


async def drain(config: Config) -> RunSummary:
    store = HistoryStore()
    try:
        summary = None
        async for event in run_export(
            config.exports["customers"], config=config, api_key=DEMO_KEY, store=store
        ):
            if isinstance(event, RunSummary):
                summary = event
        assert summary is not None
        return summary
    finally:
        store.close()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert sum(c.unusable for c in CASES) >= 25


@pytest.mark.parametrize("name", [c.name for c in CASES])
async def test_engine_on_corpus(name: str, tmp_path: Path, sandbox: SandboxServer) -> None:
    case = BY_NAME[name]
    jobs_before = len(import_jobs(sandbox.base_url))
    list_id, _, config = configure(case, tmp_path, sandbox.base_url)
    summary = await drain(config)
    message = summary.error or ""
    assert "Traceback" not in message
    check_outcome(
        case,
        sandbox.base_url,
        list_id,
        jobs_before,
        summary.exit_code,
        message,
        summary.rejects_path,
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY)
    return subprocess.run(
        [sys.executable, "-m", "klaviyo_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_on_corpus(name: str, tmp_path: Path, sandbox: SandboxServer) -> None:
    import json

    case = BY_NAME[name]
    jobs_before = len(import_jobs(sandbox.base_url))
    list_id, _, _ = configure(case, tmp_path, sandbox.base_url)
    done = cli("run", "customers", "--json")
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    summary = json.loads(done.stdout)
    if case.unusable:
        assert len(errors) == 1, done.stderr  # one clear message
    else:
        assert errors == [], done.stderr
    rejects = Path(summary["rejects_path"]) if summary.get("rejects_path") else None
    check_outcome(
        case,
        sandbox.base_url,
        list_id,
        jobs_before,
        done.returncode,
        "\n".join(errors),
        rejects,
    )


async def test_unreadable_file_is_reported(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod 000 means nothing to root, so the refusal is simulated where the OS would give it."""
    case = BY_NAME["header_only"]
    list_id, source, config = configure(case, tmp_path, sandbox.base_url)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: str(p) != source.path and real_access(p, mode, **kw)
    )
    jobs_before = len(import_jobs(sandbox.base_url))
    summary = await drain(config)
    assert summary.exit_code == ExitCode.INPUT
    assert "permission denied" in (summary.error or "")
    assert list_emails(sandbox.base_url, list_id) == []
    assert len(import_jobs(sandbox.base_url)) == jobs_before


def test_a_huge_field_late_in_the_file_is_read_once(tmp_path: Path) -> None:
    """The reader starts over with bigger blocks on a huge row: rows already read are skipped."""
    from klaviyo_tui.input.sources import read_chunks
    from klaviyo_tui.store.config import Segment

    lines = ["email,note"] + [f"u{i}@example.com,n{i}" for i in range(3_000)]
    lines[2_500] = "u2499@example.com," + "x" * 1_000_000
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    chunks = list(read_chunks(Segment("s", str(tmp_path / "c.csv")), chunk_rows=1_000))
    rows = [row for df in chunks for row in df.index]
    assert rows == list(range(1, 3_001))
    emails = [e for df in chunks for e in df["email"]]
    assert emails == [f"u{i}@example.com" for i in range(3_000)]
    assert len(chunks[2].loc[2_500, "note"]) == 1_000_000


TUI_CASES = ["empty_file", "binary_garbage", "truncated_parquet", "directory", "sql_missing_table"]


@pytest.mark.parametrize("name", TUI_CASES)
async def test_tui_run_on_corpus_shows_an_error(
    name: str, tmp_path: Path, sandbox: SandboxServer
) -> None:
    """The TUI ends such a run on its failed-run panel with the reason, not a crash."""
    from textual.widgets import Static

    from klaviyo_tui.store.config import Export, Mapping, Segment
    from klaviyo_tui.store.config_store import ConfigStore
    from klaviyo_tui.tui.app import make_app
    from klaviyo_tui.tui.screens.dialogs import ErrorModal
    from klaviyo_tui.tui.screens.home import HomeScreen
    from klaviyo_tui.tui.screens.run import RunScreen
    from tests.support.tui import SIZE, add_sandbox_connection, wait_screen, wait_until

    case = BY_NAME[name]
    source = case.build(tmp_path)
    add_sandbox_connection(sandbox.base_url)
    list_id = create_list(sandbox.base_url, name=f"tui {name}")
    store = ConfigStore()
    store.put_segment(Segment("vip", source.path, query=source.query))
    store.put_export(Export("vip", "sandbox", list_id, ("vip",), Mapping(email="email")))
    store.save()
    jobs_before = len(import_jobs(sandbox.base_url))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: "vip" in app.config.exports)
        handle = app.start_run("vip")
        assert handle is not None
        await wait_screen(pilot, RunScreen)
        await wait_until(pilot, lambda: not handle.active, tries=3000)
        await pilot.pause()
        run = app.screen
        assert isinstance(run, RunScreen) and not isinstance(run, ErrorModal)
        assert run.has_class("-failed")
        summary = str(run.query_one("#summary", Static).render())
        assert "Traceback" not in summary
        assert case.message in " ".join(summary.lower().split()), summary
    assert list_emails(sandbox.base_url, list_id) == []
    assert len(import_jobs(sandbox.base_url)) == jobs_before
