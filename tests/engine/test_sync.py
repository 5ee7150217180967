"""Sync modes end to end against the sandbox over loopback: incremental runs, mirror removals
and their limits, subscribe with historical consent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import JobConfirmed, Notice, RowState, RunSummary
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.run.engine import run_export
from klaviyo_tui.run.sync.options import SyncOptions
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.history import HistoryStore
from tests.support import sandbox as sandbox_helpers
from tests.support.engine import (
    create_list,
    import_jobs,
    interrupt_at,
    list_emails,
    remove_from_list_behind_our_back,
    write_config,
    write_customers,
)

ASSERTED = {"asserted_at": "2026-11-01T10:00:00+00:00", "asserted_by": "tester"}


def rows_of(n: int, start: int = 0, **extra: str) -> list[dict[str, str]]:
    return [
        {"email": f"c{i}@example.com", "first_name": f"First{i}", **extra}
        for i in range(start, start + n)
    ]


def export_config(
    tmp_path: Path,
    base_url: str,
    rows: list[dict[str, str]],
    list_id: str,
    mapping: dict[str, Any] | None = None,
    filters: dict[str, str] | None = None,
    **extra: Any,
) -> Config:
    source = write_customers(tmp_path / "c.csv", rows)
    return write_config(
        tmp_path / "config.toml",
        base_url=base_url,
        list_id=list_id,
        sources={"main": source},
        mapping=mapping or {"email": "email", "first_name": "first_name"},
        filters=filters,
        export_extra=extra,
    )


async def run(
    config: Config, store: HistoryStore, **kwargs: Any
) -> tuple[RunSummary, list[object]]:
    events: list[object] = []
    summary = None
    async for event in run_export(
        config.exports["customers"], config=config, api_key=DEMO_KEY, store=store, **kwargs
    ):
        events.append(event)
        if isinstance(event, RunSummary):
            summary = event
    assert summary is not None
    return summary, events


def job_sizes(base_url: str) -> list[int]:
    """Profiles per import job, oldest first."""
    jobs = sorted(import_jobs(base_url), key=lambda j: j["attributes"]["created_at"])
    return [j["attributes"]["total_count"] for j in jobs]


def add_others(base_url: str, list_id: str, emails: list[str]) -> None:
    """Members that someone else put in the list (not this tool)."""
    with sandbox_helpers.client(base_url) as c:
        sandbox_helpers.run_import(c, [{"email": e} for e in emails], list_id)


# ---- incremental -------------------------------------------------------------------------------


async def test_incremental_sends_only_the_changed_and_new_rows(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(1000)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
    first, _ = await run(config, store)
    assert first.counts[RowState.IMPORTED.value] == 1000
    assert first.sync["added"] == 1000 and first.sync["updated"] == 0
    for i in range(0, 1000, 100):  # 1% changed
        rows[i]["first_name"] = f"Changed{i}"
    rows += rows_of(5, start=1000)  # and 5 new customers
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
    second, _ = await run(config, store)
    assert second.exit_code == ExitCode.OK, second.error
    assert second.counts[RowState.IMPORTED.value] == 15
    assert second.counts[RowState.UNCHANGED.value] == 990
    assert second.total_rows == 1005
    assert second.sync["added"] == 5 and second.sync["updated"] == 10
    assert job_sizes(sandbox.base_url)[-1] == 15  # only those were sent
    with sandbox_helpers.client(sandbox.base_url) as c:
        profile = sandbox_helpers.profile_by_email(c, "c100@example.com")
    assert profile is not None and profile["attributes"]["first_name"] == "Changed100"
    third, _ = await run(config, store)  # nothing changed: nothing sent
    assert third.counts[RowState.UNCHANGED.value] == 1005 and third.jobs == 0
    assert third.exit_code == ExitCode.OK
    record = store.run_sync(third.run_id or 0)
    assert record["unchanged"] == 1005 and record["added"] == 0


async def test_verify_on_an_incremental_export_checks_and_puts_back_every_row(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """Someone takes c5 off the list. An incremental run skips it as unchanged; with --verify
    the run sends every row, so c5 is back, and every row is checked against the list."""
    list_id = create_list(sandbox.base_url)
    rows = rows_of(20)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
    await run(config, store)
    remove_from_list_behind_our_back(sandbox.base_url, list_id, "c5@example.com")
    quiet, _ = await run(config, store)
    assert quiet.sync["unchanged"] == 20 and len(list_emails(sandbox.base_url, list_id)) == 19

    checked, _ = await run(config, store, verify="full")

    assert checked.exit_code == ExitCode.OK
    assert checked.sync["full_reason"] and "--verify" in str(checked.sync["full_reason"])
    assert checked.verification is not None and checked.verification["in_list"] == 20
    assert len(list_emails(sandbox.base_url, list_id)) == 20


async def test_a_resumed_full_run_stays_full_without_the_flag(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """`run --full` interrupted after its first confirmed batch, then `run --resume` (no
    --full): the resume packs the batches its first start packed, so it sends every row too."""
    list_id = create_list(sandbox.base_url)
    config = export_config(tmp_path, sandbox.base_url, rows_of(25_000), list_id, incremental=True)
    await run(config, store)
    await interrupt_at(config, store, JobConfirmed, sync=SyncOptions(full=True))

    resumed, _ = await run(config, store, resume=True)

    assert resumed.sync["full_reason"] == "resuming a run that sent every row (--full was given)"
    assert resumed.sync["unchanged"] == 0
    assert resumed.counts[RowState.IMPORTED.value] == 25_000


async def test_a_mapping_change_makes_the_next_run_full_and_says_why(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(50, last="Doe")
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
    await run(config, store)
    mapping = {"email": "email", "first_name": "first_name", "last_name": "last"}
    config = export_config(
        tmp_path, sandbox.base_url, rows, list_id, mapping=mapping, incremental=True
    )
    summary, events = await run(config, store)
    assert summary.counts[RowState.IMPORTED.value] == 50
    assert summary.counts[RowState.UNCHANGED.value] == 0
    assert summary.sync["full_reason"] == "the mapping changed since the last confirmed run"
    assert summary.sync["updated"] == 50  # the customers were known: none is new
    said = [e.message for e in events if isinstance(e, Notice)]
    assert any("mapping changed" in m for m in said)
    again, _ = await run(config, store)
    assert again.counts[RowState.UNCHANGED.value] == 50 and not again.sync["full_reason"]
    forced, _ = await run(config, store, sync=SyncOptions(full=True))
    assert forced.counts[RowState.IMPORTED.value] == 50
    assert forced.sync["full_reason"] == "--full was given"


async def test_a_rejected_row_is_sent_again_by_the_next_run(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(30)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)

    class Corrupting(httpx.AsyncBaseTransport):
        """Breaks one email in the first import, so Klaviyo answers 400 naming that row."""

        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()
            self.done = False

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and "bulk-import" in request.url.path and not self.done:
                self.done = True
                body = (await request.aread()).replace(b"c7@example.com", b"c7@@broken", 1)
                headers = {k: v for k, v in request.headers.items() if k != "content-length"}
                request = httpx.Request(request.method, request.url, headers=headers, content=body)
            return await self.inner.handle_async_request(request)

    async with KlaviyoClient(sandbox.base_url, DEMO_KEY, transport=Corrupting()) as client:
        first, _ = await run(config, store, client=client)
    assert first.counts[RowState.REJECTED.value] == 1
    assert first.exit_code == ExitCode.PARTIAL
    second, _ = await run(config, store)
    assert second.counts[RowState.IMPORTED.value] == 1
    assert second.counts[RowState.UNCHANGED.value] == 29
    assert second.sync["added"] == 1
    assert "c7@example.com" in list_emails(sandbox.base_url, list_id)


# ---- mirror ------------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["filter", "no emails", "empty file"])
async def test_mirror_refuses_to_empty_the_list(
    broken: str, tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """A filter that matches nothing, a source whose email column went blank, an empty file:
    the run stops before sending anything and the list keeps every member."""
    list_id = create_list(sandbox.base_url)
    rows = rows_of(50, orders="3")
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, mode="mirror")
    first, _ = await run(config, store)
    assert first.exit_code == ExitCode.OK
    jobs = len(import_jobs(sandbox.base_url))
    if broken == "filter":
        filters = {"main": "orders = '9'"}
        config = export_config(
            tmp_path, sandbox.base_url, rows, list_id, filters=filters, mode="mirror"
        )
    elif broken == "no emails":
        blank = [{**r, "email": ""} for r in rows]
        config = export_config(tmp_path, sandbox.base_url, blank, list_id, mode="mirror")
    else:
        (tmp_path / "c.csv").write_text("email,first_name\n", encoding="utf-8")
    dry, _ = await run(config, store, dry_run=True)
    summary, _ = await run(config, store)
    if broken == "empty file":  # the pipeline itself refuses a source without rows
        assert summary.exit_code == dry.exit_code == ExitCode.INPUT
        assert "no data rows" in str(summary.error)
    else:
        assert dry.exit_code == ExitCode.USAGE, dry.error
        assert "would remove all 50" in str(dry.error)
        assert summary.exit_code == ExitCode.USAGE
        assert "would remove all 50 profiles" in str(summary.error)
        assert "nothing was sent" in str(summary.error)
    assert len(list_emails(sandbox.base_url, list_id)) == 50
    assert len(import_jobs(sandbox.base_url)) == jobs


async def test_mirror_ratio_limit_and_allow_mass_removal(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(40)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, mode="mirror")
    await run(config, store)
    config = export_config(tmp_path, sandbox.base_url, rows[:30], list_id, mode="mirror")
    refused, _ = await run(config, store)
    assert refused.exit_code == ExitCode.USAGE
    assert "remove 10 of the list's 40 members (25.0%)" in str(refused.error)
    assert "max_removal_ratio 0.1 allows (4)" in str(refused.error)
    allowed, _ = await run(config, store, sync=SyncOptions(allow_mass_removal=True))
    assert allowed.exit_code == ExitCode.OK, allowed.error
    assert allowed.sync["removed"] == 10
    assert len(list_emails(sandbox.base_url, list_id)) == 30


async def test_mirror_removes_exactly_the_leavers_it_added(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    others = [f"other{i}@example.com" for i in range(5)]
    add_others(sandbox.base_url, list_id, others)
    rows = rows_of(40)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, mode="mirror")
    await run(config, store)
    stay = [r for i, r in enumerate(rows) if i not in (3, 17)]
    config = export_config(tmp_path, sandbox.base_url, stay, list_id, mode="mirror")
    summary, _ = await run(config, store)
    assert summary.exit_code == ExitCode.OK, summary.error
    assert summary.sync["removed"] == 2
    assert summary.counts[RowState.IMPORTED.value] == 38
    members = set(list_emails(sandbox.base_url, list_id))
    assert members == {r["email"] for r in stay} | set(others)
    removals = store.removals(summary.run_id or 0)
    assert [r.state for r in removals] == ["done"] and len(removals[0].profile_ids) == 2
    with sandbox_helpers.client(sandbox.base_url) as c:  # the profile stays, only off the list
        assert sandbox_helpers.profile_by_email(c, "c3@example.com") is not None
    again, _ = await run(config, store)
    assert again.sync["removed"] == 0  # removed once; never again
    # an upsert run of the same export never removes anyone
    config = export_config(tmp_path, sandbox.base_url, stay[:30], list_id, mode="mirror")
    upsert, _ = await run(config, store, sync=SyncOptions(mode="upsert"))
    assert upsert.exit_code == ExitCode.OK and "removed" not in upsert.sync
    assert len(list_emails(sandbox.base_url, list_id)) == 43


# ---- subscribe ---------------------------------------------------------------------------------


def subscribe_export(
    tmp_path: Path, base_url: str, list_id: str, rows: list[dict[str, str]]
) -> Config:
    subscribe = {"channel": "email", "consented_at_column": "optin", "historical": True}
    return export_config(
        tmp_path, base_url, rows, list_id, subscribe={**subscribe, **ASSERTED}, incremental=True
    )


async def test_subscribe_with_historical_consent(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(12, optin="2024-03-01T09:30:00Z")
    rows[4]["optin"] = "2023-12-24 18:00"  # no zone: read as UTC
    config = subscribe_export(tmp_path, sandbox.base_url, list_id, rows)
    summary, _ = await run(config, store)
    assert summary.exit_code == ExitCode.OK, summary.error
    assert summary.sync["subscribed"] == 12
    with sandbox_helpers.client(sandbox.base_url) as c:
        for i in (0, 4, 11):
            profile = sandbox_helpers.profile_by_email(c, f"c{i}@example.com")
            assert profile is not None
            marketing = profile["attributes"]["subscriptions"]["email"]["marketing"]
            assert marketing["consent"] == "SUBSCRIBED"
            when = "2023-12-24T18:00:00" if i == 4 else "2024-03-01T09:30:00"
            assert marketing["consent_timestamp"].startswith(when)
    assert len(list_emails(sandbox.base_url, list_id)) == 12


async def test_a_row_without_consent_time_is_refused(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(6, optin="2024-03-01T09:30:00+01:00")
    rows[2]["optin"] = ""
    rows[5]["optin"] = "last summer"
    config = subscribe_export(tmp_path, sandbox.base_url, list_id, rows)
    summary, _ = await run(config, store)
    assert summary.counts[RowState.INVALID.value] == 2
    assert summary.counts[RowState.IMPORTED.value] == 4
    assert summary.sync["subscribed"] == 4
    failures = {f.row: f for f in store.failures(summary.run_id or 0)}
    assert set(failures) == {3, 6}
    assert "no consent time in column 'optin' (it is empty)" in failures[3].reason
    assert "'last summer' is not an ISO 8601 time" in failures[6].reason
    assert set(list_emails(sandbox.base_url, list_id)) == {
        r["email"] for i, r in enumerate(rows) if i not in (2, 5)
    }


async def test_unconfirmed_subscriptions_end_partial_and_are_retried(
    tmp_path: Path, store: HistoryStore
) -> None:
    """A double opt-in list without a historical import: Klaviyo never shows SUBSCRIBED."""
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.0)) as server:
        with sandbox_helpers.client(server.base_url) as c:
            r = c.post(
                "/api/lists",
                json={
                    "data": {
                        "type": "list",
                        "attributes": {"name": "DOI", "opt_in_process": "double_opt_in"},
                    }
                },
            )
            list_id = r.json()["data"]["id"]
        rows = rows_of(3)
        config = export_config(
            tmp_path,
            server.base_url,
            rows,
            list_id,
            incremental=True,
            subscribe={"channel": "email", **ASSERTED},
        )
        options = SyncOptions(subscribe_wait_s=0.5)
        summary, _ = await run(config, store, sync=options)
        assert summary.exit_code == ExitCode.PARTIAL
        assert summary.counts[RowState.SUBSCRIPTION_UNCONFIRMED.value] == 3
        assert summary.counts[RowState.IMPORTED.value] == 0
        assert summary.total_rows == 3
        again, _ = await run(config, store, sync=options)
        assert again.counts[RowState.UNCHANGED.value] == 0  # not recorded as done: sent again


# ---- kill and resume ---------------------------------------------------------------------------

#: The CLI with removal requests of 50 ids (not 1,000), so a few hundred leavers take many
#: requests at Klaviyo's 10 a second, and a kill lands between them.
SMALL_REMOVALS_CLI = (
    "import klaviyo_tui.run.sync.mirror as m; m.PER_REQUEST = 50; "
    "from klaviyo_tui.cli.main import main; main()"
)


@pytest.mark.parametrize(
    ("back_from", "incremental"), [("planned", False), ("done", False), ("done", True)]
)
def test_mirror_killed_mid_removal_and_resumed(
    tmp_path: Path, sandbox: SandboxServer, isolated_dirs: Path, back_from: str, incremental: bool
) -> None:
    """Killed mid-removal, then five leavers come back into the segment before the resume: from
    a request never sent (they are never removed) or from one done (they are added again)."""
    import json
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    list_id = create_list(sandbox.base_url)
    others = ["someone@else.com"]
    add_others(sandbox.base_url, list_id, others)
    rows = rows_of(1500)
    source = write_customers(tmp_path / "c.csv", rows)
    config_path = Path(os.environ["KLAVIYO_TUI_CONFIG"])

    def configure(kept: list[dict[str, str]]) -> None:
        write_customers(source, kept)
        write_config(
            config_path,
            base_url=sandbox.base_url,
            list_id=list_id,
            sources={"main": source},
            mapping={"email": "email", "first_name": "first_name"},
            export_extra={"mode": "mirror", "max_removal_ratio": 1.0, "incremental": incremental},
        )

    env = dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", SMALL_REMOVALS_CLI, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    configure(rows)
    assert cli("run", "customers").returncode == 0
    by_id = {  # every member's email, before any is removed
        m["id"]: m["attributes"]["email"]
        for m in sandbox_helpers.list_members(sandbox.base_url, list_id)
    }
    configure(rows[:300])  # 1,200 left the segment: 24 removal requests
    proc = subprocess.Popen(
        [sys.executable, "-c", SMALL_REMOVALS_CLI, "run", "customers"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "removed 50 profiles" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    history = isolated_dirs / "data" / "history.sqlite3"
    with sqlite3.connect(history) as db:
        journal = db.execute(
            "SELECT batch_no, state, profile_ids FROM sync_removals ORDER BY batch_no"
        ).fetchall()
    done_before = {n: json.loads(ids) for n, state, ids in journal if state == "done"}
    assert len(journal) == 24 and 0 < len(done_before) < 24
    # a request in flight when the kill landed ("sending") may or may not have reached Klaviyo
    in_flight = sum(state == "sending" for _, state, _ in journal)
    assert in_flight <= 1  # one request at a time
    members = set(list_emails(sandbox.base_url, list_id))
    done = len(done_before)
    assert len(members) in {1501 - 50 * (done + k) for k in range(in_flight + 1)}
    # before resuming, five leavers of a request not sent yet (or done) are back in the segment
    pending = next(n for n, state, _ in journal if state == back_from)
    back_ids = json.loads(journal[pending][2])[:5]
    back = {by_id[i] for i in back_ids}
    configure(rows[:300] + [r for r in rows if r["email"] in back])
    resumed = cli("run", "customers", "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["sync"]["removed"] == (1200 - 5 if back_from == "planned" else 1200)
    with sqlite3.connect(history) as db:
        after = db.execute(
            "SELECT batch_no, state, profile_ids FROM sync_removals ORDER BY batch_no"
        ).fetchall()
    assert all(state == "done" for _, state, _ in after)
    for n, ids in done_before.items():  # done before the kill: not planned or sent again
        assert json.loads(after[n][2]) == ids
    expected = {r["email"] for r in rows[:300]} | back | set(others)
    assert set(list_emails(sandbox.base_url, list_id)) == expected
