"""Per-account, per-operation rate limits with fixed windows (1 s, 60 s, UTC day).

Numbers come from the operations table (the spec's x-klaviyo-ratelimit). Successful calls
get `RateLimit-Limit` (every window, `q;w=seconds` style), `RateLimit-Remaining` and
`RateLimit-Reset` for the tightest window; a refused call gets 429 `throttled` with an
integer `Retry-After` (at least 1) and no RateLimit headers. Daily caps (create_list
150/day) are an account quota and stay on even when burst/steady limits are switched off.
"""

from __future__ import annotations

import math

from .error_responses import ApiError
from .operations import Operation


def throttled(wait: float) -> ApiError:
    """The 429 Klaviyo sends: code throttled, Retry-After in whole seconds."""
    seconds = max(1, math.ceil(wait))
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

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._counts: dict[tuple[str, int], tuple[float, int]] = {}

    def check(self, op: Operation, now: float) -> dict[str, str]:
        """Count one call; return headers for a success, or raise the 429."""
        windows = op.windows if self.enabled else tuple(w for w in op.windows if w[1] == 86400)
        if not windows:
            return {}
        states = []
        for limit, length in windows:
            start = math.floor(now / length) * length
            seen_start, used = self._counts.get((op.operation_id, length), (start, 0))
            if seen_start != start:
                used = 0
            if used >= limit:
                raise throttled(start + length - now)
            states.append((limit, length, start, used))
        best: tuple[int, float] | None = None
        for limit, length, start, used in states:
            self._counts[(op.operation_id, length)] = (start, used + 1)
            remaining = limit - used - 1
            reset = start + length - now
            if best is None or remaining < best[0]:
                best = (remaining, reset)
        assert best is not None
        return {
            "RateLimit-Limit": ", ".join(f"{limit};w={length}" for limit, length in windows),
            "RateLimit-Remaining": str(best[0]),
            "RateLimit-Reset": str(max(1, math.ceil(best[1]))),
        }
