"""A run journaled by a version that fingerprinted batches with blake2b resumes without resending
the batch Klaviyo accepted (input/batching.py `Batch.matches`)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import httpx

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RowState
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_engine import customers, drain, one_csv_export
from tests.engine.test_engine_confirm import Proxy, client_for, report_failed
from tests.support.engine import import_jobs, list_emails, run_id_of


async def test_a_blake2b_journal_resumes_without_resending(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    sent: list[bytes] = []

    async def capture(request: httpx.Request) -> httpx.Request:
        if request.method == "POST" and "bulk-import" in request.url.path:
            sent.append(await request.aread())
        return request

    config, list_id = one_csv_export(tmp_path, sandbox.base_url, customers(20))
    path = tmp_path / "history.db"
    with HistoryStore(path) as store:
        async with client_for(sandbox, Proxy(before=capture, after=report_failed)) as client:
            first, _ = await drain("customers", config, store, client=client)
    assert first.counts[RowState.UNCONFIRMED.value] == 20
    (body,) = sent
    legacy = hashlib.blake2b(body, digest_size=16).hexdigest()
    with sqlite3.connect(path) as db:  # as the older version journaled it
        changed = db.execute("UPDATE batches SET fingerprint = ? WHERE batch_no = 0", (legacy,))
        assert changed.rowcount == 1
    with HistoryStore(path) as store:
        second, _ = await drain("customers", config, store, resume=True)
        assert store.journal(run_id_of(second))[0].state == "finished"
    assert second.exit_code == ExitCode.OK, second.error
    assert second.counts[RowState.IMPORTED.value] == 20
    assert len(import_jobs(sandbox.base_url)) == 1  # asked about again, not resent
    assert len(list_emails(sandbox.base_url, list_id)) == 20
