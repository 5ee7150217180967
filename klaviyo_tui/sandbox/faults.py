"""Seeded fault injection, so a client's retry and recovery paths can be rehearsed.

One draw per /api request (before auth and before the request takes effect): 429, retry0
(429 with `Retry-After: 0`), 500, 502, 503, reset (the TCP connection is dropped with an RST,
no response), hang (no response until the server stops), cf403 (a Cloudflare-style HTML
challenge). The exception is 524 (a Cloudflare origin timeout): the request is served and takes
effect, then its answer is replaced by Cloudflare's HTML 524 page. One draw per accepted bulk
import job: stuck (the job applies its rows but reports `processing` forever) or badstatus (it
applies nothing and reports `failed`, a status outside the spec's enum). `quota` is not drawn:
it is the share of every rate window another integration uses (limits.py). `rowfail`
picks profiles by a seeded hash of their identity (email, else phone, else external id), so
the same profile fails in every job, like a row Klaviyo cannot take: a batch sent twice (a
client resending after a crash) gets the same verdict both times. The same seed and the same
sequence of requests give the same faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import struct
from typing import Any

from starlette.responses import HTMLResponse, Response

from .error_responses import ApiError, error_response
from .limits import throttled
from .settings import JOB_FAULTS, REQUEST_FAULTS

CF_HTML = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    "<body><h1>Checking your browser before accessing a.klaviyo.com.</h1></body></html>"
)
CF_524_HTML = (
    "<!DOCTYPE html><html><head><title>a.klaviyo.com | 524: A timeout occurred</title></head>"
    "<body><h1>A timeout occurred</h1><p>Error code 524</p><p>The origin web server timed out "
    "responding to this request.</p></body></html>"
)


class FaultInjector:
    def __init__(self, faults: dict[str, float], seed: int) -> None:
        self.request_faults = [(k, faults[k]) for k in REQUEST_FAULTS if faults.get(k)]
        self.job_faults = [(k, faults[k]) for k in JOB_FAULTS if faults.get(k)]
        self.rowfail = faults.get("rowfail", 0.0)
        self.quota_share = faults.get("quota", 0.0)
        self._rng = random.Random(f"faults-{seed}")
        self._job_rng = random.Random(f"job-faults-{seed}")
        self._row_salt = f"rowfail-{seed}".encode()

    def draw(self) -> str | None:
        """The fault for this request, if any."""
        if not self.request_faults:
            return None
        u = self._rng.random()
        acc = 0.0
        for kind, prob in self.request_faults:
            acc += prob
            if u < acc:
                return kind
        return None

    def draw_job(self) -> str | None:
        """The fault for a newly accepted bulk import job, if any (stuck or badstatus)."""
        if not self.job_faults:
            return None
        u = self._job_rng.random()
        acc = 0.0
        for kind, prob in self.job_faults:
            acc += prob
            if u < acc:
                return kind
        return None

    def failing_rows(self, profiles: list[Any]) -> frozenset[int]:
        """Indexes of the profiles that fail: the same identity always gets the same verdict."""
        if not self.rowfail:
            return frozenset()
        threshold = int(self.rowfail * 2**64)
        salt = self._row_salt
        failing = []
        for i, resource in enumerate(profiles):
            attrs = resource.get("attributes") if isinstance(resource, dict) else None
            attrs = attrs if isinstance(attrs, dict) else {}
            ident = attrs.get("email") or attrs.get("phone_number") or attrs.get("external_id")
            digest = hashlib.blake2b(
                salt + str(ident or i).strip().lower().encode(), digest_size=8
            ).digest()
            if int.from_bytes(digest, "big") < threshold:
                failing.append(i)
        return frozenset(failing)


def fault_response(kind: str) -> Response | None:
    """The canned response for a status-code fault (None for reset and hang)."""
    if kind == "429":
        return error_response(throttled(1))
    if kind == "retry0":
        return error_response(throttled(0, minimum=0))
    if kind == "524":
        return HTMLResponse(CF_524_HTML, status_code=524)
    if kind == "cf403":
        return HTMLResponse(CF_HTML, status_code=403, headers={"cf-mitigated": "challenge"})
    if kind in ("500", "502", "503"):
        titles = {
            "500": "Internal server error.",
            "502": "Bad gateway.",
            "503": "Service unavailable.",
        }
        return error_response(
            ApiError(
                int(kind), "error", titles[kind], "Injected sandbox fault: please retry later."
            )
        )
    return None


def reset_connection(transport: Any) -> bool:
    """Drop the client's connection with a TCP RST; False when the transport is unknown."""
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


async def hang(stopping: asyncio.Event) -> None:
    """Never answer, until the server shuts down (then the caller drops the connection)."""
    await stopping.wait()
