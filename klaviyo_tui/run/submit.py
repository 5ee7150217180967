"""Sending a batch until Klaviyo accepts it, and sending rows again without a refused field.

A 400 that points at rows is answered row by row: a refused email (the matching key) or a whole
profile rejects the row; any other field is removed and the row sent again (resend.py). The loop
goes on while each round removes something, and stops with a clear error when one does not (no
fixed number of rounds). Import errors that name an identifier inside a finished job are answered
by a follow-up job of those rows without it, built from the rows as Klaviyo echoed them.

`Submitter` is mixed into JobTracker (jobs.py), which sets the state up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import Notice, Reject, RowsRejected, RowState
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import ImportJob, RequestRejected
from klaviyo_tui.run.confirm import Confirmer, Pending, Work
from klaviyo_tui.run.progress import plural
from klaviyo_tui.run.resend import Fix, rebatch, removable, strip_field


class Submitter(Confirmer):
    """Submission and resending; JobTracker provides the state and task bookkeeping."""

    pending: dict[str, Pending]
    followups: set[asyncio.Task[None]]
    clock: Callable[[], float]

    def _task_done(self, task: asyncio.Task[None]) -> None:
        raise NotImplementedError  # pragma: no cover (JobTracker provides it)

    def _watch(
        self, work: Work, job: ImportJob, sent: Batch, positions: list[int], *, main: bool
    ) -> None:
        work.open += 1
        self.tally.jobs += 1
        self.pending[job.id] = Pending(work, job.id, sent.receipt(), positions, main, self.clock())

    async def _submit(
        self, work: Work, batch: Batch, positions: list[int], *, main: bool
    ) -> tuple[ImportJob, Batch, list[int]] | None:
        """POST the batch, answering each 400 by rejecting or fixing the rows it names; None
        when no row is left to send."""
        current = batch
        while True:
            try:
                job = await self.client.submit_import(current.body, profiles=current.count)
            except RequestRejected as error:
                current, positions = await self._answer(work, current, positions, error, main)
                if current.count == 0:
                    return None
                continue
            return job, current, positions

    async def _answer(
        self, work: Work, current: Batch, positions: list[int], error: RequestRejected, main: bool
    ) -> tuple[Batch, list[int]]:
        """The batch minus the rows Klaviyo's 400 refuses, and without the fields it refuses."""
        number = work.batch.number + 1
        named = [(i, f, d) for i, f, d in error.row_errors if i < current.count]
        if not named or error.unattributed:
            raise RunError(f"Klaviyo refused batch {number}: {error}", exit_code=ExitCode.INPUT)
        refused: dict[int, tuple[str, str]] = {}
        strip: dict[int, list[tuple[str, str]]] = {}
        for i, path, detail in named:
            if removable(path, self.policy):
                strip.setdefault(i, []).append((path, detail))
            else:
                refused.setdefault(i, (path, detail))
        payloads = current.payloads
        changed: dict[int, bytes] = {}
        removed: list[Fix] = []
        for i, items in strip.items():
            if i in refused:
                continue
            payload = payloads[i]
            for path, detail in items:
                done = strip_field(payload, path)
                if done is None:
                    continue  # not there (any more): Klaviyo names a field already removed
                payload = done[0]
                removed.append(Fix(path, done[1], detail))
                work.fixes.setdefault(positions[i], []).append(removed[-1])
                changed[i] = payload
        if not refused and not changed:
            path, detail = next(iter(strip.values()))[0]
            raise RunError(
                f"Klaviyo refused batch {number} again for {path} ({detail}), a field already "
                "removed from those rows, so sending it again cannot help",
                hint=f"Check the {path} values of that batch's rows in the source, then run the "
                "export again (an import is an idempotent upsert).",
                exit_code=ExitCode.PARTIAL,
            )
        if refused:
            await self._refuse(work, current, positions, refused, main)
        if changed:
            fields = ", ".join(sorted({f.field for f in removed}))
            self.emit(
                Notice(
                    f"batch {number}: {plural(len(changed), 'row')} sent again without {fields}, "
                    f"which Klaviyo refused: {removed[0].reason}"
                )
            )
        keep = [i for i in range(current.count) if i not in refused]
        if not keep:
            return current.without(set(range(current.count))), []
        rows, emails, segments = current.rows, current.emails, current.segments
        (rebuilt,) = rebatch(
            current.number,
            current.list_id,
            [changed.get(i, payloads[i]) for i in keep],
            [rows[i] for i in keep],
            [emails[i] for i in keep],
            [segments[i] for i in keep],
        )
        return rebuilt, [positions[i] for i in keep]

    async def _refuse(
        self,
        work: Work,
        current: Batch,
        positions: list[int],
        refused: dict[int, tuple[str, str]],
        main: bool,
    ) -> None:
        rows, segments, emails = current.rows, current.segments, current.emails
        rejects = [
            Reject(
                row=rows[i],
                segment=segments[i],
                column=path.split("/", 1)[0] if path else "",
                value=emails[i] if path.startswith("email") else "",
                reason=f"Klaviyo: {detail}",
                state=RowState.REJECTED,
                email=emails[i],
            )
            for i, (path, detail) in sorted(refused.items())
        ]
        for i in refused:
            work.fixes.pop(positions[i], None)
        if not main:  # a follow-up is settled with its batch, and re-derived on resume
            work.rejects += rejects
            return
        work.refused += [positions[i] for i in refused]
        await asyncio.to_thread(self.store.add_refused, self.run_id, rejects)
        await asyncio.to_thread(
            self.store.batch_rejected_rows, self.run_id, work.batch.number, len(rejects)
        )
        self.tally.counts[RowState.REJECTED] += len(rejects)
        self.emit(RowsRejected(len(rejects), f"batch {work.batch.number + 1}: {rejects[0].reason}"))

    def _followup(self, entry: Pending, resend: list[tuple[int, bytes, Fix]]) -> None:
        """Send rows again without the identifier Klaviyo refused inside a job."""
        entry.work.open += 1  # the submission holds the batch open until its jobs are watched
        task = asyncio.create_task(self._send_followup(entry, resend))
        self.followups.add(task)
        task.add_done_callback(self._task_done)

    async def _send_followup(self, entry: Pending, resend: list[tuple[int, bytes, Fix]]) -> None:
        work, sent = entry.work, entry.batch
        rows, emails, segments = sent.rows, sent.emails, sent.segments
        positions = [entry.positions[i] for i, _, _ in resend]
        for (_, _, fix), position in zip(resend, positions, strict=True):
            work.fixes.setdefault(position, []).append(fix)
        batches = rebatch(
            work.batch.number,
            self.list_id,
            [payload for _, payload, _ in resend],
            [rows[i] for i, _, _ in resend],
            [emails[i] for i, _, _ in resend],
            [segments[i] for i, _, _ in resend],
        )
        start = 0
        for batch in batches:
            share, start = positions[start : start + batch.count], start + batch.count
            result = await self._submit(work, batch, share, main=False)
            if result is None:
                continue
            job, current, kept = result
            self._watch(work, job, current, kept, main=False)
            fields = sorted({fix.field for _, _, fix in resend})
            self.emit(
                Notice(
                    f"batch {work.batch.number + 1}: {plural(current.count, 'row')} sent again "
                    f"without {', '.join(fields)} (job {job.id}): {resend[0][2].reason}"
                )
            )
        await self._settle(work)
