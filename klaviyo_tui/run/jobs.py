"""The upload half of a run: submit batches, strip the rows a 400 names, poll the jobs, and
confirm every row Klaviyo accepted or refused.

Runs on the event loop (httpx); history writes go through `asyncio.to_thread`. The engine feeds
it batches and reads the tally it keeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import (
    JobConfirmed,
    JobSubmitted,
    Notice,
    ProgressEvent,
    Reject,
    RowsRejected,
    RowState,
)
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import ImportJob, KlaviyoClient, NotFoundError, RequestRejected
from klaviyo_tui.run.outcomes import map_import_errors
from klaviyo_tui.store.history import BatchRecord, HistoryStore

#: Bulk import jobs being submitted at once; the client's pacer keeps them inside the rate tier.
SUBMIT_CONCURRENCY = 8
#: Jobs Klaviyo accepted but has not finished. Each keeps its rows and emails (not its body) to
#: tie import errors back to source rows; the cap keeps memory flat however long jobs take,
#: and is high enough that Klaviyo's 150 jobs a minute stay the bound unless a job takes ~25 s.
MAX_UNCONFIRMED_JOBS = 64
#: A 400 that names rows is answered by resending the rest; a batch refused this often is stuck.
MAX_RESENDS = 5


@dataclass
class Tally:
    """What the run knows so far: rows read and valid, and rows per final state."""

    read: int = 0
    valid: int = 0
    counts: dict[RowState, int] = field(default_factory=lambda: {s: 0 for s in RowState})
    jobs: int = 0
    total: int | None = None  # rows the run will read, known after the first pass


@dataclass
class _Pending:
    """A batch Klaviyo accepted, waiting for its job to finish."""

    batch: Batch
    job_id: str
    stripped: int = 0  # rows of `batch` that a 400 removed before Klaviyo accepted the job


class JobTracker:
    """Submits a run's batches and confirms their jobs, counting every row in `tally`."""

    def __init__(
        self,
        *,
        client: KlaviyoClient,
        store: HistoryStore,
        run_id: int,
        export_name: str,
        list_id: str,
        tally: Tally,
        emit: Callable[[ProgressEvent], None],
    ) -> None:
        self.client = client
        self.store = store
        self.run_id = run_id
        self.export_name = export_name
        self.list_id = list_id
        self.tally = tally
        self.emit = emit
        self.pending: dict[str, _Pending] = {}
        self.unconfirmed = asyncio.Semaphore(MAX_UNCONFIRMED_JOBS)
        self.submits = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def start_upload(self, batch: Batch) -> asyncio.Task[None]:
        """Wait for room (jobs in flight, jobs unconfirmed), then upload `batch` in a task."""
        await self.unconfirmed.acquire()
        await self.submits.acquire()
        return asyncio.create_task(self._upload(batch))

    async def resumed(self, batch: Batch, record: BatchRecord) -> None:
        """Accepted before the interruption: count it or wait for it, never send it again."""
        assert record.job_id is not None
        self.tally.jobs += 1
        self.tally.counts[RowState.REJECTED] += record.rejected
        number = batch.number + 1
        if record.state == "finished":
            self.tally.counts[RowState.IMPORTED] += record.imported - record.warned
            self.tally.counts[RowState.IMPORTED_WITH_WARNINGS] += record.warned
            self.tally.counts[RowState.REJECTED] += record.failed
            self.emit(Notice(f"batch {number}: confirmed before (job {record.job_id}), not resent"))
            return
        await self.unconfirmed.acquire()
        self.pending[record.job_id] = _Pending(batch.receipt(), record.job_id, record.rejected)
        self.emit(Notice(f"batch {number}: accepted before (job {record.job_id}), waiting for it"))

    async def _upload(self, batch: Batch) -> None:
        accepted = False
        try:
            await asyncio.to_thread(
                self.store.batch_submitting,
                self.run_id,
                batch.number,
                batch.fingerprint,
                batch.count,
            )
            current = batch
            for _ in range(MAX_RESENDS):
                try:
                    job = await self.client.submit_import(current.body, profiles=current.count)
                    break
                except RequestRejected as error:
                    current = await self._strip_rejected(batch, current, error)
                    if current.count == 0:
                        return
            else:
                raise RunError(
                    f"batch {batch.number + 1} kept being refused by Klaviyo",
                    exit_code=ExitCode.PARTIAL,
                )
            await asyncio.to_thread(self.store.batch_accepted, self.run_id, batch.number, job.id)
            self.tally.jobs += 1
            self.pending[job.id] = _Pending(current.receipt(), job.id)
            accepted = True
            self.emit(JobSubmitted(job.id, batch.number, current.count))
        finally:
            self.submits.release()
            if not accepted:  # nothing for the poller to confirm
                self.unconfirmed.release()

    async def _strip_rejected(self, batch: Batch, current: Batch, error: RequestRejected) -> Batch:
        """Move exactly the rows Klaviyo's 400 points at to the rejects; the rest is resent."""
        bad = {i: (f, d) for i, f, d in error.row_errors if i < current.count}
        if not bad or error.unattributed:
            raise RunError(
                f"Klaviyo refused batch {batch.number + 1}: {error}", exit_code=ExitCode.INPUT
            )
        rejects = [
            Reject(
                row=current.rows[i],
                segment=current.segments[i],
                column=field_name,
                value="",
                reason=f"Klaviyo: {detail}",
                state=RowState.REJECTED,
            )
            for i, (field_name, detail) in sorted(bad.items())
        ]
        await asyncio.to_thread(self.store.add_failures, self.run_id, rejects)
        await asyncio.to_thread(
            self.store.batch_rejected_rows, self.run_id, batch.number, len(rejects)
        )
        self.tally.counts[RowState.REJECTED] += len(rejects)
        self.emit(RowsRejected(len(rejects), f"batch {batch.number + 1}: {rejects[0].reason}"))
        return current.without(set(bad))

    async def poll(self, done_reading: asyncio.Event) -> None:
        """Poll running jobs until every accepted batch has a final count."""
        delay = 0.2
        while True:
            if not self.pending:
                if done_reading.is_set():
                    return
                await asyncio.sleep(0.05)
                continue
            jobs = await self.client.poll_jobs(list(self.pending))
            finished = [j for j in jobs.values() if j.finished]
            for job in finished:
                entry = self.pending.pop(job.id)
                await self._confirm(entry, job)
                self.unconfirmed.release()
            delay = 0.2 if finished else min(delay * 1.5, 3.0)
            if self.pending:
                await asyncio.sleep(delay)

    async def _check_list_exists(self) -> None:
        """A list deleted mid-run fails every row: stop with that reason instead of paging
        through thousands of identical import errors."""
        try:
            await self.client.get_list(self.list_id)
        except NotFoundError as error:
            raise RunError(
                f"list {self.list_id} no longer exists in Klaviyo (deleted during the run?); "
                f"pick another list for export {self.export_name!r} and run it again",
                exit_code=ExitCode.USAGE,
            ) from error

    async def _confirm(self, entry: _Pending, job: ImportJob) -> None:
        batch = entry.batch
        failed = job.failed_count
        rejects: list[Reject] = []
        if job.unknown or not job.counts_known:
            self._unconfirmed(entry, job)
            return
        if job.status == "cancelled":
            raise RunError(
                f"Klaviyo cancelled job {entry.job_id} (batch {batch.number + 1}); resume the run "
                "to send it again",
                exit_code=ExitCode.UNAVAILABLE,
            )
        if failed:
            if failed >= batch.count:  # the whole batch failed: is the list still there?
                await self._check_list_exists()
            errors = await self.client.import_errors(entry.job_id)
            rejects = map_import_errors(batch, errors, failed)
            await asyncio.to_thread(self.store.add_failures, self.run_id, rejects)
            self.emit(RowsRejected(len(rejects), rejects[0].reason if rejects else "import error"))
        imported = batch.count - entry.stripped - len(rejects)
        warned = min(imported, batch.warned_confirmed((r.segment, r.row) for r in rejects))
        self.tally.counts[RowState.IMPORTED] += imported - warned
        self.tally.counts[RowState.IMPORTED_WITH_WARNINGS] += warned
        self.tally.counts[RowState.REJECTED] += len(rejects)
        await asyncio.to_thread(
            self.store.batch_finished, self.run_id, batch.number, imported, len(rejects), warned
        )
        self.emit(JobConfirmed(entry.job_id, batch.number, imported, len(rejects)))

    def _unconfirmed(self, entry: _Pending, job: ImportJob) -> None:
        """A job that ended in a status Klaviyo does not document (e.g. `failed`, or none), or
        complete without counts: its rows are not confirmed, so they are not counted imported.
        They count as not sent for now, and the batch stays "accepted" in the journal, so a
        resumed run asks about the job again. (The lead wires a dedicated unconfirmed state.)"""
        rows = entry.batch.count - entry.stripped
        self.tally.counts[RowState.NOT_SENT] += rows
        if job.unknown:
            said = f"status {job.status!r}" if job.status else "no status"
        else:
            said = "no row counts"
        self.emit(
            Notice(
                f"batch {entry.batch.number + 1}: Klaviyo ended job {entry.job_id} with {said}; "
                f"its {rows} rows are not confirmed",
                level="warning",
            )
        )
