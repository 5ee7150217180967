"""`run --retry-failed RUN` end to end against the sandbox: exactly the rows Klaviyo rejected are
sent again, a row whose email changed since is never sent in their place, and a run that cannot
be retried by this export is refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import Notice, RowsRead, RowState
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_engine import customers, drain, one_csv_export
from tests.support.engine import CorruptingTransport, list_emails, run_id_of, write_customers

BROKEN = ["customer3@example.com", "customer17@example.com"]  # source rows 4 and 18


async def run_with_two_rejected(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> tuple[Config, str, int]:
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, customers(30))
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
    assert (gone.row, gone.email) == (4, BROKEN[0]) and "source has changed" in gone.reason
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


async def test_resume_and_retry_together_are_refused(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, _ = one_csv_export(tmp_path, sandbox.base_url, customers(5))
    with pytest.raises(RunError, match="do not go together"):
        await drain("customers", config, store, retry_failed_of=1, resume=True)
