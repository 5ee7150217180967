"""The async Klaviyo client: key check, lists, bulk import jobs and their errors.

One shared httpx.AsyncClient per KlaviyoClient (connection reuse); every request carries the key,
the revision and JSON:API media types, connect and read timeouts, client-side pacing and retries
(transport.py). Responses are parsed leniently (models.py); failures become typed errors.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable, Collection
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from klaviyo_tui.klaviyo.errors import (
    KEY_HELP_URL,
    AuthError,
    InvalidConfiguration,
    NotFoundError,
    RequestRejected,
    ScopeError,
    UnexpectedResponse,
    scopes_hint,
)
from klaviyo_tui.klaviyo.models import (
    ImportErrorItem,
    ImportJob,
    KeyCheck,
    KlaviyoList,
    account_name,
    as_dict,
    data_items,
    missing_scopes,
    next_link,
    parse_errors,
    parse_import_error,
    parse_job,
    parse_list,
)
from klaviyo_tui.klaviyo.pacing import OPERATIONS, Operation
from klaviyo_tui.klaviyo.transport import (
    Requester,
    Settled,
    check_base_url,
    is_json,
    mask_key,
    parse_json,
)
from klaviyo_tui.model import ProgressEvent

DEFAULT_REVISION = "2026-07-15"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MEDIA_TYPE = "application/vnd.api+json"
JOBS = "/api/profile-bulk-import-jobs"
_REVISION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9]+)?$")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PROBE_ID = "00000000000000000000000000"  # a job id that cannot exist


def _check_id(value: str, kind: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidConfiguration(
            f"{value!r} is not a valid Klaviyo {kind} id (expected letters and digits, "
            "e.g. Y6nRLr)."
        )
    return value


def _quote_filter(value: str) -> str | None:
    """A filter string literal, or None when it cannot be quoted safely (then filter here)."""
    if "\\" in value:
        return None
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return None


class KlaviyoClient:
    """Async context manager; use `async with KlaviyoClient(url, key) as k: await k.lists()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        revision: str = DEFAULT_REVISION,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_event: Callable[[ProgressEvent], None] | None = None,
        max_retries: int = 6,
        max_concurrency: int = 16,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        seed: int | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        key = (api_key or "").strip()
        if not key or any(c.isspace() or not c.isprintable() for c in key):
            raise AuthError(
                "The Klaviyo API key is empty or contains spaces or line breaks; paste the private "
                f"key (pk_…) again, or create one at {KEY_HELP_URL}."
            )
        if not _REVISION_RE.match(revision or ""):
            raise InvalidConfiguration(
                f"The API revision {revision!r} is not in Klaviyo's YYYY-MM-DD form "
                f"(e.g. {DEFAULT_REVISION})."
            )
        self.revision = revision
        self._key = key
        self.masked_key = mask_key(key)
        given = timeout or DEFAULT_TIMEOUT
        self.timeout = httpx.Timeout(
            connect=given.connect if given.connect is not None else DEFAULT_TIMEOUT.connect,
            read=given.read if given.read is not None else DEFAULT_TIMEOUT.read,
            write=given.write if given.write is not None else DEFAULT_TIMEOUT.write,
            pool=given.pool if given.pool is not None else DEFAULT_TIMEOUT.pool,
        )
        self._on_event = on_event
        # TLS verification is always on; `transport` exists for tests (MockTransport, ASGI).
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "Authorization": f"Klaviyo-API-Key {key}",
                "revision": revision,
                "Accept": MEDIA_TYPE,
                "User-Agent": "klaviyo-tui",
            },
            timeout=self.timeout,
            transport=transport,
            verify=True,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max(1, max_concurrency)),
        )
        self._req = Requester(
            self._http,
            timeout=self.timeout,
            emit=self._emit,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            rng=random.Random(seed),
        )
        self._granted: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (
            f"KlaviyoClient(base_url={self.base_url!r}, key={self.masked_key!r}, "
            f"revision={self.revision!r})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _emit(self, event: ProgressEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, self.masked_key) if self._key in text else text

    # ---- plumbing ------------------------------------------------------------------------------

    async def _send(
        self,
        op_name: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        not_found: str | None = None,
        before_retry: Callable[[], Any] | None = None,
    ) -> httpx.Response:
        op = OPERATIONS[op_name]
        response = await self._req.send(
            op, method, path, params=params, content=body, before_retry=before_retry
        )
        self._raise_for(response, op, not_found)
        return response

    def _raise_for(self, response: httpx.Response, op: Operation, not_found: str | None) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        errors = parse_errors(parse_json(response)) if is_json(response) else ()
        first = errors[0] if errors else None
        said = self._scrub(first.detail or first.title) if first else ""
        if status == 401:
            raise AuthError(
                f"Klaviyo rejected the API key ({self.masked_key}): check it or create a new "
                f"private key at {KEY_HELP_URL}."
            )
        if status == 403:
            needed = tuple(s for s in op.scopes if not self._granted.get(s, False)) or op.scopes
            plural = "scope" if len(needed) == 1 else "scopes"
            raise ScopeError(
                f"Klaviyo refused {op.what}: this key lacks the {plural} {', '.join(needed)}; "
                f"{scopes_hint()}.",
                missing=needed,
            )
        if status == 404:
            raise NotFoundError(not_found or f"Klaviyo found nothing at {response.url.path}.")
        if status == 400 and any(
            e.parameter == "revision" or "revision" in (e.detail + e.title).lower() for e in errors
        ):
            raise InvalidConfiguration(
                f"Klaviyo does not accept the API revision {self.revision!r} ({said}); set the "
                f"connection's revision to a current one such as {DEFAULT_REVISION}."
            )
        if 400 <= status < 500:
            scrubbed = tuple(
                type(e)(e.status, e.code, e.title, self._scrub(e.detail), e.pointer, e.parameter)
                for e in errors
            )
            raise RequestRejected(self._rejection_text(op, status, scrubbed), scrubbed, status)
        raise UnexpectedResponse(
            f"Klaviyo answered HTTP {status} while {op.what}; this was not expected."
        )

    @staticmethod
    def _rejection_text(op: Operation, status: int, errors: tuple[Any, ...]) -> str:
        parts = []
        for e in errors[:3]:
            where = e.pointer or (f"parameter {e.parameter}" if e.parameter else "")
            parts.append(f"{e.detail or e.title or e.code}" + (f" ({where})" if where else ""))
        more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
        why = "; ".join(parts) + more if parts else "no details given"
        return f"Klaviyo rejected the request while {op.what} (HTTP {status}): {why}."

    def _document(self, response: httpx.Response, op_name: str) -> dict[str, Any]:
        doc = parse_json(response)
        if not isinstance(doc, dict):
            raise UnexpectedResponse(
                f"Klaviyo's answer while {OPERATIONS[op_name].what} was not a JSON document."
            )
        return doc

    def _next_path(self, link: str) -> str:
        """Follow `links.next` on our own origin only, so the key never goes to another host."""
        url = httpx.URL(link)
        query = url.query.decode("ascii")
        return url.path + (f"?{query}" if query else "")

    async def _pages(
        self, op_name: str, path: str, params: dict[str, str] | None, not_found: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        response = await self._send(op_name, "GET", path, params=params, not_found=not_found)
        while True:
            doc = self._document(response, op_name)
            for item in data_items(doc):
                yield item
            link = next_link(doc)
            if link is None:
                return
            response = await self._send(op_name, "GET", self._next_path(link), not_found=not_found)

    # ---- key check -----------------------------------------------------------------------------

    async def _probe(self, op_name: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """A request whose 403 (scope missing) or other 4xx (scope granted) is an answer."""
        op = OPERATIONS[op_name]
        body = kw.pop("body", None)
        response = await self._req.send(op, method, path, content=body, **kw)
        status = response.status_code
        if status == 401 or status >= 500 or (300 <= status < 400):
            self._raise_for(response, op, None)
        return response

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
            quoted = _quote_filter(name)
            if quoted is not None:
                params = {"filter": f"equals(name,{quoted})"}
        found = [parse_list(item) async for item in self._pages("get_lists", "/api/lists", params)]
        return found if name is None else [lst for lst in found if lst.name == name]

    async def search_lists(self, text: str) -> list[KlaviyoList]:
        """Lists whose name contains `text`, case-insensitive (Klaviyo has no `contains` filter)."""
        needle = text.casefold().strip()
        return [lst for lst in await self.lists() if needle in lst.name.casefold()]

    async def get_list(self, list_id: str) -> KlaviyoList:
        _check_id(list_id, "list")
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
        """POST a serialized ProfileImportJobCreateQuery as is; a 400 raises RequestRejected."""
        response = await self._send("bulk_import_profiles", "POST", JOBS, body=body)
        items = data_items(self._document(response, "bulk_import_profiles"))
        if not items or not items[0].get("id"):
            raise UnexpectedResponse(
                "Klaviyo accepted the import batch but sent no job id, so it cannot be confirmed; "
                "the batch will be treated as not sent."
            )
        return parse_job(items[0])

    async def get_job(self, job_id: str) -> ImportJob:
        _check_id(job_id, "import job")
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
        """Current state of each job, in few calls: one listing of running jobs, then a GET for
        each job that is no longer running (for its final counts). One or two ids: just GET them."""
        ids = list(dict.fromkeys(job_ids))
        for job_id in ids:
            _check_id(job_id, "import job")
        result: dict[str, ImportJob] = {}
        if len(ids) > 2:
            wanted = set(ids)
            for job in await self.running_jobs():
                if job.id in wanted and job.running:
                    result[job.id] = job
        rest = [i for i in ids if i not in result]
        for job_id, job in zip(
            rest, await asyncio.gather(*(self.get_job(i) for i in rest)), strict=True
        ):
            result[job_id] = job
        return {i: result[i] for i in ids if i in result}

    async def import_errors(self, job_id: str) -> list[ImportErrorItem]:
        """Every per-profile error of a job (all pages, 100 per page)."""
        _check_id(job_id, "import job")
        return [
            parse_import_error(item)
            async for item in self._pages(
                "get_errors_for_bulk_import_profiles_job",
                f"{JOBS}/{job_id}/import-errors",
                {"page[size]": "100"},
                not_found=f"import job {job_id} does not exist in this account.",
            )
        ]
