"""The async Klaviyo client: key check, lists, bulk import jobs and their errors.

Operations only: the connection, error mapping and paging live in base.py, the retry loop and
pacing in transport.py and pacing.py, and lenient parsing in models.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import orjson

from klaviyo_tui.klaviyo.base import (
    DEFAULT_REVISION,
    DEFAULT_TIMEOUT,
    JOBS,
    ClientBase,
    check_id,
    quote_filter,
)
from klaviyo_tui.klaviyo.exceptions import InvalidConfiguration, NotFoundError, UnexpectedResponse
from klaviyo_tui.klaviyo.models import (
    ImportErrorItem,
    ImportJob,
    KeyCheck,
    KlaviyoList,
    account_name,
    as_dict,
    data_items,
    missing_scopes,
    parse_import_error,
    parse_job,
    parse_list,
)
from klaviyo_tui.klaviyo.transport import Settled

__all__ = ["DEFAULT_REVISION", "DEFAULT_TIMEOUT", "KlaviyoClient"]
_PROBE_ID = "00000000000000000000000000"  # a job id that cannot exist


#: Pages of other jobs (100 each) a poll may read past before fetching its own one by one.
POLL_EXTRA_PAGES = 2


class KlaviyoClient(ClientBase):
    """Async context manager; use `async with KlaviyoClient(url, key) as k: await k.lists()`."""

    async def verify_key(self) -> KeyCheck:
        """Learn which scopes the key has without writing anything.

        Write scopes are probed by POSTing `{}` to /api/lists and /api/profile-bulk-import-jobs:
        Klaviyo (and the sandbox) check scopes before the body, so 403 means "scope missing" and a
        400 means "granted". 401 raises AuthError.
        """
        granted: dict[str, bool] = {}
        name: str | None = None
        account_id: str | None = None
        test_account: bool | None = None

        r = await self._probe("get_accounts", "GET", "/api/accounts")
        granted["accounts:read"] = r.status_code == 200
        if r.status_code == 200:
            items = data_items(self._document(r, "get_accounts"))
            if items:
                name, account_id = account_name(items[0]), items[0].get("id") or None
                flag = as_dict(items[0].get("attributes")).get("test_account")
                test_account = flag if isinstance(flag, bool) else None

        r = await self._probe("get_lists", "GET", "/api/lists", params={"page[size]": "1"})
        granted["lists:read"] = r.status_code != 403

        r = await self._probe(
            "get_bulk_import_profiles_jobs", "GET", JOBS, params={"page[size]": "1"}
        )
        if r.status_code != 403:
            granted["profiles:read"] = True
        elif granted["lists:read"]:
            granted["profiles:read"] = False
        else:  # both unknown from that probe; import errors need profiles:read alone
            r = await self._probe(
                "get_errors_for_bulk_import_profiles_job",
                "GET",
                f"{JOBS}/{_PROBE_ID}/import-errors",
            )
            granted["profiles:read"] = r.status_code != 403

        r = await self._probe("create_list", "POST", "/api/lists", body=b"{}")
        granted["lists:write"] = r.status_code != 403
        r = await self._probe("bulk_import_profiles", "POST", JOBS, body=b"{}")
        # 403 there means lists:write or profiles:write is missing; we can only pin it when
        # lists:write is known to be present. Otherwise profiles:write stays unconfirmed (False).
        granted["profiles:write"] = r.status_code != 403
        self._granted = dict(granted)
        return KeyCheck(
            account_name=name,
            account_id=str(account_id) if account_id else None,
            granted=granted,
            test_account=test_account,
            missing=missing_scopes(granted),
        )

    # ---- lists ---------------------------------------------------------------------------------

    async def lists(self, name: str | None = None) -> list[KlaviyoList]:
        """Every list (all pages), or those named exactly `name`."""
        params: dict[str, str] | None = None
        if name is not None:
            quoted = quote_filter(name)
            if quoted is not None:
                params = {"filter": f"equals(name,{quoted})"}
        found = [parse_list(item) async for item in self._pages("get_lists", "/api/lists", params)]
        return found if name is None else [lst for lst in found if lst.name == name]

    async def search_lists(self, text: str) -> list[KlaviyoList]:
        """Lists whose name contains `text`, case-insensitive (Klaviyo has no `contains` filter)."""
        needle = text.casefold().strip()
        return [lst for lst in await self.lists() if needle in lst.name.casefold()]

    async def get_list(self, list_id: str) -> KlaviyoList:
        check_id(list_id, "list")
        response = await self._send(
            "get_list",
            "GET",
            f"/api/lists/{list_id}",
            not_found=f"list {list_id} does not exist in this account.",
        )
        items = data_items(self._document(response, "get_list"))
        if not items:
            raise NotFoundError(f"list {list_id} does not exist in this account.")
        return parse_list(items[0])

    async def list_with_count(self, list_id: str) -> tuple[KlaviyoList, int | None]:
        """The list and its member count (`additional-fields[list]=profile_count`, which has a
        stricter rate limit than a plain read); None when the answer has no count."""
        check_id(list_id, "list")
        response = await self._send(
            "get_list",
            "GET",
            f"/api/lists/{list_id}",
            params={"additional-fields[list]": "profile_count"},
            not_found=f"list {list_id} does not exist in this account.",
        )
        items = data_items(self._document(response, "get_list"))
        if not items:
            raise NotFoundError(f"list {list_id} does not exist in this account.")
        count = as_dict(items[0].get("attributes")).get("profile_count")
        valid = isinstance(count, int) and not isinstance(count, bool) and count >= 0
        return parse_list(items[0]), count if valid else None

    async def create_list(self, name: str) -> KlaviyoList:
        """POST /api/lists. After an ambiguous failure, look the name up before posting again."""
        if not name or not name.strip():
            raise InvalidConfiguration("A Klaviyo list needs a name.")
        body = orjson.dumps({"data": {"type": "list", "attributes": {"name": name}}})
        recovered: list[KlaviyoList] = []

        async def already_created() -> bool:
            recovered.extend(await self.lists(name))
            return bool(recovered)

        try:
            response = await self._send(
                "create_list",
                "POST",
                "/api/lists",
                body=body,
                before_retry=already_created,
            )
        except Settled:
            return recovered[0]
        items = data_items(self._document(response, "create_list"))
        if not items or not items[0].get("id"):
            raise UnexpectedResponse("Klaviyo said the list was created but sent no list id.")
        return parse_list(items[0])

    async def find_or_create_list(self, name: str) -> tuple[KlaviyoList, bool]:
        """Reuse a list with this exact name (creation is capped at 150 a day); else create it."""
        existing = await self.lists(name)
        if existing:
            return existing[0], False
        return await self.create_list(name), True

    # ---- bulk import jobs ----------------------------------------------------------------------

    async def submit_import(self, body: bytes) -> ImportJob:
        """POST a serialized ProfileImportJobCreateQuery as is; a 400 raises RequestRejected.

        After an ambiguous failure (timeout, reset, 5xx) the POST is simply sent again: a bulk
        import is an idempotent upsert, so a duplicate job changes nothing; we confirm the job
        whose id we got.
        """
        response = await self._send("bulk_import_profiles", "POST", JOBS, body=body)
        items = data_items(self._document(response, "bulk_import_profiles"))
        if not items or not items[0].get("id"):
            raise UnexpectedResponse(
                "Klaviyo accepted the import batch but sent no job id, so it cannot be confirmed; "
                "the batch will be treated as not sent."
            )
        return parse_job(items[0])

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
        """Every per-profile error of a job (all pages, 100 per page)."""
        check_id(job_id, "import job")
        return [
            parse_import_error(item)
            async for item in self._pages(
                "get_errors_for_bulk_import_profiles_job",
                f"{JOBS}/{job_id}/import-errors",
                {"page[size]": "100"},
                not_found=f"import job {job_id} does not exist in this account.",
            )
        ]
