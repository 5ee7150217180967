"""The upload half of a run: start uploads, resume journal batches, poll the jobs until each is
confirmed or declared unconfirmed. Submitting and answering Klaviyo's 400s is in submit.py,
tying outcomes to rows in confirm.py.

A job that shows no progress (its status and counts unchanged) for `confirm_timeout` seconds is
not waited for any longer: its rows are unconfirmed (confirm.py). Runs on the event loop (httpx);
history writes go through `asyncio.to_thread`. The engine feeds it batches and reads the tally.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from klaviyo_tui.events import JobSubmitted, Notice, ProgressEvent, RowState, SettledBefore
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import ImportJob, JobState, KlaviyoClient, NotFoundError
from klaviyo_tui.run.confirm import Pending, Tally, Work
from klaviyo_tui.run.options import DEFAULT_CONFIRM_TIMEOUT_MINUTES, DROP_FIELD
from klaviyo_tui.run.progress import format_duration
from klaviyo_tui.run.resend import Fix, strip_field
from klaviyo_tui.run.submit import Submitter
from klaviyo_tui.run.verify import Collector
from klaviyo_tui.store.history import BatchRecord, HistoryStore

__all__ = ["DEFAULT_CONFIRM_TIMEOUT_S", "JobTracker", "Tally"]

#: Bulk import jobs being submitted at once; the client's pacer keeps them inside the rate tier.
SUBMIT_CONCURRENCY = 8
#: Jobs Klaviyo accepted but has not finished. Each keeps its rows and emails (not its body) to
#: tie import errors back to source rows; the cap keeps memory flat however long jobs take,
#: and is high enough that Klaviyo's 150 jobs a minute stay the bound unless a job takes ~25 s.
MAX_UNCONFIRMED_JOBS = 64
#: How long a job may show no progress before its rows are declared unconfirmed.
DEFAULT_CONFIRM_TIMEOUT_S = DEFAULT_CONFIRM_TIMEOUT_MINUTES * 60
#: Polling backs off to this between rounds in which no job moved.
MAX_POLL_DELAY_S = 3.0
#: How often a run says it is still waiting on jobs that show no progress (sooner when the
#: confirm timeout is shorter): a stuck job is otherwise silent until the timeout.
STALL_NOTICE_S = 60.0


class JobTracker(Submitter):
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
        policy: str = DROP_FIELD,
        confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT_S,
        collector: Collector | None = None,
        known: dict[tuple[str, int], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = store
        self.run_id = run_id
        self.export_name = export_name
        self.list_id = list_id
        self.tally = tally
        self.emit = emit
        self.policy = policy
        self.confirm_timeout = confirm_timeout
        self.collector = collector
        self.known = known or {}  # (segment, row) -> state of a resumed run's failures
        self.clock = clock
        self.pending: dict[str, Pending] = {}
        self.slots = asyncio.Semaphore(MAX_UNCONFIRMED_JOBS)
        self.submits = asyncio.Semaphore(SUBMIT_CONCURRENCY)
        self.uploads: set[asyncio.Task[None]] = set()
        self.followups: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None  # the first upload or follow-up that failed
        self._stall_told = clock()  # when the run last said it waits on jobs without progress

    # ---- submitting ---------------------------------------------------------------------------

    async def start_upload(self, batch: Batch) -> asyncio.Task[None]:
        """Wait for room (jobs in flight, jobs unconfirmed), then upload `batch` in a task."""
        await self.slots.acquire()
        await self.submits.acquire()
        task = asyncio.create_task(self._upload(batch))
        self.uploads.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.uploads.discard(task)
        self.followups.discard(task)
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()

    def unsettled_rows(self) -> int:
        """Rows of jobs Klaviyo accepted that are not confirmed yet (none once a run ends
        normally): a run stopped early counts them unconfirmed; `--resume` asks again."""
        return sum(len(entry.positions) for entry in self.pending.values())

    def raise_failure(self) -> None:
        """Raise the first error of an upload or follow-up task, if one failed."""
        if self.failure is not None:
            raise self.failure

    async def uploaded(self) -> None:
        """Wait until every upload started so far is done; raise the first failure."""
        while self.uploads:
            await asyncio.gather(*self.uploads, return_exceptions=True)
        self.raise_failure()

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
            work = Work(batch.receipt())
            sent = await self._submit(work, batch, list(range(batch.count)), main=True)
            if sent is None:  # Klaviyo refused every row: they are rejects already
                await asyncio.to_thread(self.store.batch_finished, self.run_id, batch.number, 0, 0)
                return
            job, current, positions = sent
            work.job_id = job.id
            await asyncio.to_thread(
                self.store.batch_accepted, self.run_id, batch.number, job.id, work.log()
            )
            self._watch(work, job, current, positions, main=True)
            accepted = True
            self.emit(JobSubmitted(job.id, batch.number, current.count))
        finally:
            self.submits.release()
            if not accepted:  # nothing for the poller to confirm
                self.slots.release()

    # ---- resuming -----------------------------------------------------------------------------

    async def resumed(self, batch: Batch, record: BatchRecord) -> bool:
        """A batch the journal knows: if Klaviyo accepted this very batch (same fingerprint)
        before, or refused every row of it, count it or ask about its job again, and say True:
        it is not sent again. False: the caller uploads it (never accepted, a different batch
        now, or its job expired or was cancelled)."""
        if not _accepted(record, batch):
            return False
        number = batch.number + 1
        if record.state == "finished":
            self._count_finished(batch, record)
            self.emit(SettledBefore(batch.number, batch.count, record.job_id))
            return True
        assert record.job_id is not None
        log = await asyncio.to_thread(self.store.batch_log, self.run_id, batch.number)
        try:
            job: ImportJob | None = await self.client.get_job(record.job_id)
        except NotFoundError:
            job = None
        if job is None or job.state is JobState.CANCELLED:
            said = "no longer knows" if job is None else "cancelled"
            self.emit(
                Notice(
                    f"batch {number}: Klaviyo {said} job {record.job_id}"
                    f"{' (jobs expire)' if job is None else ''}; sending the batch again (an "
                    "import is an idempotent upsert)",
                    level="warning",
                )
            )
            rows, segments = batch.rows, batch.segments
            await asyncio.to_thread(
                self.store.drop_failures,
                self.run_id,
                RowState.REJECTED,
                [(segments[p], rows[p]) for p in log.refused],
            )
            return False
        refused = set(log.refused)
        payloads = batch.payloads
        fixes = {
            p: [Fix(path, _value_of(payloads[p], path), reason) for path, reason in removed]
            for p, removed in log.fixes.items()
        }
        work = Work(batch.receipt(), refused=sorted(refused), fixes=fixes, job_id=record.job_id)
        sent = batch.without(refused) if refused else batch
        positions = [p for p in range(batch.count) if p not in refused]
        self.tally.counts[RowState.REJECTED] += record.rejected
        await self.slots.acquire()
        work.open += 1
        self.tally.jobs += 1
        self.pending[record.job_id] = Pending(
            work, record.job_id, sent.receipt(), positions, True, self.clock()
        )
        again = "asking about it again" if record.state == "unconfirmed" else "waiting for it"
        self.emit(Notice(f"batch {number}: accepted before (job {record.job_id}), {again}"))
        return True

    def _count_finished(self, batch: Batch, record: BatchRecord) -> None:
        counts = self.tally.counts
        if record.job_id:
            self.tally.jobs += 1
        counts[RowState.REJECTED] += record.rejected + record.failed
        counts[RowState.IMPORTED] += record.imported
        counts[RowState.IMPORTED_WITH_WARNINGS] += record.warned
        if self.collector is None:
            return
        rows, segments = batch.rows, batch.segments
        warned = RowState.IMPORTED_WITH_WARNINGS.value
        states = [self.known.get((segments[p], rows[p])) for p in range(batch.count)]
        positions = [p for p, s in enumerate(states) if s is None or s == warned]
        self.collector.add(batch, positions, [states[p] == warned for p in positions])

    # ---- polling ------------------------------------------------------------------------------

    async def poll(self, done_reading: asyncio.Event) -> None:
        """Poll running jobs until every accepted batch is settled."""
        delay = 0.2
        while True:
            self.raise_failure()
            if not self.pending:
                if done_reading.is_set() and not self.followups:
                    return
                await asyncio.sleep(0.05)
                continue
            ids = list(self.pending)
            jobs = await self._poll(ids)
            now = self.clock()
            moved = False
            for job_id in ids:
                entry = self.pending[job_id]
                job = jobs.get(job_id)
                if job is not None and job.running:
                    if job.progress_key != entry.key:
                        entry.key, entry.since = job.progress_key, now
                        continue
                    if now - entry.since < self.confirm_timeout:
                        continue
                moved = True
                del self.pending[job_id]
                if entry.main:
                    self.slots.release()
                if job is None:
                    why = f"Klaviyo no longer knows job {job_id} (it may have expired)"
                    await self._unconfirmed(entry, why)
                elif job.running:
                    idle = format_duration(now - entry.since)
                    why = f"job {job_id} showed no progress for {idle} (still {job.status})"
                    await self._unconfirmed(entry, why)
                else:
                    await self._confirm(entry, job)
            self._tell_stalled(now)
            delay = 0.2 if moved else min(delay * 1.5, MAX_POLL_DELAY_S)
            if self.pending:
                await asyncio.sleep(delay)

    def _tell_stalled(self, now: float) -> None:
        """Say, at most once a `STALL_NOTICE_S`, which jobs have shown no progress that long."""
        every = min(STALL_NOTICE_S, self.confirm_timeout / 3)
        idle = [now - entry.since for entry in self.pending.values() if now - entry.since >= every]
        if not idle or now - self._stall_told < every:
            return
        self._stall_told = now
        one = len(idle) == 1
        jobs, their = ("1 job has", "its") if one else (f"{len(idle)} jobs have", "their")
        self.emit(
            Notice(
                f"waiting for Klaviyo: {jobs} shown no progress for {format_duration(max(idle))}; "
                f"after {format_duration(self.confirm_timeout)} without progress {their} rows end "
                "unconfirmed (--confirm-timeout sets how long; --resume asks about them again)"
            )
        )

    async def _poll(self, ids: list[str]) -> dict[str, ImportJob]:
        """Current state of each job; one Klaviyo no longer knows is left out."""
        try:
            return await self.client.poll_jobs(ids)
        except NotFoundError:
            found: dict[str, ImportJob] = {}
            for job_id in ids:
                try:
                    found[job_id] = await self.client.get_job(job_id)
                except NotFoundError:
                    continue
            return found


def _accepted(record: BatchRecord, batch: Batch) -> bool:
    if not batch.matches(record.fingerprint):
        return False
    if record.state == "finished":
        return True
    return record.state in ("accepted", "unconfirmed") and bool(record.job_id)


def _value_of(payload: bytes, path: str) -> str:
    done = strip_field(payload, path)
    return done[1] if done is not None else ""


async def all_or_first_failure(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task; the first to fail stops the wait with its error (the caller
    cancels the rest). A dead poller must not leave uploads waiting for it forever."""
    waiting = set(tasks)
    while waiting:
        done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if (error := task.exception()) is not None:
                raise error
