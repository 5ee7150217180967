"""Pack serialized profiles into bulk-import request bodies within Klaviyo's per-job limits.

Sizes are measured on the exact bytes that will be POSTed, so a body is never over `max_bytes`
(the default leaves headroom under Klaviyo's 5 MB cap). Packing is a pure function of the input
sequence: the same payloads in the same order give the same batches and fingerprints, which is
what resuming an interrupted run relies on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import orjson

MAX_PROFILES = 10_000
MAX_BYTES = 4_500_000

_PREFIX = b'{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":['


def _suffix(list_id: str) -> bytes:
    return (
        b']}},"relationships":{"lists":{"data":[{"type":"list","id":'
        + orjson.dumps(list_id)
        + b"}]}}}}"
    )


def _fingerprint(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Batch:
    """One bulk import job's body plus the source rows it carries, aligned by position."""

    number: int  # 0-based, sequential within a run
    list_id: str
    body: bytes  # the exact POST body
    payloads: list[bytes]  # each profile resource, as in `body`
    rows: list[int]  # 1-based source row numbers
    emails: list[str]  # normalized emails
    segments: list[str]  # the segment each row came from ("" when not given)
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", _fingerprint(self.body))

    @property
    def count(self) -> int:
        return len(self.payloads)

    @property
    def size(self) -> int:
        return len(self.body)

    def without(self, indexes: set[int]) -> Batch:
        """The same batch (same number) minus the profiles at `indexes` (positions in `data`).

        Used after a 400 whose error pointers name rows Klaviyo refused: the rest is resent.
        """
        keep = [i for i in range(self.count) if i not in indexes]
        payloads = [self.payloads[i] for i in keep]
        return Batch(
            number=self.number,
            list_id=self.list_id,
            body=_build_body(payloads, self.list_id),
            payloads=payloads,
            rows=[self.rows[i] for i in keep],
            emails=[self.emails[i] for i in keep],
            segments=[self.segments[i] for i in keep],
        )


def _build_body(payloads: list[bytes], list_id: str) -> bytes:
    return _PREFIX + b",".join(payloads) + _suffix(list_id)


class BatchPacker:
    """Accumulates payloads; `add` hands back a full batch when the next payload would not fit."""

    def __init__(
        self, list_id: str, *, max_profiles: int = MAX_PROFILES, max_bytes: int = MAX_BYTES
    ) -> None:
        if max_profiles < 1:
            raise ValueError("max_profiles must be at least 1")
        self.list_id = list_id
        self.max_profiles = max_profiles
        self.max_bytes = max_bytes
        self._overhead = len(_PREFIX) + len(_suffix(list_id))
        self._number = 0
        self._reset()

    def _reset(self) -> None:
        self._payloads: list[bytes] = []
        self._rows: list[int] = []
        self._emails: list[str] = []
        self._segments: list[str] = []
        self._size = self._overhead

    @property
    def batches_emitted(self) -> int:
        return self._number

    @property
    def pending(self) -> int:
        """Profiles waiting in the batch being filled."""
        return len(self._payloads)

    def add(self, payload: bytes, row: int, email: str, segment: str = "") -> Batch | None:
        """Add one profile; returns the previous batch if this profile starts a new one."""
        extra = len(payload) + (1 if self._payloads else 0)
        if self._overhead + len(payload) > self.max_bytes:
            raise ValueError(
                f"row {row}: a profile of {len(payload)} bytes cannot fit a "
                f"{self.max_bytes}-byte request"
            )
        full: Batch | None = None
        if len(self._payloads) >= self.max_profiles or self._size + extra > self.max_bytes:
            full = self.flush()
            extra = len(payload)
        self._payloads.append(payload)
        self._rows.append(row)
        self._emails.append(email)
        self._segments.append(segment)
        self._size += extra
        return full

    def add_many(
        self, payloads: list[bytes], rows: list[int], emails: list[str], segment: str = ""
    ) -> list[Batch]:
        """`add` for a whole chunk at once (same batches, without a Python call per row)."""
        out: list[Batch] = []
        start, total = 0, len(payloads)
        if total and max(map(len, payloads)) + self._overhead > self.max_bytes:
            for i, p in enumerate(payloads):  # let `add` raise for the first oversize payload
                if len(p) + self._overhead > self.max_bytes:
                    self.add(p, rows[i], emails[i], segment)
        sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=total) + 1
        while start < total:
            room_count = self.max_profiles - len(self._payloads)
            # bytes still free, counting a comma before every payload (the first has none)
            room_bytes = self.max_bytes - self._size + (0 if self._payloads else 1)
            fits = np.searchsorted(
                np.cumsum(sizes[start : start + room_count]), room_bytes, "right"
            )
            end = start + int(fits)
            if end == start:
                batch = self.flush()
                if batch is not None:
                    out.append(batch)
                continue
            self._payloads.extend(payloads[start:end])
            self._rows.extend(rows[start:end])
            self._emails.extend(emails[start:end])
            self._segments.extend([segment] * (end - start))
            self._size += int(sizes[start:end].sum()) - (
                0 if len(self._payloads) > end - start else 1
            )
            start = end
            if start < total:
                batch = self.flush()
                if batch is not None:
                    out.append(batch)
        return out

    def flush(self) -> Batch | None:
        """The batch being filled, if it holds anything (call once at the end of input)."""
        if not self._payloads:
            return None
        body = _build_body(self._payloads, self.list_id)
        assert len(body) == self._size, "size bookkeeping drifted"
        batch = Batch(
            number=self._number,
            list_id=self.list_id,
            body=body,
            payloads=self._payloads,
            rows=self._rows,
            emails=self._emails,
            segments=self._segments,
        )
        self._number += 1
        self._reset()
        return batch
