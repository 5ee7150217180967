"""`run --retry-failed RUN` end to end against the sandbox: exactly the rows Klaviyo rejected are
sent again, found by their emails wherever they moved, a row whose email changed since is never
sent in their place, a retry removes no one (even for a mirror export) and a resumed retry goes
on retrying, and a run that cannot be retried by this export is refused before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from klaviyo_tui.cli.output import format_summary
from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import JobSubmitted, Notice, RetryOf, RowsRead, RowState, RunSummary
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.run.retry import RetryRows
from klaviyo_tui.run.sync.options import SyncOptions
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.history_records import RunRecord
from klaviyo_tui.tui.sync_text import sync_line
from tests.engine.test_engine import customers, drain, one_csv_export
from tests.support.engine import (
    CorruptingTransport,
    interrupt_at,
    list_emails,
    run_id_of,
    write_customers,
)

BROKEN = ["customer3@example.com", "customer17@example.com"]  # source rows 4 and 18


async def run_with_two_rejected(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore, **kw: Any
) -> tuple[Config, str, int]:
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, customers(30), **kw)
    corrupting = CorruptingTransport(BROKEN)
    async with KlaviyoClient(sandbox.base_url, DEMO_KEY, transport=corrupting) as client:
        summary, _ = await drain("customers", config, store, client=client)
    assert summary.counts[RowState.REJECTED.value] == 2
    return config, list_id, run_id_of(summary)


async def test_retry_sends_exactly_the_rows_klaviyo_rejected(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, list_id, first = await run_with_two_rejected(tmp_path, sandbox, store)
    failures = store.failures(first)
    assert sorted((f.row, f.email) for f in failures) == [(4, BROKEN[0]), (18, BROKEN[1])]
    assert len(list_emails(sandbox.base_url, list_id)) == 28

    summary, events = await drain("customers", config, store, retry_failed_of=first)

    assert summary.exit_code == ExitCode.OK
    assert summary.total_rows == 2
    assert summary.counts[RowState.IMPORTED.value] == 2
    assert sum(summary.counts.values()) == 2
    assert len(list_emails(sandbox.base_url, list_id)) == 30
    reads = [e for e in events if isinstance(e, RowsRead)]
    assert reads and {e.total for e in reads} == {2}  # the bar counts the retried rows only
    assert [e for e in events if isinstance(e, RetryOf)] == [RetryOf(first)]  # said up front
    assert not [e for e in events if isinstance(e, Notice) and e.level == "warning"]


async def test_retry_never_sends_a_row_whose_email_changed_since(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, list_id, first = await run_with_two_rejected(tmp_path, sandbox, store)
    rows = customers(30)
    rows[3]["email"] = "someone.else@example.com"  # source row 4 now holds another customer
    write_customers(tmp_path / "c.csv", rows)

    summary, events = await drain("customers", config, store, retry_failed_of=first)

    assert summary.counts[RowState.IMPORTED.value] == 1
    assert summary.counts[RowState.NOT_SENT.value] == 1  # row 4: it holds someone else now
    assert summary.exit_code == ExitCode.PARTIAL and summary.total_rows == 2
    [gone] = [f for f in store.failures(run_id_of(summary)) if f.state == RowState.NOT_SENT]
    assert (gone.row, gone.email) == (4, BROKEN[0]) and "source or filter changed" in gone.reason
    emails = set(list_emails(sandbox.base_url, list_id))
    assert BROKEN[1] in emails and "someone.else@example.com" not in emails
    notes = [e.message for e in events if isinstance(e, Notice) and e.level == "warning"]
    assert any(
        m.startswith(f"1 of the 2 rows Klaviyo rejected in run {first} is no") for m in notes
    )


@pytest.mark.parametrize("case", ["missing", "other export", "dry run", "nothing rejected"])
async def test_a_run_this_export_cannot_retry_is_refused_before_it_starts(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore, case: str
) -> None:
    config, _ = one_csv_export(tmp_path, sandbox.base_url, customers(5))
    if case == "nothing rejected":
        summary, _ = await drain("customers", config, store)
        target, expected = run_id_of(summary), "Klaviyo rejected no row of run"
    elif case == "missing":
        target, expected = 999, "there is no run 999"
    else:
        export = "other" if case == "other export" else "customers"
        target = store.start_run(export=export, connection="sandbox", list_id="L", dry_run=True)
        expected = "is a run of export 'other'" if export == "other" else "was a dry run"
    before = len(store.runs())

    with pytest.raises(RunError, match=expected) as raised:
        await drain("customers", config, store, retry_failed_of=target)

    assert raised.value.exit_code == ExitCode.USAGE and raised.value.hint
    assert len(store.runs()) == before  # no run record, nothing sent


def test_a_run_with_only_unconfirmed_rows_points_to_resume(store: HistoryStore) -> None:
    run = store.start_run(export="customers", connection="sandbox", list_id="L")
    counts = {s.value: 0 for s in RowState} | {"imported": 5, "unconfirmed": 3}
    store.finish_run(run, RunSummary(run, "customers", counts, 1.0, ExitCode.PARTIAL))
    with pytest.raises(RunError, match="nothing to retry") as raised:
        RetryRows.of(store, run, "customers")
    assert raised.value.hint.startswith("Its 3 unconfirmed row(s) were accepted, not rejected")
    assert "klaviyo-tui run customers --resume" in raised.value.hint


async def test_resume_and_retry_together_are_refused(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, _ = one_csv_export(tmp_path, sandbox.base_url, customers(5))
    with pytest.raises(RunError, match="do not go together"):
        await drain("customers", config, store, retry_failed_of=1, resume=True)


async def test_retry_finds_the_rejected_rows_by_email_after_rows_above_them_left(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, list_id, first = await run_with_two_rejected(tmp_path, sandbox, store)
    write_customers(tmp_path / "c.csv", customers(30)[3:])  # rows 4 and 18 are now 1 and 15

    summary, events = await drain("customers", config, store, retry_failed_of=first)

    assert summary.counts[RowState.IMPORTED.value] == 2
    assert summary.counts[RowState.NOT_SENT.value] == 0
    assert summary.exit_code == ExitCode.OK and summary.total_rows == 2
    assert set(BROKEN) <= set(list_emails(sandbox.base_url, list_id))
    assert not [e for e in events if isinstance(e, Notice) and e.level == "warning"]


async def test_a_retry_whose_rows_all_left_the_source_says_so(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, _, first = await run_with_two_rejected(tmp_path, sandbox, store)
    rows = [r for r in customers(30) if r["email"].strip().lower() not in BROKEN]
    write_customers(tmp_path / "c.csv", rows)

    summary, _ = await drain("customers", config, store, retry_failed_of=first)

    assert summary.counts[RowState.NOT_SENT.value] == 2
    assert summary.exit_code == ExitCode.INPUT
    assert summary.error is not None and summary.error.startswith("nothing to retry: none of")
    assert "invalid" not in summary.error


async def test_a_retry_of_a_mirror_export_removes_no_one(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, list_id, first = await run_with_two_rejected(
        tmp_path, sandbox, store, export_extra={"mode": "mirror", "incremental": True}
    )
    write_customers(tmp_path / "c.csv", customers(30)[:20])  # ten customers left the segment

    full = SyncOptions(full=True)  # a retry sends its rows, not "every row once"
    summary, events = await drain("customers", config, store, retry_failed_of=first, sync=full)

    notes = [e.message for e in events if isinstance(e, Notice)]
    assert not [m for m in notes if "every row" in m], notes

    assert summary.counts[RowState.IMPORTED.value] == 2
    assert summary.sync["mode"] == "upsert" and "removed" not in summary.sync
    assert summary.sync["retry_of"] == first and summary.sync["full_reason"] is None
    assert f"upsert (a retry of run {first}): 2 added, 0 updated" in format_summary(summary)
    assert sync_line(summary.sync).startswith(f"upsert (a retry of run {first}) · added 2")
    assert len(list_emails(sandbox.base_url, list_id)) == 30  # the ten are still members
    with pytest.raises(RunError, match="--mode mirror does not go with it"):
        await drain(
            "customers", config, store, retry_failed_of=first, sync=SyncOptions(mode="mirror")
        )


async def test_a_resumed_retry_goes_on_sending_only_the_rejected_rows(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, list_id, first = await run_with_two_rejected(tmp_path, sandbox, store)
    rows = [r for r in customers(30) if r["email"].strip().lower() != BROKEN[0]]
    write_customers(tmp_path / "c.csv", rows)  # one of the two left the source
    retry = await interrupted_retry(config, store, first)

    summary, events = await drain("customers", config, store, resume=True)

    assert summary.run_id == retry.id
    notes = [e.message for e in events if isinstance(e, Notice)]
    assert f"resuming a retry of run {first}: only the rows Klaviyo rejected" in notes[0]
    assert isinstance(events[0], RetryOf) and events[0].run_id == first  # the TUI's title
    assert summary.total_rows == 2  # the retried rows, not the export's 29
    assert summary.counts[RowState.IMPORTED.value] == 1
    assert summary.counts[RowState.NOT_SENT.value] == 1
    assert summary.sync["retry_of"] == first
    assert len(list_emails(sandbox.base_url, list_id)) == 29
    gone = [f for f in store.failures(retry.id) if f.state == RowState.NOT_SENT]
    assert [f.email for f in gone] == [BROKEN[0]]  # once, though both starts found it gone


async def interrupted_retry(config: Config, store: HistoryStore, first: int) -> RunRecord:
    """A retry of run `first` cancelled once its job is submitted: recorded interrupted."""
    await interrupt_at(config, store, JobSubmitted, retry_failed_of=first)
    record = store.runs()[0]
    assert record.status == "interrupted" and record.id != first
    return record


async def test_a_new_run_says_it_leaves_an_interrupted_one_behind(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, _, first = await run_with_two_rejected(tmp_path, sandbox, store)
    retry = await interrupted_retry(config, store, first)

    summary, events = await drain("customers", config, store, retry_failed_of=first)

    warnings = [e.message for e in events if isinstance(e, Notice) and e.level == "warning"]
    assert warnings == [
        f"run {retry.id} (interrupted) could still be resumed; this run starts afresh instead, "
        f"and after it `klaviyo-tui run customers --resume` no longer reaches run {retry.id}"
    ]
    assert summary.run_id != retry.id


class RefusedThenDown(CorruptingTransport):
    """Klaviyo refuses the BROKEN rows of the first import POST; then it is unreachable, so the
    batch without them is never accepted and the run ends resumable."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and self.corrupted:
            raise httpx.ConnectError("down", request=request)
        return await super().handle_async_request(request)


async def test_rows_refused_before_an_interrupted_submission_are_recorded_once(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, _ = one_csv_export(tmp_path, sandbox.base_url, customers(30))
    down = KlaviyoClient(
        sandbox.base_url,
        DEMO_KEY,
        transport=RefusedThenDown(BROKEN),
        max_retries=1,
        backoff_base=0.01,
        backoff_cap=0.02,
    )
    async with down:
        first, _ = await drain("customers", config, store, client=down)
    assert first.exit_code == ExitCode.UNAVAILABLE

    again = KlaviyoClient(sandbox.base_url, DEMO_KEY, transport=CorruptingTransport(BROKEN))
    async with again:
        summary, _ = await drain("customers", config, store, client=again, resume=True)

    assert summary.run_id == first.run_id
    assert summary.counts[RowState.REJECTED.value] == 2
    assert summary.counts[RowState.IMPORTED.value] == 28
    refused = [f for f in store.failures(run_id_of(summary)) if f.state == RowState.REJECTED]
    assert sorted(f.email for f in refused) == sorted(BROKEN)  # once each, not once a start
