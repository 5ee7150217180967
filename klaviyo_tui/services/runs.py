"""Starting, resuming and retrying runs, and finding the ones a schedule says are due."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from functools import partial

from klaviyo_tui.events import ProgressEvent, RunSummary
from klaviyo_tui.run.engine import check_runnable, run_export
from klaviyo_tui.run.options import RunOptions
from klaviyo_tui.run.schedule import is_due
from klaviyo_tui.run.sync.options import SyncOptions
from klaviyo_tui.services.connections import api_key_for
from klaviyo_tui.services.exports import export_named
from klaviyo_tui.store.config import Config, Export
from klaviyo_tui.store.history import HistoryStore


async def run(
    config: Config,
    export_name: str,
    *,
    resume: bool = False,
    dry_run: bool = False,
    retry_failed_of: int | None = None,
    on_wait: Callable[[str], None] | None = None,
    confirm_timeout_minutes: float | None = None,
    verify: str | None = None,
    sync: SyncOptions | None = None,
    on_interrupted: Callable[[RunSummary], None] | None = None,
) -> AsyncIterator[ProgressEvent]:
    """Run an export: progress events, ending with its RunSummary (a cancelled run's goes to
    `on_interrupted` instead: the events stop at the cancel).

    `confirm_timeout_minutes` and `verify` override the export's settings for this run (see
    `run_export`).

    `on_wait` hears (from a worker thread) when the history database is busy with another
    process's write and this run waits for it. `sync` carries one run's sync overrides (--full,
    --mode, --allow-mass-removal).

    Raises an AppError (with its exit code and hint) before the first event when the run cannot
    start: unknown export, missing connection or consent, no API key, export already running.
    """
    export = export_named(config, export_name)
    check_runnable(export, config)
    RunOptions.of(export, confirm_timeout_minutes, verify)  # a bad option stops it here
    key = await asyncio.to_thread(api_key_for, config.connections[export.connection])
    store = await asyncio.to_thread(partial(HistoryStore, on_wait=on_wait))
    try:
        async for event in run_export(
            export,
            config=config,
            api_key=key,
            store=store,
            resume=resume,
            dry_run=dry_run,
            retry_failed_of=retry_failed_of,
            confirm_timeout_minutes=confirm_timeout_minutes,
            verify=verify,
            sync=sync,
            on_interrupted=on_interrupted,
        ):
            yield event
    finally:
        store.close()


def due_exports(config: Config, now: datetime) -> list[Export]:
    """Exports whose schedule fired since their last real run. Blocks (SQLite): use a thread."""
    scheduled = [e for e in config.exports.values() if e.schedule]
    if not scheduled:
        return []
    due = []
    with HistoryStore.open_for_reading() as store:
        for export in scheduled:
            assert export.schedule is not None
            runs = [r for r in store.runs(export.name, limit=20) if not r.dry_run]
            if is_due(export.schedule, runs[0].started if runs else None, now):
                due.append(export)
    return due
