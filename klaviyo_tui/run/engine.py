"""The export engine: source rows in, a confirmed final state for every row out.

`run_export` is the one entry point both front ends use. It is an async generator of progress events
that ends with a `RunSummary`. Work is split so the event loop never stalls:

- a thread reads, validates and packs rows into bulk-import batches (pandas, pyarrow, orjson),
  driven by reading.py's `BatchReader`;
- async tasks submit batches (the client paces them to Klaviyo's rate tier) and poll the jobs;
- history writes (SQLite) go through `asyncio.to_thread`.

Resume: batches are deterministic for the same input, so each one has a fingerprint. The journal
records every batch Klaviyo accepted (with its job id); a resumed run re-reads the input, skips the
batches already accepted (polling their jobs instead) and sends only the rest. A run that ended
with unconfirmed batches can be resumed too: their jobs are asked about again.

Verification (`verify`): once every batch is settled, the list is read back (verify.py) and each
confirmed row that is not in it moves to not_in_list. How the run ended (its exit code and
message) is summary.py's `ending`.

`RunError` (defined in `errors`) and `check_runnable` (checks.py) are re-exported here: the
front ends catch and call them from the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import Notice, Phase, ProgressEvent, RetryOf, RunSummary
from klaviyo_tui.input.sources import SourceChanged
from klaviyo_tui.klaviyo import KlaviyoClient, NotFoundError
from klaviyo_tui.run import rejects as rejects_file
from klaviyo_tui.run import verify
from klaviyo_tui.run.checks import check_runnable
from klaviyo_tui.run.jobs import JobTracker, Tally, all_or_first_failure
from klaviyo_tui.run.locking import export_lock
from klaviyo_tui.run.memory import use_lean_pool
from klaviyo_tui.run.options import RunOptions
from klaviyo_tui.run.reading import BatchQueue, BatchReader
from klaviyo_tui.run.refused_values import fill
from klaviyo_tui.run.resume import left_behind, reopen, resumed_retry
from klaviyo_tui.run.retry import RetryRows
from klaviyo_tui.run.summary import SummaryParts, ending, make_summary
from klaviyo_tui.run.sync.mirror import same_list
from klaviyo_tui.run.sync.options import SyncOptions
from klaviyo_tui.run.sync.runner import SyncRun
from klaviyo_tui.store.config import Config, Export
from klaviyo_tui.store.history import BatchRecord, HistoryStore

#: Packed batches waiting for upload: bounds memory whatever the input size.
READ_AHEAD_BATCHES = 4
#: Failures a resumed run writes again (re-read, or settled again): the old lines go first.


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
    confirm_timeout_minutes: float | None = None,
    verify: str | None = None,
    sync: SyncOptions | None = None,
    on_interrupted: Callable[[RunSummary], None] | None = None,
) -> AsyncIterator[ProgressEvent]:
    """Run one export, yielding progress; the last item is always a RunSummary, except when the
    run is cancelled: `on_interrupted` then hears the summary recorded for it.

    `confirm_timeout_minutes` (default: the export's `confirm_timeout_minutes`, else 30) is how
    long a job may show no progress before its rows are unconfirmed; `verify` ("off", "full",
    "sample:N"; default: the export's `verify`, else off) reads the list back after the run.
    Raises RunError or RunInProgress before the first event when the run cannot start.
    """
    check_runnable(export, config)
    use_lean_pool()  # run/memory.py: Arrow's freed pages go back to the OS (peak RSS)
    options = RunOptions.of(export, confirm_timeout_minutes, verify)
    with export_lock(export.name):
        run = _ExportRun(export, config, api_key, store, dry_run=dry_run, options=options)
        full_check = options.verify.kind == "full"  # sync hook: --full, --mode, mass removal
        run.sync_options = replace(sync or SyncOptions(), verify_all=full_check)
        run.on_interrupted = on_interrupted
        async for event in run.execute(
            resume=resume, retry_failed_of=retry_failed_of, client=client
        ):
            yield event


__all__ = ["RunError", "check_runnable", "run_export"]


class _ExportRun:
    def __init__(
        self,
        export: Export,
        config: Config,
        api_key: str,
        store: HistoryStore,
        *,
        dry_run: bool,
        options: RunOptions,
    ) -> None:
        self.export = export
        self.options = options
        self.config = config
        self.connection = config.connections[export.connection]
        self.api_key = api_key
        self.store = store
        self.dry_run = dry_run
        self.tally = Tally()
        self.events: asyncio.Queue[ProgressEvent] = asyncio.Queue()
        self.run_id: int | None = None  # set before any work starts
        self.started = time.monotonic()
        self.reader: BatchReader | None = None  # the reading side, once the work starts
        self.retry_rows: RetryRows | None = None  # run --retry-failed RUN
        self.known: dict[tuple[str, int], str] = {}  # a resumed run's failures, for verify
        self.verification: dict[str, object] | None = None
        self.source_changed: SourceChanged | None = None  # the run stops, resumable
        self.early_rejects: asyncio.Future[int] | None = None  # rejects.draft, once read
        self.sync_options = SyncOptions()
        self.sync: SyncRun | None = None  # sync hook (run/sync), set once the run record exists
        self.on_interrupted: Callable[[RunSummary], None] | None = None

    @property
    def _run(self) -> int:
        assert self.run_id is not None, "the run record is created before any work"
        return self.run_id

    # ---- orchestration ----------------------------------------------------------------------

    async def execute(
        self, *, resume: bool, retry_failed_of: int | None, client: KlaviyoClient | None
    ) -> AsyncIterator[ProgressEvent]:
        journal: dict[int, BatchRecord] = {}
        if retry_failed_of is not None:
            if resume:
                raise RunError(
                    "--resume and --retry-failed do not go together: resume the interrupted "
                    "run first, then retry what Klaviyo rejected"
                )
            await self._retrying(retry_failed_of)
        if resume:
            previous = await asyncio.to_thread(self.store.resumable_run, self.export.name)
            if previous is None:
                raise RunError(
                    f"export {self.export.name!r} has no interrupted run to resume; run it without "
                    "--resume",
                    exit_code=ExitCode.USAGE,
                )
            self.run_id = previous.id
            figures = await asyncio.to_thread(self.store.run_sync, self._run)
            if (retried := SyncOptions.retry_before(figures)) is not None:  # a retry goes on
                await self._retrying(retried)
                self.events.put_nowait(Notice(resumed_retry(retried)))
            verify_on = self.options.verify.kind != "off"
            journal, self.known = await asyncio.to_thread(
                reopen, self.store, previous.id, verify=verify_on
            )
        else:
            if not self.dry_run and (
                note := await asyncio.to_thread(left_behind, self.store, self.export.name)
            ):
                self.events.put_nowait(Notice(note, level="warning"))
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
            others=same_list(self.config, self.export),
        ).start()

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
                summary = self._make_summary(*self._ending(worker))
            except Exception as error:  # a bug, not the user's doing: still close the record
                failed = self._make_summary(ExitCode.PARTIAL, f"internal error: {error!r}")
                self._finish_sync(failed)
                raise
        except (asyncio.CancelledError, GeneratorExit):
            worker.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({worker}, timeout=10)  # its cleanup writes the rejects file
            stopped = self._make_summary(ExitCode.INTERRUPTED, "interrupted; resume with --resume")
            self._finish_sync(stopped)
            if self.on_interrupted is not None:
                self.on_interrupted(stopped)
            raise
        self._finish_sync(summary)
        yield summary

    async def _retrying(self, run_id: int) -> None:
        """Send only the rows Klaviyo rejected in `run_id`, and remove no one."""
        self.events.put_nowait(RetryOf(run_id))
        self.sync_options = self.sync_options.retrying(run_id)
        self.retry_rows = await asyncio.to_thread(
            RetryRows.of, self.store, run_id, self.export.name
        )

    def _ending(self, worker: asyncio.Task[None]) -> tuple[ExitCode, str | None, str | None]:
        refused = self.sync.refused if self.sync is not None else None  # sync hook
        return ending(
            worker.exception(), self.tally, self.export.name, dry_run=self.dry_run, refused=refused
        )

    def _make_summary(
        self, code: ExitCode, error: str | None, hint: str | None = None
    ) -> RunSummary:
        parts = SummaryParts(
            run_id=self.run_id,
            export=self.export.name,
            started=self.started,
            ended=time.monotonic(),
            dry_run=self.dry_run,
            planned_jobs=self.reader.planned_jobs if self.reader is not None else 0,
            sample_payload=self.reader.sample_payload if self.reader is not None else None,
            rejects_path=rejects_file.path_for(self.run_id) if self.run_id is not None else None,
            verification=self.verification,
            sync=self.sync.figures() if self.sync is not None else {},  # sync hook
        )
        return make_summary(parts, self.tally, code, error, hint)

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
        batches: BatchQueue = asyncio.Queue(maxsize=READ_AHEAD_BATCHES)
        self.reader = BatchReader(
            self.export,
            self.config,
            store=self.store,
            run_id=self._run,
            tally=self.tally,
            emit=self.events.put_nowait,
            dry_run=self.dry_run,
            only_rows=self.retry_rows,
            sync=self.sync,
            on_read=self._draft_rejects,
        )
        reader = asyncio.create_task(self.reader.run(batches))
        self.events.put_nowait(Phase("planning" if self.dry_run else "reading and uploading"))
        plan = self.options.verify
        collector: verify.Collector | None = None
        if plan.kind == "full":
            collector = verify.Expected()
        elif plan.kind == "sample":
            collector = verify.Sample(plan.size)
        tracker = JobTracker(
            client=client,
            store=self.store,
            run_id=self._run,
            export_name=self.export.name,
            list_id=self.export.list_id,
            tally=self.tally,
            emit=self.events.put_nowait,
            policy=self.options.policy,
            confirm_timeout=self.options.confirm_timeout_s,
            collector=None if self.dry_run else collector,
            known=self.known,
        )
        done_reading = asyncio.Event()
        feeder = asyncio.create_task(self._feed(batches, reader, tracker, journal, done_reading))
        poller = None if self.dry_run else asyncio.create_task(tracker.poll(done_reading))
        tasks = [feeder, *([poller] if poller else [])]
        try:
            await all_or_first_failure(tasks)
            if self.source_changed is not None:
                raise self.source_changed
            if self.sync is not None:  # sync hook: removals, then subscriptions
                await self.sync.after_import(client)
            if collector is not None and not self.dry_run:
                await self._verify(client, collector)
        finally:
            others = [reader, *tasks, *tracker.uploads, *tracker.followups]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            unread = not done_reading.is_set() and self.retry_rows is None  # a retry reads few
            self.tally.stopped(tracker.unsettled_rows(), unread=unread)
            if self.run_id is not None:
                me = asyncio.current_task()  # stopping: no second read of the source
                stopping = me is not None and me.cancelling() > 0  # (--resume redoes it)
                run, segments = self.run_id, self.config.segments
                values = None if stopping else partial(fill, self.store, run, self.export, segments)
                await rejects_file.finish_after_draft(
                    self.store, self.run_id, self.early_rejects, values
                )
        self.events.put_nowait(Phase("done"))

    async def _feed(
        self,
        batches: BatchQueue,
        reader: asyncio.Task[None],
        tracker: JobTracker,
        journal: dict[int, BatchRecord],
        done_reading: asyncio.Event,
    ) -> None:
        """Hand each packed batch to the tracker: resumed, or uploaded. A source that changed
        while it was read stops the feed; what Klaviyo accepted is still confirmed."""
        while (batch := await batches.get()) is not None:
            if isinstance(batch, SourceChanged):
                self.source_changed = batch
                break
            if isinstance(batch, BaseException):
                raise batch
            if self.dry_run:
                continue
            record = journal.get(batch.number)
            if record is not None and await tracker.resumed(batch, record):
                continue
            await tracker.start_upload(batch)
            tracker.raise_failure()
        await reader
        await tracker.uploaded()
        done_reading.set()

    def _draft_rejects(self) -> None:
        """Write the rejects file while the last jobs go and settle (run/rejects.py, `draft`)."""
        loop = asyncio.get_running_loop()
        self.early_rejects = loop.run_in_executor(None, rejects_file.draft, self.store, self._run)

    async def _verify(self, client: KlaviyoClient, collector: verify.Collector) -> None:
        """Read the list back; confirmed rows not in it move to not_in_list."""
        self.events.put_nowait(Phase("verifying", f"list {self.export.list_id}"))
        result = await verify.verify_run(
            client,
            self.store,
            self._run,
            self.export.list_id,
            collector,
            self.tally.counts,
            self.events.put_nowait,
        )
        self.verification = result.as_dict()
