"""The ASGI application: request pipeline in front of the handlers.

Order for every request under /api: pending jobs are advanced; a fault may be injected
(before anything takes effect, except 524, which answers after the request took effect); the
path is matched (404 unknown path, 405 wrong method); then 401 (missing or unknown key) ->
revision (400 malformed or too early, 404 future or before the endpoint existed, 410 retired;
revisions.py) -> 403 scope -> 429 rate limit -> 415 content type / encoding -> 413 body over
5 MB -> the handler (body validation, 400).
Because the scope check comes before body validation, a client can probe a write scope by
sending an empty body: 403 means the scope is missing, 400 means it is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from . import faults as faultmod
from .bulk import MAX_BODY_BYTES
from .error_responses import ApiError, error_response
from .handlers import HANDLERS, Ctx
from .limits import RateLimiter
from .operations import OPERATIONS, match
from .revisions import resolve
from .settings import SandboxSettings
from .store import Store

_BODY_TYPES = ("application/vnd.api+json", "application/json")
_AUTH_PREFIX = "Klaviyo-API-Key "


class SandboxApp:
    """One sandbox account behind an ASGI callable (uvicorn serves it)."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.keys = settings.effective_keys
        self.store = Store(settings.account_name, settings.seed, settings.job_delay)
        self.faults = faultmod.FaultInjector(settings.faults, settings.seed)
        self.limiter = RateLimiter(settings.rate_limits, self.faults.quota_share)
        self.transports: dict[Any, Any] = {}  # client address -> transport (for reset faults)
        self.stopping: asyncio.Event | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        if response is not None:
            await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.stopping = asyncio.Event()
                self._ticker = asyncio.create_task(self._tick_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._ticker is not None:
                    self._ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._ticker
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _tick_forever(self) -> None:
        """Complete due jobs even when nobody is polling (keeps the store current)."""
        while True:
            self.store.tick()
            await asyncio.sleep(0.05)

    def revoke_key(self, key: str) -> None:
        """Test hook (in-process only, no HTTP route): the key is rejected with 401 from now on,
        like a key deleted in Klaviyo's settings while a run uses it."""
        self.keys.pop(key, None)

    def stop_hanging(self) -> None:
        """Release hung requests (call on the server's loop before shutdown)."""
        if self.stopping is not None:
            self.stopping.set()

    async def handle(self, request: Request) -> Response | None:
        path = request.url.path
        if not path.startswith("/api/"):
            return error_response(
                ApiError(404, "not_found", "Not found.", f"No resource at {path}.")
            )
        now = time.time()
        self.store.tick(now)
        kind = self.faults.draw()
        if kind == "524":  # Cloudflare gave up waiting, but the origin did the work
            with contextlib.suppress(ApiError):
                await self._dispatch(request, path, now)
            return faultmod.fault_response(kind)
        if kind is not None:
            injected = await self._inject(kind, request)
            if injected is not None or kind in ("reset", "hang"):
                return injected
        try:
            return await self._dispatch(request, path, now)
        except ApiError as err:
            return error_response(err)

    async def _inject(self, kind: str, request: Request) -> Response | None:
        if kind == "reset":
            if faultmod.reset_connection(self.transports.get(request.scope.get("client"))):
                await asyncio.sleep(0)  # let the transport report the lost connection
                return None
            return faultmod.fault_response("503")
        if kind == "hang":
            if self.stopping is not None:
                await faultmod.hang(self.stopping)
            faultmod.reset_connection(self.transports.get(request.scope.get("client")))
            await asyncio.sleep(0)
            return None
        return faultmod.fault_response(kind)

    async def _dispatch(self, request: Request, path: str, now: float) -> Response:
        method = request.method
        op, params, exists = match(method, path)
        if op is None:
            if exists:
                allowed = sorted({o.method for o in OPERATIONS if match(o.method, path)[0]})
                raise ApiError(
                    405,
                    "method_not_allowed",
                    "Method not allowed.",
                    f"Method {method} is not allowed on {path}.",
                    headers={"Allow": ", ".join(allowed)},
                )
            raise ApiError(404, "not_found", "Not found.", f"No resource at {path}.")
        scopes = self._authenticate(request)
        resolve(request.headers.get("revision"), op.operation_id)
        missing = op.scopes - scopes
        if missing:
            raise ApiError(
                403,
                "permission_denied",
                "You do not have permission to perform this action.",
                f"This API key is missing the required scope(s): {', '.join(sorted(missing))}.",
            )
        headers = self.limiter.check(op, now)
        body = b""
        if method in ("POST", "PATCH") or (method == "DELETE" and "relationships" in op.path):
            body = await self._read_body(request)
        ctx = Ctx(
            op,
            path.rstrip("/") or path,
            params,
            dict(request.query_params),
            body,
            str(request.base_url).rstrip("/"),
            now,
            self.store,
            self.limiter,
            self.faults,
            headers,
            self.settings,
        )
        return await HANDLERS[op.operation_id](ctx)

    def _authenticate(self, request: Request) -> frozenset[str]:
        header = request.headers.get("authorization")
        if header is None or not header.startswith(_AUTH_PREFIX):
            raise ApiError(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Send 'Authorization: Klaviyo-API-Key <private key>'.",
            )
        scopes = self.keys.get(header[len(_AUTH_PREFIX) :].strip())
        if scopes is None:
            raise ApiError(
                401,
                "authentication_failed",
                "Incorrect authentication credentials.",
                "The API key is not valid for this account.",
            )
        return scopes

    async def _read_body(self, request: Request) -> bytes:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in _BODY_TYPES:
            raise ApiError(
                415,
                "unsupported_media_type",
                "Unsupported media type.",
                f"Content-Type '{ctype or 'none'}' is not supported; "
                "send application/vnd.api+json.",
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise ApiError(
                415,
                "unsupported_media_type",
                "Unsupported media type.",
                f"Content-Encoding '{encoding}' is not supported by the sandbox.",
            )
        too_big = ApiError(
            413,
            "payload_too_large",
            "Payload too large.",
            f"The request body is larger than {MAX_BODY_BYTES} bytes (5 MB).",
        )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)
