"""Turning finished (or never finishing) jobs into one final state per row.

A journal batch is settled when every job that carries its rows is: its own job, plus the
follow-up jobs that resend rows without an identifier Klaviyo refused inside the job (see
resend.py). Then, and only then, its rejects, warnings and counts are written, in one go, so a
resumed run that asks about the batch again never finds half of it recorded.

A job Klaviyo never confirms (a status outside the spec, complete without counts, cancelled, no
progress before the deadline, or a job Klaviyo no longer knows) leaves its batch unconfirmed:
every row it carried is counted and listed as unconfirmed, and the journal keeps the job id so
`--resume` asks again (and sends the batch again if the job expired or was cancelled). Rows of
such a batch that an earlier job of it did confirm are counted unconfirmed too (conservative:
the resumed run settles the whole batch again from its job).

`Confirmer` holds that logic; `JobTracker` (jobs.py) adds submitting and polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import (
    JobConfirmed,
    JobUnconfirmed,
    Notice,
    ProgressEvent,
    Reject,
    RowsRejected,
    RowState,
)
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import ImportJob, JobState, KlaviyoClient, NotFoundError
from klaviyo_tui.run.outcomes import (
    error_reject,
    match_import_errors,
    pointer_path,
    unitemised_rejects,
)
from klaviyo_tui.run.progress import plural
from klaviyo_tui.run.resend import Fix, from_original, removable, warning_reject
from klaviyo_tui.run.verify import Collector
from klaviyo_tui.store.history import HistoryStore, ResendLog


@dataclass
class Tally:
    """What the run knows so far: rows read and valid, and rows per final state."""

    read: int = 0
    valid: int = 0
    counts: dict[RowState, int] = field(default_factory=lambda: {s: 0 for s in RowState})
    jobs: int = 0
    total: int | None = None  # rows the run will read, known after the first pass
    unread: int = 0  # of those, rows a run stopped early never read (not sent)

    def stopped(self, unsettled: int, *, unread: bool) -> None:
        """The run's work ended (early, or not: then both are 0). Rows of jobs Klaviyo accepted
        but did not confirm are unconfirmed, not unsent (`--resume` asks about them); with
        `unread`, rows the first pass counted that were never read are not sent: every row of
        the source then has one state."""
        self.counts[RowState.UNCONFIRMED] += unsettled
        if unread and self.total is not None:
            self.unread = max(0, self.total - self.read)


@dataclass
class Work:
    """One journal batch until every row it carries has a final state."""

    batch: Batch  # a receipt of the batch as packed: positions are journal positions
    refused: list[int] = field(default_factory=list)  # refused by a 400 before acceptance
    fixes: dict[int, list[Fix]] = field(default_factory=dict)  # fields removed, by position
    job_id: str = ""  # the batch's own job (the journal's)
    open: int = 0  # jobs and follow-up submissions not settled yet
    imported: list[int] = field(default_factory=list)  # positions confirmed in the list
    unitemised: int = 0  # failures Klaviyo counted without naming the row
    rejects: list[Reject] = field(default_factory=list)
    unconfirmed: str | None = None  # why, once any job of the batch was never confirmed

    def log(self) -> ResendLog:
        """What the journal keeps: only what a resumed run cannot learn again."""
        return ResendLog(
            refused=list(self.refused),
            fixes={p: [(f.field, f.reason) for f in fs] for p, fs in self.fixes.items()},
        )


@dataclass
class Pending:
    """A job Klaviyo accepted, waiting to finish."""

    work: Work
    job_id: str
    batch: Batch  # a receipt of what the job carried
    positions: list[int]  # the journal position of each row of `batch`
    main: bool  # the batch's own job (it holds one of the tracker's slots)
    since: float  # when the job last visibly moved (or was accepted)
    key: tuple[str, int, int, int] | None = None


class Confirmer:
    """Confirms jobs and settles batches; the state is set up by JobTracker."""

    client: KlaviyoClient
    store: HistoryStore
    run_id: int
    export_name: str
    list_id: str
    tally: Tally
    emit: Callable[[ProgressEvent], None]
    policy: str
    collector: Collector | None

    def _followup(self, entry: Pending, resend: list[tuple[int, bytes, Fix]]) -> None:
        raise NotImplementedError  # pragma: no cover (JobTracker provides it)

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

    async def _confirm(self, entry: Pending, job: ImportJob) -> None:
        """A job left queued/processing: tie its outcome to rows, then settle its share."""
        if job.unknown:
            said = "no status"
            if job.status:
                said = f"status {job.status!r}, which Klaviyo's API does not list"
            await self._unconfirmed(entry, f"Klaviyo ended job {entry.job_id} with {said}")
            return
        if not job.counts_known:
            await self._unconfirmed(
                entry, f"Klaviyo completed job {entry.job_id} without saying how many rows failed"
            )
            return
        if job.state is JobState.CANCELLED:  # what landed before is unknown: resume resends
            await self._unconfirmed(entry, f"Klaviyo cancelled job {entry.job_id}")
            return
        work, batch = entry.work, entry.batch
        failed = job.failed_count
        matches = []
        if failed:
            if failed >= batch.count:  # the whole job failed: is the list still there?
                await self._check_list_exists()
            matches = match_import_errors(batch, await self.client.import_errors(entry.job_id))
        named: set[int] = set()
        resend: list[tuple[int, bytes, Fix]] = []
        for match in matches:
            if match.position is None:
                continue
            named.add(match.position)
            path = pointer_path(match.error.pointer)
            if not removable(path, self.policy):
                work.rejects.append(error_reject(batch, match))
                continue
            built = from_original(match.error.original_payload, path)
            if built is None:
                why = f"the row Klaviyo echoed has no {path}"
                if not match.error.original_payload:
                    why = "Klaviyo did not echo the row"
                note = f" (it could not be sent again without {path}: {why})"
                work.rejects.append(error_reject(batch, match, note))
                continue
            detail = match.error.detail or match.error.title or match.error.code
            resend.append((match.position, built[0], Fix(path, built[1], detail)))
        unitemised = max(0, failed - len(named))
        work.unitemised += unitemised
        work.rejects += unitemised_rejects(unitemised)
        work.imported += [entry.positions[p] for p in range(batch.count) if p not in named]
        if resend:
            self._followup(entry, resend)
        await self._settle(work)

    async def _unconfirmed(self, entry: Pending, why: str) -> None:
        work = entry.work
        if work.unconfirmed is None:
            work.unconfirmed = why
        await self._settle(work)

    async def _settle(self, work: Work) -> None:
        """One job (or follow-up submission) of the batch is done; the last one settles it."""
        work.open -= 1
        if work.open > 0:
            return
        if work.unconfirmed is not None:
            await self._settle_unconfirmed(work, work.unconfirmed)
        else:
            await self._settle_confirmed(work)

    async def _settle_confirmed(self, work: Work) -> None:
        batch = work.batch
        imported = sorted(set(work.imported))
        local = batch.warned  # sent without a field the pipeline found unusable (already noted)
        warned_at = [p for p in imported if p in work.fixes or local[p]]
        total = max(0, len(imported) - work.unitemised)
        warned = min(len(warned_at), total)
        rows, segments = batch.rows, batch.segments
        notes = [
            warning_reject(rows[p], segments[p], work.fixes[p]) for p in imported if p in work.fixes
        ]
        failed = len(work.rejects)
        await asyncio.to_thread(  # one transaction: a stop between the two writes no twice
            self.store.add_batch_failures,
            self.run_id,
            [*work.rejects, *notes],
            batch.number,
            (total - warned, failed, warned),
        )
        if self.collector is not None:
            fixed = [p in work.fixes or local[p] for p in imported]
            await asyncio.to_thread(self.collector.add, batch, imported, fixed)
        counts = self.tally.counts
        counts[RowState.IMPORTED] += total - warned
        counts[RowState.IMPORTED_WITH_WARNINGS] += warned
        counts[RowState.REJECTED] += failed
        if work.rejects:
            self.emit(RowsRejected(failed, work.rejects[0].reason))
        if notes:
            self.emit(
                Notice(
                    f"batch {batch.number + 1}: {plural(len(notes), 'row')} imported without a "
                    f"field Klaviyo refused: {notes[0].reason.removeprefix('Klaviyo: ')}",
                    level="warning",
                )
            )
        self.emit(JobConfirmed(work.job_id, batch.number, total, failed))

    async def _settle_unconfirmed(self, work: Work, why: str) -> None:
        batch = work.batch
        refused = set(work.refused)
        sent = [p for p in range(batch.count) if p not in refused]
        rows, segments, emails = batch.rows, batch.segments, batch.emails
        reason = f"{why}; `klaviyo-tui run {self.export_name} --resume` asks Klaviyo again"
        rejects = [
            Reject(rows[p], segments[p], "", emails[p], reason, RowState.UNCONFIRMED) for p in sent
        ]
        await asyncio.to_thread(self.store.add_failures, self.run_id, rejects)
        await asyncio.to_thread(self.store.batch_unconfirmed, self.run_id, batch.number)
        self.tally.counts[RowState.UNCONFIRMED] += len(sent)
        self.emit(JobUnconfirmed(work.job_id, batch.number, len(sent), why))
