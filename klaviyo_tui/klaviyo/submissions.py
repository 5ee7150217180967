"""Telling whether an import POST that failed ambiguously was accepted after all.

A read timeout, a reset after sending, or a 5xx from the edge (524) can come after Klaviyo
created the job. Before sending again, the client looks for that job in the newest-first job
listing and adopts it when exactly one job fits: created since just before the first attempt,
the same profile count (and list, when the listing names it), and not claimed by another
submission of this client. When that cannot be told apart (another upload of the same size is
open, or was lost to an ambiguous failure), it sends again: an import is an idempotent upsert,
so a duplicate job costs quota, never data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from klaviyo_tui.klaviyo.models import ImportJob


@dataclass(frozen=True, slots=True)
class BatchShape:
    """What identifies an import body's job in the listing: profile count and list id."""

    count: int
    list_id: str | None


def batch_shape(body: bytes) -> BatchShape | None:
    """Count the profiles of a ProfileImportJobCreateQuery body; None when it is not one."""
    try:
        data = orjson.loads(body)["data"]
        profiles = data["attributes"]["profiles"]["data"]
        lists = ((data.get("relationships") or {}).get("lists") or {}).get("data") or []
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(profiles, list):
        return None
    first = lists[0] if isinstance(lists, list) and lists else None
    list_id = first.get("id") if isinstance(first, dict) else None
    return BatchShape(len(profiles), list_id if isinstance(list_id, str) else None)


class SubmissionLedger:
    """This client's import submissions: the jobs claimed, and the ones still unresolved.

    Plain synchronous bookkeeping: on one event loop, a check and a claim with no await between
    them cannot interleave with another submission's claim."""

    def __init__(self) -> None:
        self.claimed: set[str] = set()
        self._open: dict[int, int | None] = {}  # token -> profile count (None: not known)
        self._lost: list[int | None] = []  # counts of submissions that ended unresolved
        self._tokens = itertools.count()

    def open(self, count: int | None) -> int:
        token = next(self._tokens)
        self._open[token] = count
        return token

    def close(self, token: int, job_id: str | None, *, maybe_accepted: bool = False) -> None:
        """The submission ended: with its job, or without one. One that may have been accepted
        (its last failure was ambiguous) leaves an unclaimed job behind that nobody may adopt."""
        count = self._open.pop(token, None)
        if job_id:
            self.claimed.add(job_id)
        elif maybe_accepted:
            self._lost.append(count)

    def crowded(self, token: int, count: int) -> bool:
        """True when another submission's job could have this count: then it cannot be told
        apart from ours."""
        others = [c for t, c in self._open.items() if t != token]
        return any(c is None or c == count for c in [*others, *self._lost])

    def pick(
        self, token: int, shape: BatchShape, since: datetime, jobs: list[ImportJob]
    ) -> ImportJob | None:
        """Claim the one listed job that can only be ours, or None (then send again)."""
        if self.crowded(token, shape.count):
            return None
        fits = [
            job
            for job in jobs
            if job.id not in self.claimed
            and job.created_at is not None
            and (job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=UTC))
            >= since
            and job.total_count == shape.count
            and (not job.list_ids or shape.list_id is None or shape.list_id in job.list_ids)
        ]
        if len(fits) != 1:
            return None
        self.claimed.add(fits[0].id)
        return fits[0]
