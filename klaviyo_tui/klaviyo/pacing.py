"""Client-side pacing per Klaviyo operation, so a normal run never sees a 429.

Klaviyo counts requests per account and per endpoint in fixed 1 s (burst) and 60 s (steady) windows.
We keep a sliding log of send times per operation and stretch each window by a small margin: any
fixed window on the server is covered by one of our sliding windows, so it never holds more than the
limit, even with some network jitter. A 429's Retry-After, or `RateLimit-Remaining: 0` on a
success, blocks the whole bucket until Klaviyo's window resets. When a success's `RateLimit-Limit`
shows lower limits than our table (an account on a lower tier), that operation is paced to them;
never above the published tier.

The steady window's reset, when a success says it (its `RateLimit-Limit` names the 60 s quota as
the binding one, and `RateLimit-Reset` gives the whole seconds left), replaces the sliding minute
for the window that follows: a run that filled Klaviyo's minute early in it resumes when that
minute ends, not a full 61 s after its own first send. The reset is read conservatively: the new
window opens at the latest it can (our receive time plus the rounded-up seconds), and every send
from the earliest moment it could have opened (our send time plus the seconds, less the rounding,
less the margin) counts against it. The minute the reset ends stays known too: the answers to a
minute's last sends name the next minute's reset while calls are still left in this one, and
those go at once rather than when the sliding minute of the minute before allows. Past the
window that reset announced, the sliding minute rules again; the burst window always slides (its
reset, "1", says nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

BURST_WINDOW_S = 1.0
STEADY_WINDOW_S = 60.0
BURST_MARGIN_S = 0.1
STEADY_MARGIN_S = 1.0
#: A wait for the sliding minute longer than this is taken in naps, planned again after each.
REPLAN_S = 1.0


@dataclass(frozen=True, slots=True)
class Operation:
    """One Klaviyo operation: its tier (spec x-klaviyo-ratelimit) and scopes (x-klaviyo-scopes)."""

    name: str
    what: str  # human phrase: "reading your lists"
    burst: int  # per 1 s
    steady: int  # per 60 s
    scopes: tuple[str, ...]


_LR = ("lists:read",)
_JOBS_R = ("lists:read", "profiles:read")
_MEMBERS_W = ("lists:write", "profiles:write")
OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("get_accounts", "reading the account", 1, 15, ("accounts:read",)),
        # L tier: the spec says 750/min, Klaviyo's guide 700/min; budget the lower figure.
        Operation("get_lists", "reading your lists", 75, 700, _LR),
        Operation("get_list", "reading a list", 75, 700, _LR),
        Operation("create_list", "creating a list", 10, 150, ("lists:write",)),
        Operation(
            "bulk_import_profiles",
            "submitting a bulk import job",
            10,
            150,
            ("lists:write", "profiles:write"),
        ),
        Operation("get_bulk_import_profiles_jobs", "listing import jobs", 10, 150, _JOBS_R),
        Operation("get_bulk_import_profiles_job", "checking an import job", 10, 150, _JOBS_R),
        Operation(
            "get_errors_for_bulk_import_profiles_job",
            "reading a job's import errors",
            10,
            150,
            ("profiles:read",),
        ),
        Operation(
            "remove_profiles_from_list", "removing profiles from a list", 10, 150, _MEMBERS_W
        ),
        Operation("get_profiles_for_list", "reading a list's members", 75, 700, _JOBS_R),
        Operation("get_profile_ids_for_list", "looking up list members by email", 75, 700, _JOBS_R),
        Operation("get_profiles", "reading profiles", 75, 700, ("profiles:read",)),
        Operation(
            "bulk_subscribe_profiles",
            "subscribing profiles",
            75,
            700,
            (*_MEMBERS_W, "subscriptions:write"),
        ),
    )
}


def least_seconds_for(op: Operation, requests: int) -> float:
    """The time Klaviyo's fixed windows take for `requests` calls of `op` sent evenly (`burst` a
    second, `steady` a minute) from the start of a minute: for dry-run estimates and the
    benchmark's yardstick. Where a run falls in the minute moves it either way (a run that
    starts late in one can beat it; bench/export_bench.py, `bound_from_s`)."""
    if requests <= 0:
        return 0.0
    full_minutes, rest = divmod(requests - 1, op.steady)
    return full_minutes * STEADY_WINDOW_S + rest / op.burst


def parse_limit_header(value: str | None) -> dict[int, int]:
    """`RateLimit-Limit` as {window seconds: requests}.

    Live Klaviyo sends the binding quota first, then every window (`75, 75;w=1, 750;w=60`); the
    sandbox sends only the windows (`10;w=1, 150;w=60`). An item without `w=` names no window and
    is skipped; junk items are skipped; an empty or missing header gives {}.
    """
    windows: dict[int, int] = {}
    for item in (value or "").split(","):
        parts = [p.strip() for p in item.split(";")]
        try:
            quota = int(parts[0])
        except ValueError:
            continue
        for param in parts[1:]:
            name, _, raw = param.partition("=")
            if name.strip().lower() != "w":
                continue
            try:
                window = int(raw.strip().strip('"'))
            except ValueError:
                continue
            if window > 0 and quota > 0:
                windows[window] = min(quota, windows.get(window, quota))
    return windows


class _Bucket:
    def __init__(self, op: Operation) -> None:
        self.op = op
        self.lock = asyncio.Lock()
        self.sent: deque[float] = deque()  # reserved send times, ascending
        self.blocked_until = 0.0
        self.burst = op.burst  # the limits in force: the table's, or lower ones Klaviyo sent
        self.steady = op.steady
        # the steady window a reset announced: (earliest it may have opened, surely open from)
        self.steady_window: tuple[float, float] | None = None
        self.told_until = 0.0  # the end of the last wait announced (see Pacer.acquire)

    def next_slot(self, now: float) -> float:
        """Earliest time >= now at which one more send keeps both windows within their limits."""
        t = max(now, self.blocked_until, self.sent[-1] if self.sent else now)
        horizon = STEADY_WINDOW_S + STEADY_MARGIN_S
        while self.sent and self.sent[0] <= t - horizon:
            self.sent.popleft()
        for _ in range(3):  # a burst wait can push into a steady wait and back; settles fast
            moved = False
            window = BURST_WINDOW_S + BURST_MARGIN_S
            recent = [s for s in self.sent if s > t - window]
            if len(recent) >= self.burst:
                t = recent[-self.burst] + window
                moved = True
            steady = self._steady_slot(t)
            if steady > t:
                t = steady
                moved = True
            if not moved:
                break
        return t

    def steady_bound(self, now: float) -> bool:
        """True when the steady limit holds the next send back more than REPLAN_S beyond any
        block Klaviyo asked for. A short block (a burst window's "0 left") must not commit a
        caller to the sliding minute: the minute's reset may be on its way."""
        t = max(now, self.blocked_until)
        return self._steady_slot(t) > t + REPLAN_S

    def _steady_slot(self, t: float) -> float:
        """Earliest time >= t the steady limit allows: the sliding minute, or sooner when the
        window a reset announced has room."""
        window = STEADY_WINDOW_S + STEADY_MARGIN_S
        recent = [s for s in self.sent if s > t - window]
        best = t if len(recent) < self.steady else recent[-self.steady] + window
        if best > t and self.steady_window is not None:
            earliest, opened = self.steady_window
            # the minute that reset ends (the answer came while calls were left in it), then
            # the one it opens: the last sends of a minute name the next one's reset
            for minute in (-1, 0):
                start = max(t, opened + minute * STEADY_WINDOW_S)
                if start >= earliest + (minute + 1) * STEADY_WINDOW_S:
                    continue  # that minute may be over by then
                since = earliest + minute * STEADY_WINDOW_S - STEADY_MARGIN_S
                if sum(1 for s in self.sent if s >= since) < self.steady:
                    best = min(best, start)
                    break
        return best


class Pacer:
    """Hands out send slots per operation. `clock` and `sleep` are injectable for tests."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, op: Operation) -> _Bucket:
        bucket = self._buckets.get(op.name)
        if bucket is None:
            bucket = self._buckets[op.name] = _Bucket(op)
        return bucket

    async def acquire(self, op: Operation) -> float:
        """Wait for the next free slot for `op`; returns the seconds waited.

        A slot is reserved at once, unless only the sliding minute holds it back for more than
        REPLAN_S: then the wait goes in naps of REPLAN_S, planned again after each, because the
        answers to the minute's last sends (still on their way) may say when it resets."""
        bucket = self._bucket(op)
        start = self._clock()
        told = False
        while True:
            async with bucket.lock:
                now = self._clock()
                slot = bucket.next_slot(now)
                replan = slot - now > REPLAN_S and bucket.steady_bound(now)
                if not replan:
                    bucket.sent.append(slot)
            delay = slot - now
            # Concurrent callers meet the same wait: it is news once, not once per caller (a
            # run with 8 jobs in flight printed 8 lines, and summed 8 times the seconds waited)
            if delay > 0 and not told:
                told = True
                if slot > bucket.told_until + BURST_WINDOW_S:
                    bucket.told_until = slot
                    self._tell(bucket, delay, slot)
            if not replan:
                break
            await self._sleep(REPLAN_S)
        if delay > 0:
            await self._sleep(delay)
        return max(self._clock() - start, 0.0)

    def _tell(self, bucket: _Bucket, delay: float, slot: float) -> None:
        """Say why a caller waits: Klaviyo's own block, or our pacing to its limits."""
        if self._on_wait is None:
            return
        why = (
            "rate limit: waiting for Klaviyo's window to reset"
            if bucket.blocked_until >= slot
            else f"pacing to Klaviyo's rate limit for {bucket.op.what} "
            f"({bucket.burst}/s, {bucket.steady}/min)"
        )
        self._on_wait(delay, why)

    def refused(self, op: Operation, sent_at: float) -> None:
        """A call sent at `sent_at` was refused with 429: it takes no place in Klaviyo's windows
        (the sandbox counts only what it accepts), so it gives back the slot it reserved, the
        latest one at or before `sent_at`. Otherwise every 429 costs the minute a send: at 3M
        rows (298 jobs) five early burst 429s pushed the last 3 jobs into a third minute. Were
        a refused call counted after all, the price is one more 429 and its 1 s retry."""
        sent = self._bucket(op).sent
        for i in range(len(sent) - 1, -1, -1):
            if sent[i] <= sent_at:
                del sent[i]
                return

    def block(self, op: Operation, seconds: float) -> None:
        """Klaviyo said wait (Retry-After, or none left in the window): nobody sends before then."""
        bucket = self._bucket(op)
        bucket.blocked_until = max(bucket.blocked_until, self._clock() + max(seconds, 0.0))

    def now(self) -> float:
        return self._clock()

    def observe(
        self,
        op: Operation,
        remaining: str | None,
        reset: str | None,
        limit: str | None = None,
        sent_at: float | None = None,
    ) -> None:
        """Read a success's `RateLimit-*` headers tolerantly: 0 remaining blocks until the reset;
        limits below our table's pace this operation to them (never above the table).

        `sent_at` (the pacer's clock when the request went out) lets a steady window's reset
        pace the next minute (see the module's docstring)."""
        left = _first_int(remaining)
        wait = _first_int(reset)
        windows = parse_limit_header(limit)
        binding = _binding_quota(limit)
        bucket = self._bucket(op)
        if left == 0 and wait is not None and 0 < wait <= 120:
            # Even a full window that our own sends explain: a server that falls behind counts
            # requests later than we sent them, so its windows can hold more than our log says.
            self.block(op, float(wait))
        if windows:
            bucket.burst = min(op.burst, windows.get(1, op.burst))
            bucket.steady = min(op.steady, windows.get(60, op.steady))
            steady_binds = binding is not None and binding == windows.get(60) != windows.get(1)
            if steady_binds and sent_at is not None and wait is not None and 0 < wait <= 60:
                received = self._clock()
                bucket.steady_window = (sent_at + wait - 1, received + wait)

    def limits(self, op: Operation) -> tuple[int, int]:
        """(per second, per minute) currently paced to for `op`."""
        bucket = self._bucket(op)
        return bucket.burst, bucket.steady


def _binding_quota(limit: str | None) -> int | None:
    """The quota `RateLimit-Limit` names first without a window (`150, 10;w=1, 150;w=60`):
    the window that `RateLimit-Remaining` and `RateLimit-Reset` describe. None when absent."""
    head = (limit or "").split(",")[0]
    if ";" in head:
        return None
    try:
        return int(head.strip())
    except ValueError:
        return None


def _first_int(value: str | None) -> int | None:
    """`5`, `5, 10;w=60` and `5;w=1` all read as 5; junk reads as None."""
    if not value:
        return None
    head = value.split(",")[0].split(";")[0].strip()
    try:
        return int(float(head))
    except ValueError:
        return None
