"""Per-account, per-operation rate limits with fixed windows (1 s, 60 s, UTC day).

Numbers come from the operations table (the spec's x-klaviyo-ratelimit). Successful calls get
the live format (klaviyo-live-behaviour.md): `RateLimit-Limit: 75, 75;w=1, 750;w=60` (first
the binding quota, then every window), `RateLimit-Remaining` and `RateLimit-Reset` for the
binding window (the one with the fewest calls left). A refused call gets 429 `throttled` with an
integer `Retry-After` and no RateLimit headers. Daily caps (create_list 150/day) are an account
quota and stay on even when burst/steady limits are switched off.

`quota_share` (the `quota` fault) models another private-key integration on the same account:
it uses that share of every window, so a client that paces itself to the published numbers
still meets 429s. It applies even with burst/steady limits off (it is meaningless without them).
"""

from __future__ import annotations

import math

from .error_responses import ApiError
from .operations import Operation


def throttled(wait: float, minimum: int = 1) -> ApiError:
    """The 429 Klaviyo sends: code throttled, Retry-After in whole seconds."""
    seconds = max(minimum, math.ceil(wait))
    unit = "second" if seconds == 1 else "seconds"
    return ApiError(
        429,
        "throttled",
        "Request was throttled.",
        f"Request was throttled. Expected available in {seconds} {unit}.",
        headers={"Retry-After": str(seconds)},
    )


class RateLimiter:
    """Fixed-window counters keyed by (operation, window length)."""

    def __init__(self, enabled: bool, quota_share: float = 0.0) -> None:
        self.enabled = enabled
        self.quota_share = quota_share
        self._counts: dict[tuple[str, int], tuple[float, int]] = {}

    def check(self, op: Operation, now: float) -> dict[str, str]:
        """Count one call; return headers for a success, or raise the 429."""
        on = self.enabled or self.quota_share > 0
        windows = op.windows if on else tuple(w for w in op.windows if w[1] == 86400)
        if not windows:
            return {}
        share = self.quota_share
        states = []
        for limit, length in windows:
            start = math.floor(now / length) * length
            seen_start, used = self._counts.get((op.operation_id, length), (start, 0))
            if seen_start != start:
                used = 0
            used += int(limit * share)  # the other integration's calls in this window
            if used >= limit:
                raise throttled(start + length - now)
            states.append((limit, length, start, used))
        best: tuple[int, int, float] | None = None
        for limit, length, start, used in states:
            own = used - int(limit * share)
            self._counts[(op.operation_id, length)] = (start, own + 1)
            remaining = limit - used - 1
            # the fewest calls left binds; on a tie the longer window (it keeps a client out
            # longer, so its reset is the one worth knowing)
            if best is None or remaining <= best[1]:
                best = (limit, remaining, start + length - now)
        assert best is not None
        windows_text = ", ".join(f"{limit};w={length}" for limit, length in windows)
        return {
            "RateLimit-Limit": f"{best[0]}, {windows_text}",
            "RateLimit-Remaining": str(best[1]),
            "RateLimit-Reset": str(max(1, math.ceil(best[2]))),
        }
