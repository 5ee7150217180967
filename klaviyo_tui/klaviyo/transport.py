"""One HTTP exchange with retries: pacing, timeouts, backoff with jitter, and error classification.

Retried: 429 (after Retry-After), 500/502/503/504, timeouts, connection errors and resets, and a 403
whose body is not JSON (Cloudflare's bot challenge, `cf-mitigated: challenge`). Never retried: any
other 4xx. Every retry and every wait of ~0.2 s or more is reported as a progress event.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from klaviyo_tui.events import ProgressEvent, Retrying, Waiting
from klaviyo_tui.klaviyo.exceptions import InvalidBaseURL, UnavailableError, UnexpectedResponse
from klaviyo_tui.klaviyo.pacing import Operation, Pacer
from klaviyo_tui.klaviyo.urls import UnsafeBaseURL, normalise_base_url

RETRY_STATUSES = frozenset({500, 502, 503, 504})
_STATUS_WORDS = {
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
WAIT_EVENT_MIN_S = 0.2
MAX_RETRY_AFTER_S = 120.0  # longer asks (daily caps) end the call instead of stalling the run
_BODY_HEADERS = {"Content-Type": "application/vnd.api+json"}
JSON_TYPES = ("application/vnd.api+json", "application/json")


def check_base_url(base_url: str) -> str:
    """Return the normalised base URL, or raise InvalidBaseURL saying what is wrong."""
    try:
        return normalise_base_url(base_url)
    except UnsafeBaseURL as problem:
        raise InvalidBaseURL(str(problem)) from None


def is_json(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype in JSON_TYPES or ctype.endswith("+json")


def parse_json(response: httpx.Response) -> Any:
    """The body as JSON, or None when it is empty or not JSON."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: rare; fall back to backoff
    return max(seconds, 0.0)


def _human_seconds(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"


def _transport_reason(exc: httpx.TransportError, timeout: httpx.Timeout) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect to Klaviyo within {timeout.connect:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"Klaviyo did not answer within {timeout.read:g} s (read timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return "sending the request to Klaviyo timed out"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection to Klaviyo in time"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to Klaviyo"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "the connection to Klaviyo was reset"
    return f"network error talking to Klaviyo ({type(exc).__name__})"


class Settled(Exception):  # noqa: N818 - control flow, never escapes the client
    """A retry hook found the effect of an earlier attempt (e.g. the list was created after all)."""


class Requester:
    """Sends through one shared httpx.AsyncClient with pacing, a concurrency cap and retries."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout: httpx.Timeout,
        emit: Callable[[ProgressEvent], None],
        max_retries: int,
        max_concurrency: int,
        backoff_base: float,
        backoff_cap: float,
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.timeout = timeout
        self.emit = emit
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rng = rng or random.Random()
        self.semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self.pacer = Pacer(on_wait=self._on_pacer_wait)

    def _on_pacer_wait(self, seconds: float, reason: str) -> None:
        if seconds >= WAIT_EVENT_MIN_S:
            self.emit(Waiting(seconds=round(seconds, 2), reason=reason))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2^(attempt-1), capped, times 0.5..1.0."""
        raw = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return raw * (0.5 + self.rng.random() / 2)

    async def send(
        self,
        op: Operation,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        before_retry: Callable[[], Awaitable[bool]] | None = None,
    ) -> httpx.Response:
        """Send until a non-retryable answer arrives; raise UnavailableError when retries run out.

        `before_retry` runs before re-sending after an answer that may mean the request was
        processed (timeouts, resets, 5xx); when it returns True the call is settled: raises Settled.
        """
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            ambiguous = True
            try:
                async with self.semaphore:
                    await self.pacer.acquire(op)
                    response = await self.http.request(
                        method,
                        url,
                        params=params,
                        content=content,
                        headers=_BODY_HEADERS if content is not None else None,
                        timeout=self.timeout,
                    )
            except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
                # Our side built a request HTTP cannot carry: sending it again cannot help.
                raise UnexpectedResponse(
                    f"The request for {op.what} could not be sent ({type(exc).__name__}: {exc})."
                ) from exc
            except httpx.TransportError as exc:
                reason = _transport_reason(exc, self.timeout)
                ambiguous = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            else:
                status = response.status_code
                if status == 429:
                    wait = retry_after_seconds(response)
                    ambiguous = False
                    if wait is not None and wait > MAX_RETRY_AFTER_S:
                        self.pacer.block(op, wait)
                        raise UnavailableError(
                            f"Klaviyo's rate limit stops {op.what} for {_human_seconds(wait)} "
                            "(a daily cap is probably used up); try again later."
                        )
                    if wait is not None:
                        self.pacer.block(op, wait)
                        reason = f"rate limit: Klaviyo asked to wait {wait:g} s"
                    else:
                        reason = "rate limit: Klaviyo throttled the request"
                elif status in RETRY_STATUSES:
                    word = _STATUS_WORDS.get(status, "server error")
                    reason = f"Klaviyo answered HTTP {status} ({word})"
                elif status == 403 and not is_json(response):
                    ambiguous = False
                    reason = "Klaviyo's edge refused the request (HTML 403)"
                else:
                    if 200 <= status < 300:
                        self.pacer.observe(
                            op,
                            response.headers.get("ratelimit-remaining"),
                            response.headers.get("ratelimit-reset"),
                        )
                    return response
            if attempt > self.max_retries:
                raise UnavailableError(
                    f"Klaviyo is unavailable: gave up {op.what} after {attempt} attempts; "
                    f"the last one failed because {reason}. Try again later "
                    "(https://status.klaviyo.com shows outages)."
                )
            if wait is None:
                wait = self._backoff(attempt)
            else:
                wait += self.rng.random() * min(0.25, self.backoff_base)
            if wait >= WAIT_EVENT_MIN_S:
                self.emit(Waiting(seconds=round(wait, 2), reason=f"{reason}; waiting before retry"))
            await asyncio.sleep(wait)
            self.emit(Retrying(attempt=attempt, reason=f"{reason}; retrying"))
            if ambiguous and before_retry is not None and await before_retry():
                raise Settled()
