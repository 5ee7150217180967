"""The run registry's parts: one RunHandle per export, and the coroutine that drives its run.

Runs live on the App (not on the run screen) so a run keeps going while the user looks at other
screens; the run screen and Home only read the handle and listen to `app.run_updated`.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from textual.worker import Worker, WorkerState

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import JobConfirmed
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.run.progress import RunProgress, plural
from klaviyo_tui.tui.errors import describe_error

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import KlaviyoApp

CANCELLED_LINE = "cancelled: the run can be resumed from History"


@dataclass
class RunHandle:
    """One export run owned by the App: its folded progress and the worker driving it."""

    export: str
    progress: RunProgress
    kind: str = "run"  # run | resume | retry | dry (a dry run) | allow (removals allowed)
    worker: Worker[None] | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def active(self) -> bool:
        return self.worker is not None and self.worker.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )


async def drive_run(
    app: KlaviyoApp, handle: RunHandle, resume: bool, retry_failed_of: int | None
) -> None:
    """Run the export through the run service and fold its events into the handle."""
    # The first run imports the engine (pandas, pyarrow, ...): ~0.5 s, off the event loop.
    await asyncio.to_thread(importlib.import_module, "klaviyo_tui.services.runs")
    from klaviyo_tui.run.sync.options import SyncOptions
    from klaviyo_tui.services.runs import run

    progress = handle.progress
    allow = SyncOptions(allow_mass_removal=True) if handle.kind == "allow" else None
    loop = asyncio.get_running_loop()

    def history_busy(message: str) -> None:  # called on the writing thread: never block it
        loop.call_soon_threadsafe(partial(app.notify, message))

    try:
        events = run(
            app.config,
            handle.export,
            resume=resume,
            retry_failed_of=retry_failed_of,
            on_wait=history_busy,
            dry_run=handle.kind == "dry",
            sync=allow,
        )
        async for event in events:
            progress.apply(event)
            if isinstance(event, JobConfirmed):
                progress.sample(time.monotonic())
            app.run_updated.publish(handle)
    except asyncio.CancelledError:
        progress.interrupted = True
        progress.log.append(CANCELLED_LINE)
        app.run_updated.publish(handle)
        raise
    except Exception as exc:  # shown in the run view, with what to do
        info = describe_error(exc)
        progress.error = f"{info.title}: {info.as_text()}"
        progress.log.append(f"error: {info.message}")
        app.run_updated.publish(handle)
        return
    summary = progress.summary
    if summary is not None and summary.dry_run:
        app.notify(
            f"{safe_text(handle.export)}: dry run done, nothing was sent.", title="Dry run finished"
        )
    elif summary is not None:
        app.notify(
            f"{safe_text(handle.export)}: {plural(imported_total(summary.counts), 'profile')} "
            "imported.",
            title="Run finished",
            severity="information" if summary.exit_code == ExitCode.OK else "warning",
        )


def new_run(
    app: KlaviyoApp,
    export: str,
    resume: bool,
    retry_failed_of: int | None,
    dry_run: bool,
    allow_removals: bool,
) -> RunHandle:
    """A new run of `export`, its worker started; the App keeps the handle in `runs`."""
    kind = "resume" if resume else "retry" if retry_failed_of is not None else "run"
    kind = "dry" if dry_run else "allow" if allow_removals else kind
    handle = RunHandle(export, RunProgress(export), kind=kind)
    handle.progress.sample(handle.started)  # the rate's baseline
    work = drive_run(app, handle, resume, retry_failed_of)
    handle.worker = app.run_worker(work, group="runs", exit_on_error=False)
    return handle


def sample_runs(app: KlaviyoApp) -> None:
    """The rate sparkline's clock: sample every active run twice a second."""
    now = time.monotonic()
    for handle in app.runs.values():
        if handle.active:
            handle.progress.sample(now)
            app.run_updated.publish(handle)


def imported_total(counts: dict[str, int]) -> int:
    """Rows Klaviyo confirmed in the list: imported, with or without warnings."""
    return sum(n for state, n in counts.items() if state.startswith("imported"))
