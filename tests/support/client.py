"""Shared helpers for the client's MockTransport tests: canned Klaviyo answers, a recording
transport, a fake clock, and a client wired to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from klaviyo_tui.klaviyo import KlaviyoClient

KEY = "pk_abcdefghijklmnopqrstuvwxyz0123456789"
BASE = "https://a.klaviyo.com"
JSONAPI = "application/vnd.api+json"

Handler = Callable[[httpx.Request], httpx.Response]


def doc(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": JSONAPI, **(headers or {})}
    )


def err(status: int, detail: str, **source: str) -> httpx.Response:
    return doc(
        {
            "errors": [
                {"id": "x", "status": str(status), "code": "c", "title": "t", "detail": detail}
                | ({"source": source} if source else {})
            ]
        },
        status,
    )


def list_obj(i: str, name: str) -> dict[str, Any]:
    return {
        "type": "list",
        "id": i,
        "attributes": {"name": name, "created": "2026-05-01T10:00:00Z", "updated": None},
    }


def job_obj(i: str, status: str = "queued", **attrs: Any) -> dict[str, Any]:
    return {
        "type": "profile-bulk-import-job",
        "id": i,
        "attributes": {"status": status, "created_at": "2026-07-20T14:03:11.512000+00:00"} | attrs,
    }


class Recorder:
    """A MockTransport that records requests and answers from a handler (or a queue of answers)."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def queue(*answers: httpx.Response | Exception) -> Handler:
    items = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def make(rec: Recorder, events: list[Any] | None = None, **kw: Any) -> KlaviyoClient:
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("max_retries", 3)
    return KlaviyoClient(
        BASE,
        KEY,
        transport=rec.transport,
        on_event=(events.append if events is not None else None),
        seed=1,
        **kw,
    )


class FakeClock:
    """A monotonic clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def throttled(seconds: float | str | None) -> httpx.Response:
    """Klaviyo's 429: `throttled`, with Retry-After when given (live: integer seconds)."""
    r = err(429, f"Request was throttled. Expected available in {seconds} seconds.")
    if seconds is not None:
        r.headers["Retry-After"] = str(seconds)
    return r
