"""One HTTP exchange with retries: pacing, timeouts, backoff with jitter, and error classification.

Retried up to the retry cap: 500/502/503/504, Cloudflare's 520–524, timeouts, connection errors and
resets, and a 403 whose body is not JSON (Cloudflare's bot challenge, `cf-mitigated: challenge`).
429s wait out Retry-After (at least 1 s, jittered) against a time budget per request instead, since
Klaviyo's quota is shared with every app on the account. Never retried: any other 4xx. Every retry
and every wait of ~0.2 s or more is reported as a progress event.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from klaviyo_tui.events import ProgressEvent, Retrying, Waiting
from klaviyo_tui.klaviyo.exceptions import (
    InvalidBaseURL,
    RateLimitedUntil,
    UnavailableError,
    UnexpectedResponse,
)
from klaviyo_tui.klaviyo.pacing import Operation, Pacer
from klaviyo_tui.klaviyo.urls import UnsafeBaseURL, is_loopback_host, normalise_base_url

#: Retried with backoff: server errors, and Cloudflare's 52x edge errors (the SDK retries 524).
RETRY_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 523, 524})
#: Edge errors that say the request never reached Klaviyo's servers: resending cannot duplicate.
UNREACHED_STATUSES = frozenset({521, 522, 523})
_STATUS_WORDS = {
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    520: "Cloudflare: unknown error from Klaviyo's servers",
    521: "Cloudflare: Klaviyo's servers are down",
    522: "Cloudflare: connecting to Klaviyo's servers timed out",
    523: "Cloudflare: Klaviyo's servers are unreachable",
    524: "Cloudflare: Klaviyo's servers did not answer in time",
}
WAIT_EVENT_MIN_S = 0.2
#: How long one request may wait in total for Klaviyo's 429s before the run stops (resumable).
DEFAULT_RATE_LIMIT_BUDGET_S = 600.0
#: `Retry-After: 0` still waits this long: "immediate retries will always receive a 429".
RATE_LIMIT_MIN_WAIT_S = 1.0
#: Random extra wait after a 429, so clients told the same Retry-After do not return in step.
RATE_LIMIT_JITTER_S = 0.5
RATE_LIMIT_WAIT_REASON = "waiting for Klaviyo's rate limit (shared with other apps on this account)"
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
    return f"{seconds:.3g} s"


def rate_limited_until(what: str, seconds: float, now: datetime | None = None) -> RateLimitedUntil:
    """The error for a 429 wait longer than the budget left: says the local time to retry."""
    start = now or datetime.now().astimezone()
    retry_at = start + timedelta(seconds=seconds)
    clock = retry_at.strftime("%H:%M")
    when = clock if retry_at.date() == start.date() else f"{retry_at:%a %d %b} {clock}"
    return RateLimitedUntil(
        f"Klaviyo's rate limit (shared with every app on this account) stops {what} for "
        f"{_human_seconds(seconds)}, until {when} local time; a daily cap may be used up. "
        "The run stopped and can be resumed then.",
        retry_at=retry_at,
    )


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


def _unavailable(base_url: httpx.URL, what: str, *, answered: bool) -> UnavailableError:
    """Retries ran out. On loopback it is the sandbox (or another local server), not Klaviyo:
    Klaviyo's status page would not help, starting the sandbox would."""
    if not (base_url.host and is_loopback_host(base_url.host)):
        return UnavailableError(
            f"Klaviyo is unavailable: {what}. Try again later "
            "(https://status.klaviyo.com shows outages)."
        )
    port = base_url.port or (443 if base_url.scheme == "https" else 80)
    host = "" if base_url.host in ("127.0.0.1", "localhost") else f" --host {base_url.host}"
    address = f"{base_url.scheme}://{base_url.netloc.decode('ascii')}"
    if answered:  # it is running but failing (the sandbox's --faults, say)
        return UnavailableError(
            f"The sandbox at {address} is unavailable: {what}.",
            hint="Try again; if the sandbox was started with --faults, restart it with fewer.",
        )
    return UnavailableError(
        f"The sandbox at {address} is not answering: {what}.",
        hint=f"Start it with `klaviyo-tui sandbox --port {port}{host}`, then try again "
        "(an interrupted run resumes with --resume).",
    )


