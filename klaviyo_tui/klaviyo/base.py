"""The plumbing under KlaviyoClient: one shared httpx client, error mapping, paging.

One shared httpx.AsyncClient per KlaviyoClient (connection reuse); every request carries the key,
the revision and JSON:API media types, connect and read timeouts, client-side pacing and retries
(transport.py). Responses are parsed leniently (models.py); failures become typed errors.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import httpx

from klaviyo_tui.events import ProgressEvent
from klaviyo_tui.klaviyo.exceptions import (
    KEY_HELP_URL,
    ApiErrorDetail,
    AuthError,
    InvalidConfiguration,
    NotFoundError,
    RequestRejected,
    ScopeError,
    UnexpectedResponse,
    scopes_hint,
)
from klaviyo_tui.klaviyo.models import data_items, next_link, parse_errors
from klaviyo_tui.klaviyo.pacing import OPERATIONS, Operation
from klaviyo_tui.klaviyo.submissions import SubmissionLedger
from klaviyo_tui.klaviyo.transport import (
    DEFAULT_RATE_LIMIT_BUDGET_S,
    Requester,
    check_base_url,
    is_json,
    parse_json,
)
from klaviyo_tui.redaction import mask_key

DEFAULT_REVISION = "2026-07-15"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MEDIA_TYPE = "application/vnd.api+json"
JOBS = "/api/profile-bulk-import-jobs"
SUBSCRIBE_JOBS = "/api/profile-subscription-bulk-create-jobs"
_REVISION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9]+)?$")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_id(value: str, kind: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        hint = None
        if kind == "list":  # typed, or in an export: either way the ids come from here
            hint = (
                "`klaviyo-tui lists` shows the account's lists and their ids; `klaviyo-tui "
                "exports edit NAME --set list_id=ID` sets an export's."
            )
        raise InvalidConfiguration(
            f"{value!r} is not a valid Klaviyo {kind} id (expected letters and digits, "
            "e.g. Y6nRLr).",
            hint=hint,
        )
    return value


def quote_filter(value: str) -> str | None:
    """A filter string literal, or None when it cannot be quoted safely (then filter here).

    Klaviyo's filter strings have no escapes: a value with a backslash, both quote kinds or a
    control character cannot be written as one literal."""
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return None


class ClientBase:
    """Connection, headers, error mapping and paging shared by every KlaviyoClient operation."""

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
        rate_limit_budget: float = DEFAULT_RATE_LIMIT_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
            rate_limit_budget=rate_limit_budget,
            clock=clock,
            sleep=sleep,
        )
        self._granted: dict[str, bool] = {}
        self._ledger = SubmissionLedger()  # import submissions: jobs claimed, ones unresolved

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

    def _scrub_value(self, value: Any) -> Any:
        """`_scrub` through a JSON value (an import error's original_payload can echo the key)."""
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, dict):
            return {self._scrub(str(k)): self._scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub_value(v) for v in value]
        return value

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
        if status == 401:
            raise AuthError(
                f"Klaviyo rejected the API key ({self.masked_key}): check it or create a new "
                f"private key at {KEY_HELP_URL}."
            )
        revision = self._revision_error(status, errors)
        if revision is not None:
            raise revision
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
        if 400 <= status < 500:
            scrubbed = tuple(
                type(e)(
                    e.status,
                    self._scrub(e.code),
                    self._scrub(e.title),
                    self._scrub(e.detail),
                    e.pointer,
                    e.parameter,
                )
                for e in errors
            )
            raise RequestRejected(self._rejection_text(op, status, scrubbed), scrubbed, status)
        raise UnexpectedResponse(
            f"Klaviyo answered HTTP {status} while {op.what}; this was not expected."
        )

    def _revision_error(
        self, status: int, errors: tuple[ApiErrorDetail, ...]
    ) -> InvalidConfiguration | None:
        """A 4xx about the `revision` header (malformed 400, future date or endpoint missing in
        that revision 404, retired 410), as a configuration error naming what to set."""
        if not 400 <= status < 500 or status in (401, 429):
            return None
        about = [
            e
            for e in errors
            if e.parameter == "revision" or "revision" in (e.detail + e.title).lower()
        ]
        if not about and status != 410:
            return None
        said = self._scrub(about[0].detail or about[0].title) if about else "HTTP 410 Gone"
        retired = " (it may be retired)" if status == 410 else ""
        return InvalidConfiguration(
            f"Klaviyo does not accept the API revision {self.revision!r}{retired}: {said}. Set "
            f"the connection's revision to a current released one such as {DEFAULT_REVISION}.",
            hint="Edit the connection's revision (a YYYY-MM-DD date Klaviyo has released).",
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
    ) -> AsyncGenerator[dict[str, Any], None]:
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

    async def _probe(
        self,
        op_name: str,
        method: str,
        path: str,
        *,
        granted: frozenset[int],
        unknown: frozenset[int] = frozenset(),
        params: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[bool, httpx.Response]:
        """A scope probe: (True, r) when the status is one of `granted`, (False, r) on 403 or
        on a status in `unknown` (for optional scopes: "cannot tell" reads as not granted).

        Anything else (401, a revision error, a 404 from the wrong server, 5xx, a redirect) is
        never read as "granted": it raises the typed error it maps to, or UnexpectedResponse.
        """
        op = OPERATIONS[op_name]
        response = await self._req.send(op, method, path, params=params, content=body)
        status = response.status_code
        if status == 401 or status >= 500:
            self._raise_for(response, op, None)
        if status in unknown:
            return False, response
        errors = parse_errors(parse_json(response)) if is_json(response) else ()
        revision = self._revision_error(status, errors)
        if revision is not None:
            raise revision
        if status in granted:
            return True, response
        if status == 403:
            return False, response
        raise UnexpectedResponse(
            f"Klaviyo answered HTTP {status} while checking the key ({op.what}), which says "
            f"nothing about its permissions; check that the base URL {self.base_url} is "
            "Klaviyo's API and that the revision is current."
        )
