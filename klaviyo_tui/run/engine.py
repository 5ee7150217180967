"""The export engine: source rows in, a confirmed final state for every row out.

`run_export` is the one entry point both front ends use. It is an async generator of progress events
that ends with a `RunSummary`. Work is split so the event loop never stalls:

- a thread reads, validates and packs rows into bulk-import batches (pandas, pyarrow, orjson);
- async tasks submit batches (the client paces them to Klaviyo's rate tier) and poll the jobs;
- history writes (SQLite) go through `asyncio.to_thread`.

Resume: batches are deterministic for the same input, so each one has a fingerprint. The journal
records every batch Klaviyo accepted (with its job id); a resumed run re-reads the input, skips the
batches already accepted (polling their jobs instead) and sends only the rest.

`RunError` (defined with the other shared types in `model`) is re-exported here: the front ends
catch it from the engine they call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import JobsPlanned, Phase, ProgressEvent, RowsRead, RowState, RunSummary
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.input.filters import FilterError
from klaviyo_tui.input.sources import SourceError
from klaviyo_tui.klaviyo import (
    KlaviyoClient,
    KlaviyoError,
    NotFoundError,
)
from klaviyo_tui.klaviyo.pacing import OPERATIONS, least_seconds_for
from klaviyo_tui.run import rejects as rejects_file
from klaviyo_tui.run.jobs import JobTracker, Tally
from klaviyo_tui.run.locking import export_lock
from klaviyo_tui.run.outcomes import first_profile, masked
from klaviyo_tui.run.reading import Step, produce
from klaviyo_tui.run.sync.options import SyncOptions
from klaviyo_tui.run.sync.runner import SyncRun
from klaviyo_tui.store.config import Config, ConfigError, Export
from klaviyo_tui.store.history import BatchRecord, HistoryStore

#: Packed batches waiting for upload: bounds memory whatever the input size.
READ_AHEAD_BATCHES = 4
#: A rough allowance for the last jobs to finish inside Klaviyo, for dry-run estimates.
JOB_FINISH_S = 5.0


def check_runnable(export: Export, config: Config) -> None:
    """Refuse early, with what to do, when the config cannot run this export."""
    connection = config.connections.get(export.connection)
    if connection is None:
        raise RunError(
            f"export {export.name!r} uses connection {export.connection!r}, which does not exist "
            "(it was removed, or never added)",
            hint=(
                f"Edit the export (e on Home, or `klaviyo-tui exports edit {export.name} "
                "--set connection=NAME`) and pick a connection, or add one named "
                f"{export.connection!r} with `klaviyo-tui connections add {export.connection}`."
            ),
        )
    if not connection.has_consent:
        raise RunError(
            f"connection {connection.name!r} has no recorded data-privacy consent",
            hint=(
                "Accept it by editing the connection in the app, or with "
                f"`klaviyo-tui connections add {connection.name}`, before exporting."
            ),
        )
    missing = [name for name in export.segments if name not in config.segments]
    if missing:
        raise RunError(
            f"export {export.name!r} names segment(s) {', '.join(map(repr, missing))} that do not "
            "exist in the config",
            hint="Add the [segments.NAME] tables, or edit the export's segments list.",
        )
    if not export.segments:
        raise RunError(
            f"export {export.name!r} has no segments",
            hint='Add segments = ["NAME"] to the export, or rebuild it in the app.',
        )


async def run_export(
    export: Export,
    *,
    config: Config,
    api_key: str,
    store: HistoryStore,
    resume: bool = False,
    dry_run: bool = False,
    retry_failed_of: int | None = None,
    client: KlaviyoClient | None = None,
    sync: SyncOptions | None = None,
) -> AsyncIterator[ProgressEvent]:
    """Run one export, yielding progress; the last item is always a RunSummary.

    Raises RunError or RunInProgress before the first event when the run cannot start.
    """
    check_runnable(export, config)
    with export_lock(export.name):
        run = _ExportRun(export, config, api_key, store, dry_run=dry_run)
        run.sync_options = sync or SyncOptions()  # sync hook: --full, --mode, mass removal
        async for event in run.execute(
            resume=resume, retry_failed_of=retry_failed_of, client=client
        ):
            yield event


__all__ = ["RunError", "check_runnable", "run_export"]


class _ExportRun:
    def __init__(
        self, export: Export, config: Config, api_key: str, store: HistoryStore, *, dry_run: bool
    ) -> None:
        self.export = export
        self.config = config
        self.connection = config.connections[export.connection]
        self.api_key = api_key
        self.store = store
        self.dry_run = dry_run
        self.tally = Tally()
        self.events: asyncio.Queue[ProgressEvent] = asyncio.Queue()
        self.run_id: int | None = None  # set before any work starts
        self.started = time.monotonic()
        self.sample_payload: bytes | None = None
        self.planned_jobs = 0
        self.retry_rows: set[tuple[str, int]] | None = None
        self.sync_options = SyncOptions()
        self.sync: SyncRun | None = None  # sync hook (run/sync), set once the run record exists

    @property
    def _run(self) -> int:
        assert self.run_id is not None, "the run record is created before any work"
        return self.run_id

    # ---- orchestration ----------------------------------------------------------------------

    async def execute(
        self, *, resume: bool, retry_failed_of: int | None, client: KlaviyoClient | None
    ) -> AsyncIterator[ProgressEvent]:
        journal: dict[int, BatchRecord] = {}
        if resume:
            previous = await asyncio.to_thread(self.store.resumable_run, self.export.name)
            if previous is None:
                raise RunError(
                    f"export {self.export.name!r} has no interrupted run to resume; run it without "
                    "--resume",
                    exit_code=ExitCode.USAGE,
                )
            self.run_id = previous.id
            await asyncio.to_thread(self.store.reopen_run, previous.id)
            await asyncio.to_thread(
                self.store.clear_failures, previous.id, [RowState.INVALID, RowState.DUPLICATE]
            )
            journal = dict(await asyncio.to_thread(self.store.journal, previous.id))
        else:
            self.run_id = await asyncio.to_thread(
                self.store.start_run,
                export=self.export.name,
                connection=self.export.connection,
                list_id=self.export.list_id,
                dry_run=self.dry_run,
            )
        self.sync = await SyncRun(  # sync hook: settle earlier runs, load the state
            self.export,
            self.connection,
            self.store,
            self._run,
            self.sync_options,
            dry_run=self.dry_run,
            resumed=resume,
            counts=self.tally.counts,
            emit=self.events.put_nowait,
        ).start()
        if retry_failed_of is not None:
            failures = await asyncio.to_thread(self.store.failures, retry_failed_of)
            self.retry_rows = {(f.segment, f.row) for f in failures if f.state == RowState.REJECTED}

        worker = asyncio.create_task(self._work(journal, client))
        try:
            while True:
                getter = asyncio.ensure_future(self.events.get())
                done, _ = await asyncio.wait({getter, worker}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                while not self.events.empty():
                    yield self.events.get_nowait()
                break
            try:
                summary = self._summary(worker)
            except Exception as error:  # a bug, not the user's doing: still close the record
                failed = self._make_summary(ExitCode.PARTIAL, f"internal error: {error!r}")
                self._finish_sync(failed)
                raise
        except (asyncio.CancelledError, GeneratorExit):
            worker.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({worker}, timeout=10)  # its cleanup writes the rejects file
            self._finish_sync(
                self._make_summary(ExitCode.INTERRUPTED, "interrupted; resume with --resume")
            )
            raise
        self._finish_sync(summary)
        yield summary

    def _summary(self, worker: asyncio.Task[None]) -> RunSummary:
        error = worker.exception()
        if error is None:
            if self.sync is not None and self.sync.refused:  # sync hook: a dry run's refusal
                return self._make_summary(ExitCode.USAGE, self.sync.refused)
            code = self._exit_code()
            if code != ExitCode.INPUT:
                return self._make_summary(code, None)
            return self._make_summary(
                code,
                f"no valid rows: all {self.tally.read} rows read are invalid or duplicates, so "
                "nothing was sent; the rejects file gives each row's reason",
            )
        if isinstance(error, RunError):
            return self._make_summary(error.exit_code, str(error))
        if isinstance(error, KlaviyoError):
            return self._make_summary(ExitCode(error.exit_code), str(error))
        if isinstance(error, SourceError | FilterError | ConfigError):
            return self._make_summary(ExitCode.INPUT, str(error))
        if isinstance(error, OSError):
            return self._make_summary(
                ExitCode.INPUT, f"could not write run files: {error.strerror or error}"
            )
        raise error

    def _exit_code(self) -> ExitCode:
        counts = self.tally.counts
        if self.tally.read and not self.tally.valid and not self.dry_run:
            return ExitCode.INPUT
        if counts[RowState.REJECTED] or counts[RowState.NOT_SENT]:
            return ExitCode.PARTIAL
        if counts[RowState.SUBSCRIPTION_UNCONFIRMED]:  # sync hook
            return ExitCode.PARTIAL
        return ExitCode.OK

    def _make_summary(self, exit_code: ExitCode, error: str | None) -> RunSummary:
        counts = dict(self.tally.counts)
        confirmed = sum(counts[s] for s in RowState if s != RowState.NOT_SENT)
        # Every valid row that Klaviyo did not confirm (or reject) is not sent.
        counts[RowState.NOT_SENT] = max(0, self.tally.read - confirmed)
        plan: dict[str, object] = {}
        if self.dry_run:
            counts[RowState.NOT_SENT] = 0
            plan = self._plan()
        rejects_path = None
        if self.run_id is not None:
            rejects_path = rejects_file.path_for(self.run_id)
        return RunSummary(
            run_id=self.run_id,
            export=self.export.name,
            counts={state.value: n for state, n in counts.items()},
            duration_s=time.monotonic() - self.started,
            exit_code=exit_code,
            rejects_path=rejects_path if rejects_path and rejects_path.exists() else None,
            error=error,
            jobs=self.tally.jobs if not self.dry_run else self.planned_jobs,
            dry_run=self.dry_run,
            plan=plan,
            sync=self.sync.figures() if self.sync is not None else {},  # sync hook
        )

    def _plan(self) -> dict[str, object]:
        jobs = self.planned_jobs
        op = OPERATIONS["bulk_import_profiles"]
        return {
            "jobs": jobs,
            "profiles": self.tally.valid - self.tally.counts[RowState.UNCHANGED],  # sync hook
            # Klaviyo's rate limit bounds the upload; jobs then take a few seconds to finish.
            "estimated_seconds": round(least_seconds_for(op, jobs) + JOB_FINISH_S, 1),
            "rate_tier": f"{op.burst}/s burst, {op.steady}/min steady (bulk import jobs)",
            "sample_payload": masked(self.sample_payload) if self.sample_payload else None,
        }

    def _finish_sync(self, summary: RunSummary) -> None:
        """Record the end of the run. Synchronous on purpose: it must happen even on cancel."""
        if self.run_id is None:
            return
        self.store.finish_run(self.run_id, summary)
        if self.sync is not None and summary.sync:  # sync hook
            self.sync.record(summary.sync)

    # ---- the work ---------------------------------------------------------------------------

    async def _work(self, journal: dict[int, BatchRecord], client: KlaviyoClient | None) -> None:
        self.events.put_nowait(Phase("checking", f"list {self.export.list_id} in Klaviyo"))
        if client is not None:
            await self._work_with(client, journal)
            return
        async with KlaviyoClient(
            self.connection.base_url,
            self.api_key,
            revision=self.connection.revision,
            on_event=self.events.put_nowait,
        ) as owned:
            await self._work_with(owned, journal)

    async def _work_with(self, client: KlaviyoClient, journal: dict[int, BatchRecord]) -> None:
        try:
            await client.get_list(self.export.list_id)
        except NotFoundError as error:
            raise RunError(
                f"{str(error).rstrip('.')}; pick another list for export {self.export.name!r}: "
                f"`klaviyo-tui lists --connection {self.export.connection}` shows the account's "
                f"lists, `klaviyo-tui exports edit {self.export.name} --set list_id=ID` sets one",
                exit_code=ExitCode.USAGE,
            ) from error
        if self.sync is not None:  # sync hook: a mirror's list size, for its removal limit
            await self.sync.prepare(client)
        batches: asyncio.Queue[Batch | BaseException | None] = asyncio.Queue(
            maxsize=READ_AHEAD_BATCHES
        )
        reader = asyncio.create_task(self._read(batches))
        self.events.put_nowait(Phase("planning" if self.dry_run else "reading and uploading"))
        tracker = JobTracker(
            client=client,
            store=self.store,
            run_id=self._run,
            export_name=self.export.name,
            list_id=self.export.list_id,
            tally=self.tally,
            emit=self.events.put_nowait,
        )
        done_reading = asyncio.Event()
        poller = None if self.dry_run else asyncio.create_task(tracker.poll(done_reading))
        uploads: set[asyncio.Task[None]] = set()
        try:
            while (batch := await batches.get()) is not None:
                if isinstance(batch, BaseException):
                    raise batch
                if self.dry_run:
                    continue
                record = journal.get(batch.number)
                if record is not None and _accepted(record, batch):
                    await tracker.resumed(batch, record)
                    continue
                task = await tracker.start_upload(batch)
                uploads.add(task)
                task.add_done_callback(uploads.discard)
                _raise_failed(uploads)
            await reader
            if uploads:
                await asyncio.gather(*uploads)
            done_reading.set()
            if poller is not None:
                await poller
            if self.sync is not None:  # sync hook: removals, then subscriptions
                await self.sync.after_import(client)
        finally:
            for task in [reader, *uploads, *([poller] if poller else [])]:
                task.cancel()
            await asyncio.gather(
                reader, *uploads, *([poller] if poller else []), return_exceptions=True
            )
            if self.run_id is not None:
                await asyncio.to_thread(rejects_file.write, self.store, self.run_id)
        self.events.put_nowait(Phase("done"))

    async def _read(self, out: asyncio.Queue[Batch | BaseException | None]) -> None:
        """Drive the reading/validating/packing generator from a thread, one step at a time.

        Ends the queue with None, or hands a failure to the consumer; on cancel it just stops (the
        consumer is gone, and a put could block forever on a full queue).
        """
        produced = produce(self.export, self.config, self.retry_rows, self.sync)  # sync hook
        loop = asyncio.get_running_loop()
        # One thread for the whole read: pandas/Arrow keep their per-thread arenas warm.
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="klaviyo-tui-read")
        try:
            while (step := await loop.run_in_executor(reader, next, produced, None)) is not None:
                await self._take(step, out)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await out.put(error)
            return
        finally:
            reader.shutdown(wait=False)
            with contextlib.suppress(ValueError):  # still running in its thread after a cancel
                produced.close()
        to_send = self.tally.valid - self.tally.counts[RowState.UNCHANGED]  # sync hook
        self.events.put_nowait(
            JobsPlanned(jobs=self.planned_jobs, profiles=to_send, total=self.tally.read)
        )
        await out.put(None)

    async def _take(self, step: Step, out: asyncio.Queue[Batch | BaseException | None]) -> None:
        if step.rejects:
            await asyncio.to_thread(self.store.add_failures, self._run, step.rejects)
            for reject in step.rejects:
                self.tally.counts[reject.state] += 1
        self.tally.counts[RowState.UNCHANGED] += step.unchanged  # sync hook
        self.tally.read = step.read
        self.tally.valid = step.valid
        self.tally.total = step.total
        self.events.put_nowait(
            RowsRead(
                read=step.read,
                valid=step.valid,
                invalid=self.tally.counts[RowState.INVALID],
                duplicates=self.tally.counts[RowState.DUPLICATE],
            )
        )
        for batch in step.batches:
            if self.sample_payload is None:
                self.sample_payload = first_profile(batch.body)
            self.planned_jobs += 1
            await out.put(batch)


def _accepted(record: BatchRecord, batch: Batch) -> bool:
    """Klaviyo accepted this very batch (same fingerprint) before: it must not be sent again."""
    return (
        record.fingerprint == batch.fingerprint
        and record.state in ("accepted", "finished")
        and bool(record.job_id)
    )


def _raise_failed(tasks: set[asyncio.Task[None]]) -> None:
    for task in list(tasks):
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