class Settled(Exception):  # noqa: N818 - control flow, never escapes the client
    """A retry hook found the effect of an earlier attempt (e.g. the list was created after all)."""


class Requester:
    """Sends through one shared httpx.AsyncClient with pacing, a concurrency cap and retries.

    429s are not failures: Klaviyo's quota is per account and shared with every integration on
    it, so they come however well we pace. Their waits draw on a time budget per request
    (`rate_limit_budget`), not on the retry cap; a wait longer than what is left raises
    RateLimitedUntil. `clock` and `sleep` are injectable for tests (shared with the pacer).
    """

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
        rate_limit_budget: float = DEFAULT_RATE_LIMIT_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.timeout = timeout
        self.emit = emit
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rng = rng or random.Random()
        self.rate_limit_budget = max(0.0, rate_limit_budget)
        self.sleep = sleep
        self.semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self.pacer = Pacer(clock=clock, sleep=sleep, on_wait=self._on_pacer_wait)

    def _on_pacer_wait(self, seconds: float, reason: str) -> None:
        if seconds >= WAIT_EVENT_MIN_S:
            self.emit(Waiting(seconds=round(seconds, 2), reason=reason))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2^(attempt-1), capped, times 0.5..1.0."""
        raw = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
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
        tries = failures = throttles = 0
        throttled_s = 0.0  # waited for 429s so far, against `rate_limit_budget`
        while True:
            tries += 1
            ambiguous = True
            try:
                async with self.semaphore:
                    await self.pacer.acquire(op)
                    sent_at = self.pacer.now()
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
                unreached = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                ambiguous = not unreached
            else:
                unreached = False
                status = response.status_code
                if status == 429:
                    throttles += 1
                    self.pacer.refused(op, sent_at)
                    throttled_s += await self._wait_for_rate_limit(
                        op, response, throttles, throttled_s
                    )
                    asked = retry_after_seconds(response)
                    said = f"asked to wait {asked:g} s" if asked is not None else "throttled"
                    self.emit(
                        Retrying(attempt=tries, reason=f"rate limit: Klaviyo {said}; retrying")
                    )
                    continue
                if status in RETRY_STATUSES:
                    word = _STATUS_WORDS.get(status, "server error")
                    reason = f"Klaviyo answered HTTP {status} ({word})"
                    ambiguous = status not in UNREACHED_STATUSES
                elif status == 403 and not is_json(response):
                    ambiguous = False
                    reason = "Klaviyo's edge refused the request (HTML 403)"
                else:
                    if 200 <= status < 300:
                        self.pacer.observe(
                            op,
                            response.headers.get("ratelimit-remaining"),
                            response.headers.get("ratelimit-reset"),
                            response.headers.get("ratelimit-limit"),
                            sent_at,
                        )
                    return response
            failures += 1
            if failures > self.max_retries:
                gave_up = f"gave up {op.what} after {tries} attempts; the last one failed because"
                raise _unavailable(
                    self.http.base_url, f"{gave_up} {reason}", answered=not unreached
                )
            wait = self._backoff(failures)
            if wait >= WAIT_EVENT_MIN_S:
                self.emit(Waiting(seconds=round(wait, 2), reason=f"{reason}; waiting before retry"))
            await self.sleep(wait)
            self.emit(Retrying(attempt=tries, reason=f"{reason}; retrying"))
            if ambiguous and before_retry is not None and await before_retry():
                raise Settled()

    async def _wait_for_rate_limit(
        self, op: Operation, response: httpx.Response, throttles: int, spent: float
    ) -> float:
        """Wait out one 429 (Retry-After, at least 1 s, plus jitter); returns the seconds waited.

        Raises RateLimitedUntil when the wait is longer than what is left of the budget."""
        asked = retry_after_seconds(response)
        base = asked if asked is not None else self._backoff(throttles)
        wait = max(base, RATE_LIMIT_MIN_WAIT_S) + self.rng.random() * RATE_LIMIT_JITTER_S
        self.pacer.block(op, max(base, RATE_LIMIT_MIN_WAIT_S))
        if wait > self.rate_limit_budget - spent:
            raise rate_limited_until(op.what, max(base, RATE_LIMIT_MIN_WAIT_S))
        self.emit(Waiting(seconds=round(wait, 2), reason=RATE_LIMIT_WAIT_REASON))
        await self.sleep(wait)
        return wait
