"""What every handler gets (Ctx) and the small helpers they share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from .error_responses import invalid, json_response, not_found
from .fastpath import gc_paused
from .faults import FaultInjector
from .limits import RateLimiter
from .operations import Operation
from .query import decode_cursor
from .settings import SandboxSettings
from .store import ListRec, Store


@dataclass
class Ctx:
    op: Operation
    path: str
    path_params: dict[str, str]
    query: dict[str, str]
    body: bytes
    base: str
    now: float
    store: Store
    limiter: RateLimiter
    faults: FaultInjector
    headers: dict[str, str]  # rate-limit headers to send on success
    settings: SandboxSettings


Handler = Callable[[Ctx], Awaitable[Response]]


def allow_params(ctx: Ctx, allowed: Iterable[str]) -> None:
    """Stricter than needed: an unknown query parameter is a 400, so client typos surface."""
    allowed_set = set(allowed)
    for name in ctx.query:
        if name not in allowed_set and not name.startswith("fields["):
            raise invalid(f"'{name}' is not a valid query parameter here.", parameter=name)


def json_body(ctx: Ctx) -> Any:
    """The parsed body, with the cyclic GC paused (fastpath.gc_paused: parsing a job's body
    allocates tens of thousands of dicts)."""
    try:
        with gc_paused():
            return orjson.loads(ctx.body)
    except orjson.JSONDecodeError:
        raise invalid("The request body is not valid JSON.", pointer="/data") from None


def ok(ctx: Ctx, body: Any, status: int = 200) -> Response:
    return json_response(body, status, ctx.headers)


def no_content(ctx: Ctx) -> Response:
    return Response(status_code=204, headers=ctx.headers)


def get_list_rec(ctx: Ctx) -> ListRec:
    rec = ctx.store.lists.get(ctx.path_params["id"])
    if rec is None:
        raise not_found(f"A list with id {ctx.path_params['id']} does not exist.")
    return rec


def page(items: list[Any], ctx: Ctx, size: int) -> tuple[list[Any], int | None]:
    start = decode_cursor(ctx.query)
    chunk = items[start : start + size]
    return chunk, (start + size if start + size < len(items) else None)
