"""Bulk import jobs: submit (adopting the job of an ambiguous attempt), poll, read errors."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from klaviyo_tui.events import Notice
from klaviyo_tui.klaviyo.base import JOBS, ClientBase, check_id
from klaviyo_tui.klaviyo.exceptions import KlaviyoError, RateLimitedUntil, UnexpectedResponse
from klaviyo_tui.klaviyo.models import (
    ImportErrorItem,
    ImportJob,
    data_items,
    parse_import_error,
    parse_job,
)
from klaviyo_tui.klaviyo.submissions import BatchShape, batch_shape
from klaviyo_tui.klaviyo.transport import Settled

#: Pages of other jobs (100 each) a poll may read past before fetching its own one by one.
POLL_EXTRA_PAGES = 2
#: Looking for the job of an ambiguous import attempt: how far before the first attempt a job
#: may be dated (our clock against Klaviyo's), and how many of the newest jobs are read.
ADOPT_CLOCK_SKEW = timedelta(seconds=60)
ADOPT_SCAN_JOBS = 200


class ImportOps(ClientBase):
    """The bulk-import half of KlaviyoClient (mixed in; see client.py)."""

    async def submit_import(self, body: bytes, *, profiles: int | None = None) -> ImportJob:
        """POST a serialized ProfileImportJobCreateQuery as is; a 400 raises RequestRejected.

        After an ambiguous failure (read timeout, reset after sending, 5xx such as 524) the job
        may exist already: before sending again, the newest jobs are searched for it and it is
        adopted when it can only be ours (submissions.py); otherwise the batch is sent again (an
        import is an idempotent upsert). Either choice is reported as a Notice. `profiles` (the
        batch's profile count) saves parsing the body for that search.
        """
        token = self._ledger.open(profiles)
        since = datetime.now(UTC) - ADOPT_CLOCK_SKEW
        adopted: list[ImportJob] = []
        ambiguous = False

        async def accepted_before() -> bool:
            nonlocal ambiguous
            ambiguous = True
            job = await self._find_submitted(token, body, profiles, since)
            if job is not None:
                adopted.append(job)
            return job is not None

        job_id: str | None = None
        try:
            try:
                response = await self._send(
                    "bulk_import_profiles", "POST", JOBS, body=body, before_retry=accepted_before
                )
            except Settled:
                job_id = adopted[0].id
                return adopted[0]
            items = data_items(self._document(response, "bulk_import_profiles"))
            if not items or not items[0].get("id"):
                raise UnexpectedResponse(
                    "Klaviyo accepted the import batch but sent no job id, so it cannot be "
                    "confirmed; the batch will be treated as not sent."
                )
            job = parse_job(items[0])
            job_id = job.id
            return job
        finally:
            self._ledger.close(token, job_id, maybe_accepted=ambiguous)

    async def _find_submitted(
        self, token: int, body: bytes, profiles: int | None, since: datetime
    ) -> ImportJob | None:
        """The job an ambiguous attempt created, when it can be told apart; else None."""
        shape = await asyncio.to_thread(batch_shape, body)
        if shape is None:
            return None
        if profiles is not None:
            shape = BatchShape(profiles, shape.list_id)
        size = f"{shape.count} profile(s)"
        if self._ledger.crowded(token, shape.count):
            self._emit(
                Notice(
                    f"an import batch of {size} may have reached Klaviyo before the failure, but "
                    "other uploads of that size are open, so its job cannot be told apart; "
                    "sending it again (an import is an idempotent upsert)"
                )
            )
            return None
        try:
            jobs = await self._newest_jobs(since)
        except RateLimitedUntil:
            raise
        except KlaviyoError as problem:
            self._emit(
                Notice(
                    f"could not look for the job of a failed import attempt ({problem}); sending "
                    "the batch again (an import is an idempotent upsert)",
                    level="warning",
                )
            )
            return None
        job = self._ledger.pick(token, shape, since, jobs)
        if job is None:
            self._emit(
                Notice(
                    f"no job from the failed attempt to import {size} was found; sending the "
                    "batch again (an import is an idempotent upsert)"
                )
            )
        else:
            self._emit(
                Notice(
                    f"the failed attempt to import {size} had reached Klaviyo: job {job.id} "
                    "(same size, created since) is used instead of sending the batch again"
                )
            )
        return job

    async def _newest_jobs(self, since: datetime) -> list[ImportJob]:
        """Jobs created since `since`, newest first, reading at most ADOPT_SCAN_JOBS of them."""
        found: list[ImportJob] = []
        params = {"sort": "-created_at", "page[size]": "100"}
        pages = self._pages("get_bulk_import_profiles_jobs", JOBS, params)
        try:
            async for item in pages:
                job = parse_job(item)
                found.append(job)
                created = job.created_at
                if created is not None and created.tzinfo is not None and created < since:
                    break  # newest first: the rest are older still
                if len(found) >= ADOPT_SCAN_JOBS:
                    break
        finally:
            await pages.aclose()
        return found

    async def get_job(self, job_id: str) -> ImportJob:
        check_id(job_id, "import job")
        response = await self._send(
            "get_bulk_import_profiles_job",
            "GET",
            f"{JOBS}/{job_id}",
            not_found=f"import job {job_id} does not exist in this account (it may have expired).",
        )
        items = data_items(self._document(response, "get_bulk_import_profiles_job"))
        if not items or not items[0].get("id"):
            raise UnexpectedResponse(
                f"Klaviyo's answer about import job {job_id} had no job in it."
            )
        return parse_job(items[0])

    async def running_jobs(self) -> list[ImportJob]:
        """Every queued or processing job in the account (all pages, 100 per page)."""
        params = {"filter": 'any(status,["queued","processing"])', "page[size]": "100"}
        return [
            parse_job(item)
            async for item in self._pages("get_bulk_import_profiles_jobs", JOBS, params)
        ]

    async def poll_jobs(self, job_ids: Collection[str]) -> dict[str, ImportJob]:
        """Current state of each job, in few calls. Many ids: page through the account's jobs,
        newest first, 100 a page (a run's own jobs are the newest), until all are seen; the
        listing carries the counts, so finished jobs need no call of their own. The few not
        found within a bounded number of pages, or one or two ids, are fetched one by one."""
        ids = list(dict.fromkeys(job_ids))
        for job_id in ids:
            check_id(job_id, "import job")
        result: dict[str, ImportJob] = {}
        if len(ids) > 2:
            wanted = set(ids)
            budget = (len(ids) + 99) // 100 + POLL_EXTRA_PAGES
            params = {"sort": "-created_at", "page[size]": "100"}
            seen = 0
            pages = self._pages("get_bulk_import_profiles_jobs", JOBS, params)
            try:
                async for item in pages:
                    job = parse_job(item)
                    if job.id in wanted:
                        result[job.id] = job
                    seen += 1
                    if len(result) == len(wanted) or seen >= budget * 100:
                        break
            finally:
                await pages.aclose()
        rest = [i for i in ids if i not in result]
        for job_id, job in zip(
            rest, await asyncio.gather(*(self.get_job(i) for i in rest)), strict=True
        ):
            result[job_id] = job
        return {i: result[i] for i in ids if i in result}

    async def import_errors(self, job_id: str) -> list[ImportErrorItem]:
        """Every per-profile error of a job (all pages, 100 per page), the key scrubbed from
        every text and from the echoed original payloads."""
        check_id(job_id, "import job")
        return [
            self._scrubbed_error(parse_import_error(item))
            async for item in self._pages(
                "get_errors_for_bulk_import_profiles_job",
                f"{JOBS}/{job_id}/import-errors",
                {"page[size]": "100"},
                not_found=f"import job {job_id} does not exist in this account.",
            )
        ]

    def _scrubbed_error(self, item: ImportErrorItem) -> ImportErrorItem:
        payload = item.original_payload
        return ImportErrorItem(
            code=self._scrub(item.code),
            title=self._scrub(item.title),
            detail=self._scrub(item.detail),
            pointer=self._scrub(item.pointer) if item.pointer is not None else None,
            original_payload=self._scrub_value(payload) if payload is not None else None,
            id=item.id,
        )
