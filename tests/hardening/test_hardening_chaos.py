"""Chaos: every sandbox request fault at once over 200,000 rows, in process and through the CLI
killed with SIGKILL at three seeded random points. Nothing is lost, nothing is sent twice, and
every input row ends in exactly one final state."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RowState
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.faults import FaultInjector
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_engine import create_list_retrying, drain
from tests.support.engine import import_jobs, list_emails, write_config, write_customers

N_ROWS = int(os.environ.get("CHAOS_ROWS", "200000"))
#: Every request fault that changes nothing, at once (they add up to 30 %). The faults whose
#: effect lands anyway (524) or that leave jobs unconfirmed (stuck, badstatus) and the shared
#: quota have their own tests in test_engine_confirm.py, where each outcome can be asserted.
ALL_FAULTS = {
    "429": 0.08,
    "retry0": 0.02,
    "500": 0.05,
    "502": 0.03,
    "503": 0.03,
    "reset": 0.04,
    "hang": 0.02,
    "cf403": 0.03,
    "rowfail": 0.002,
}
#: Run the CLI with short client timeouts, so a hung request costs 2 s instead of 60 s.
SHORT_TIMEOUT_CLI = (
    "import httpx, klaviyo_tui.klaviyo.base as b; "
    "b.DEFAULT_TIMEOUT = httpx.Timeout(2.0); "
    "from klaviyo_tui.cli.main import main; main()"
)


def chaos_rows(n: int = N_ROWS) -> tuple[list[dict[str, str]], set[int], set[int]]:
    """Rows with ~0.1 % invalid emails and ~0.1 % duplicates (of an earlier row)."""
    rows = [{"email": f"chaos{i}@example.com", "name": f"N{i}"} for i in range(n)]
    invalid = set(range(500, n, 997))
    for i in invalid:
        rows[i]["email"] = f"broken{i}@"
    duplicates = {i for i in range(700, n, 1009) if i not in invalid and i - 3 not in invalid}
    for i in duplicates:
        rows[i]["email"] = rows[i - 3]["email"].upper()
    return rows, invalid, duplicates


@pytest.fixture
def chaos_server() -> Iterator[SandboxServer]:
    settings = SandboxSettings(rate_limits=False, job_delay=0.05, faults=ALL_FAULTS, seed=11)
    with SandboxServer(settings) as server:
        yield server


def calm(server: SandboxServer) -> None:
    """End the storm before reading results back, so the check itself is not flaky."""
    server.app.faults = FaultInjector({}, 0)


def check_outcome(
    base_url: str,
    list_id: str,
    rows: list[dict[str, str]],
    invalid: set[int],
    store: HistoryStore,
    run_id: int,
    counts: dict[str, int],
) -> None:
    """List == valid input minus rejected rows; each row in one final state; counts add up."""
    failures = store.failures(run_id)
    by_row: dict[int, RowState] = {}
    for f in failures:
        assert f.row not in by_row, f"row {f.row} has two final states: {by_row[f.row]}, {f.state}"
        by_row[f.row] = f.state
    assert {r - 1 for r, s in by_row.items() if s == RowState.INVALID} == invalid
    rejected = {r for r, s in by_row.items() if s == RowState.REJECTED}
    assert rejected, "rowfail should have rejected some rows"
    assert all(f.reason.startswith("Klaviyo: ") for f in failures if f.state == RowState.REJECTED)
    valid_emails = {r["email"].lower() for i, r in enumerate(rows) if i not in invalid}
    rejected_emails = {rows[r - 1]["email"].lower() for r in rejected}
    assert sorted(list_emails(base_url, list_id)) == sorted(valid_emails - rejected_emails)
    assert sum(counts.values()) == len(rows)
    assert counts[RowState.NOT_SENT.value] == 0
    assert counts[RowState.REJECTED.value] == len(rejected)
    assert counts[RowState.INVALID.value] == len(invalid)
    assert counts[RowState.IMPORTED.value] == len(valid_emails - rejected_emails)


def read_rejects_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
async def test_every_fault_at_once_200k_rows_in_process(
    tmp_path: Path, chaos_server: SandboxServer
) -> None:
    rows, invalid, duplicates = chaos_rows()
    source = write_customers(tmp_path / "c.csv", rows)
    list_id = create_list_retrying(chaos_server.base_url)
    config = write_config(
        tmp_path / "config.toml",
        base_url=chaos_server.base_url,
        list_id=list_id,
        sources={"main": source},
        mapping={"email": "email", "first_name": "name"},
    )
    store = HistoryStore()
    try:
        client = KlaviyoClient(
            chaos_server.base_url,
            DEMO_KEY,
            timeout=httpx.Timeout(2.0),
            max_retries=12,
            backoff_base=0.05,
            backoff_cap=1.0,
        )
        async with client:
            summary, _ = await drain("customers", config, store, client=client)
        assert summary.exit_code == ExitCode.PARTIAL, summary.error  # rowfail rejected some
        assert summary.run_id is not None
        assert summary.counts[RowState.DUPLICATE.value] == len(duplicates)
        calm(chaos_server)
        check_outcome(
            chaos_server.base_url, list_id, rows, invalid, store, summary.run_id, summary.counts
        )
        assert summary.rejects_path is not None
        in_csv = read_rejects_csv(summary.rejects_path)
        assert len(in_csv) == sum(
            summary.counts[s.value]
            for s in (RowState.INVALID, RowState.DUPLICATE, RowState.REJECTED)
        )
        assert any(r["reason"] == "Klaviyo: The profile failed to import." for r in in_csv)
        record = store.run(summary.run_id)
        assert record is not None and record.status == "partial"
    finally:
        store.close()
    # Faults fire before a request takes effect, so each batch became exactly one job.
    assert len(import_jobs(chaos_server.base_url)) == summary.jobs


def accepted_batches(history: Path) -> dict[tuple[int, int], str]:
    """(run, batch) -> job id of every batch the journal records as accepted by Klaviyo."""
    with sqlite3.connect(history) as db:
        rows = db.execute(
            "SELECT run_id, batch_no, job_id FROM batches WHERE state IN ('accepted', 'finished')"
        ).fetchall()
    return {(r, b): j for r, b, j in rows}


@pytest.mark.slow
def test_every_fault_at_once_sigkill_three_times_and_resume(
    tmp_path: Path, chaos_server: SandboxServer, isolated_dirs: Path
) -> None:
    rows, invalid, _ = chaos_rows()
    source = write_customers(tmp_path / "c.csv", rows)
    list_id = create_list_retrying(chaos_server.base_url)
    write_config(
        Path(os.environ["KLAVIYO_TUI_CONFIG"]),
        base_url=chaos_server.base_url,
        list_id=list_id,
        sources={"main": source},
        mapping={"email": "email", "first_name": "name"},
    )
    history = isolated_dirs / "data" / "history.sqlite3"
    env = dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY)
    rng = random.Random(2026)
    unjournaled = 0
    accepted: dict[tuple[int, int], str] = {}
    for attempt in range(3):
        args = ["run", "customers"] + (["--resume"] if attempt else [])
        proc = subprocess.Popen(
            [sys.executable, "-c", SHORT_TIMEOUT_CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        # A seeded random point: after the k-th batch line (sent or confirmed) of this attempt.
        target = rng.randint(1, 6)
        seen = 0
        for line in proc.stderr:
            if "batch" in line and ("sent" in line or "confirmed" in line):
                seen += 1
                if seen >= target:
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        with sqlite3.connect(history) as db:
            unjournaled += db.execute(
                "SELECT count(*) FROM batches WHERE state = 'submitting'"
            ).fetchone()[0]
        now = accepted_batches(history)
        for batch, job in accepted.items():
            assert now.get(batch) == job, f"batch {batch} accepted as {job} was sent again"
        accepted = now
    shown = json.loads(run_cli("history", "--json", env=env).stdout)
    assert shown[0]["status"] == "interrupted"
    final = run_cli("run", "customers", "--resume", "--json", env=env, code=SHORT_TIMEOUT_CLI)
    assert final.returncode == ExitCode.PARTIAL, final.stderr
    summary = json.loads(final.stdout)
    for batch, job in accepted.items():
        assert accepted_batches(history).get(batch) == job, f"batch {batch} was sent again"
    calm(chaos_server)
    store = HistoryStore()
    try:
        check_outcome(
            chaos_server.base_url,
            list_id,
            rows,
            invalid,
            store,
            summary["run_id"],
            summary["counts"],
        )
    finally:
        store.close()
    batches = len(accepted_batches(history))
    assert batches <= len(import_jobs(chaos_server.base_url)) <= batches + unjournaled
    assert json.loads(run_cli("history", "--json", env=env).stdout)[0]["status"] == "partial"


def run_cli(
    *args: str, env: dict[str, str], code: str | None = None
) -> subprocess.CompletedProcess[str]:
    head = ["-c", code] if code else ["-m", "klaviyo_tui"]
    return subprocess.run(
        [sys.executable, *head, *args], capture_output=True, text=True, env=env, timeout=120
    )
