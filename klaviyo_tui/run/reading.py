"""The reading side of a run, in its own worker thread: read, validate, de-duplicate, pack.

All the CPU work of an export (pandas, pyarrow, orjson, hashing) happens in `produce`, one step per
validated chunk, in one worker thread so the event loop that talks to Klaviyo never stalls.
`BatchReader` drives it from the loop: it records each step's rejects, counts the rows and hands
the packed batches to the uploader through a bounded queue (memory stays flat whatever the input).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from klaviyo_tui.events import JobsPlanned, Notice, ProgressEvent, Reject, RowsRead, RowState
from klaviyo_tui.input.batching import Batch, BatchPacker
from klaviyo_tui.input.pipeline import PipelineStats, iter_validated
from klaviyo_tui.run.confirm import Tally
from klaviyo_tui.run.outcomes import first_profile
from klaviyo_tui.run.retry import RetryRows
from klaviyo_tui.run.sync.runner import SyncRun
from klaviyo_tui.store.config import Config, Export
from klaviyo_tui.store.history import HistoryStore

#: What the reader hands on: a batch, a failure for the consumer to raise, or None at the end.
BatchQueue = asyncio.Queue[Batch | BaseException | None]


@dataclass
class Step:
    """Cumulative counts after one chunk, its rejects, and the batches it filled.

    `warnings` are fields that valid rows go without (state imported_with_warnings, for the
    history and the rejects file, not counted: a row is counted when Klaviyo confirms it)."""

    read: int
    valid: int
    total: int | None
    rejects: list[Reject]
    batches: list[Batch]
    warnings: list[Reject] = field(default_factory=list)
    unchanged: int = 0  # valid rows an incremental run skips (run/sync)
    gone: int = 0  # at the end of a retry: rows to retry no longer in the source as they were


def produce(
    export: Export,
    config: Config,
    only_rows: RetryRows | None,
    sync: SyncRun | None = None,
) -> Generator[Step, None, None]:
    """Runs in a worker thread: read, validate, de-duplicate and pack (all CPU work).

    `sync` (run/sync) skips unchanged rows, refuses rows without consent, checks a mirror's
    removals once the segment is known and journals the hashes of each packed batch."""
    import pyarrow as pa  # only this function needs it; keeps the engine's imports light

    segments = {name: config.segments[name] for name in export.segments}
    packer = BatchPacker(export.list_id)
    read = valid = 0
    total = len(only_rows) if only_rows is not None else None  # a retry's is known now
    retried: set[tuple[str, int]] = set()  # a retry's rows found as they were
    if sync is not None:  # sync hook: the consent pass
        sync.before_reading([segments[n] for n in dict.fromkeys(export.segments)])
    on_keys = sync.on_keys if sync is not None and sync.mirror else None
    # sync hook: skip unchanged rows before validation (not when retrying failed rows only)
    skip_hook = sync.unchanged if sync is not None and only_rows is None else None
    phones = sync.phones if sync is not None else None
    for item in iter_validated(
        export, segments, on_keys=on_keys, unchanged=skip_hook, phones=phones
    ):
        if sync is not None:  # sync hook: the first pass is done, the segment is known
            sync.presence_ready()
        if isinstance(item, PipelineStats):
            total = item.total if only_rows is None else total
            continue
        rejects, warnings = item.rejects, item.warnings
        payloads, rows, emails = item.payload_array, item.row_array, item.email_array
        warned = item.warned_array
        if only_rows is not None:  # a retry: the rejected rows only, found by their emails
            matched = [(r, only_rows.found(r.segment, r.row, r.email)) for r in rejects]
            rejects = [r for r, found in matched if found]
            retried.update(key for _, found in matched for key in found)
            wanted, found = only_rows.wanted(item.segment, rows, emails)
            payloads, rows, emails = payloads.filter(wanted), rows[wanted], emails.filter(wanted)
            warned = warned[wanted]
            retried.update(found)
            sending = set(rows.tolist())
            warnings = [w for w in warnings if w.row in sending]
        read += item.read if only_rows is None else len(rejects) + len(rows)
        unchanged = 0
        if sync is not None:  # sync hook: skip unchanged rows, refuse rows without consent
            keep, refused, unchanged = sync.filter(item.segment, payloads, rows, emails)
            if not keep.all():
                payloads, emails = payloads.filter(pa.array(keep)), emails.filter(pa.array(keep))
                rows, warned = rows[keep], warned[keep]
                sent = set(rows.tolist())
                warnings = [w for w in warnings if w.row in sent]  # a skipped row warns of nothing
            rejects = sorted([*rejects, *refused], key=lambda r: r.row) if refused else rejects
        valid += len(rows) + unchanged
        batches: list[Batch] = packer.add_arrays(payloads, rows, emails, item.segment, warned)
        if sync is not None:  # sync hook: journal each batch's hashes
            sync.packed(batches)
        yield Step(read, valid, total, rejects, batches, warnings, unchanged)
    last = packer.flush()
    if sync is not None and last is not None:
        sync.packed([last])
    gone = only_rows.gone(retried) if only_rows is not None else []
    read += len(gone)
    yield Step(read, valid, total, gone, batches=[last] if last else [], gone=len(gone))


class BatchReader:
    """One run's reading, driven from the event loop: `produce` runs in its own thread, one step
    at a time; rejects and warnings go to the history, counts to the tally, batches to `out`."""

    def __init__(
        self,
        export: Export,
        config: Config,
        *,
        store: HistoryStore,
        run_id: int,
        tally: Tally,
        emit: Callable[[ProgressEvent], None],
        dry_run: bool,
        only_rows: RetryRows | None,
        sync: SyncRun | None,
        on_read: Callable[[], None] = lambda: None,
    ) -> None:
        self.export, self.config, self.store, self.run_id = export, config, store, run_id
        self.tally, self.emit, self.dry_run = tally, emit, dry_run
        self.only_rows, self.sync = only_rows, sync
        self.on_read = on_read  # the whole source read, every reject and warning recorded
        self.planned_jobs = 0  # batches packed (a dry run's plan counts them)
        self.sample_payload: bytes | None = None  # the first profile, for a dry run's sample

    async def run(self, out: BatchQueue) -> None:
        """Ends the queue with None, or hands a failure to the consumer; on cancel it just stops
        (the consumer is gone, and a put could block forever on a full queue)."""
        produced = produce(self.export, self.config, self.only_rows, self.sync)  # sync hook
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
        self.on_read()
        to_send = self.tally.valid - self.tally.counts[RowState.UNCHANGED]  # sync hook
        self.emit(JobsPlanned(jobs=self.planned_jobs, profiles=to_send, total=self.tally.read))
        await out.put(None)

    async def _take(self, step: Step, out: BatchQueue) -> None:
        tally = self.tally
        if step.rejects:
            await asyncio.to_thread(self.store.add_failures, self.run_id, step.rejects)
            for reject in step.rejects:
                tally.counts[reject.state] += 1
        if step.warnings and not self.dry_run:  # recorded now, counted once Klaviyo confirms
            await asyncio.to_thread(self.store.add_failures, self.run_id, step.warnings)
        tally.counts[RowState.UNCHANGED] += step.unchanged  # sync hook
        tally.read, tally.valid, tally.total = step.read, step.valid, step.total
        invalid, duplicates = tally.counts[RowState.INVALID], tally.counts[RowState.DUPLICATE]
        unchanged = tally.counts[RowState.UNCHANGED]
        self.emit(RowsRead(step.read, step.valid, invalid, duplicates, unchanged, step.total))
        if step.gone and self.only_rows is not None:
            self.emit(Notice(gone_notice(step.gone, self.only_rows), level="warning"))
        for batch in step.batches:
            if self.sample_payload is None:
                self.sample_payload = first_profile(batch.body)
            self.planned_jobs += 1
            await out.put(batch)


def gone_notice(gone: int, retry: RetryRows) -> str:
    rows = "row" if len(retry) == 1 else "rows"
    return (
        f"{gone:,} of the {len(retry):,} {rows} Klaviyo rejected in run {retry.run_id} "
        f"{'is' if gone == 1 else 'are'} no longer in the segment with the email it rejected (its "
        "source or filter changed since): not sent (the rejects file lists them); a run of the "
        "export sends the segment as it is now"
    )
