"""Pack serialized profiles into bulk-import request bodies within Klaviyo's per-job limits.

Sizes are measured on the exact bytes that will be POSTed, so a body is never over `max_bytes`
(the default leaves headroom under Klaviyo's 5 MB cap). Packing is a pure function of the input
sequence: the same payloads in the same order give the same batches and fingerprints, which is
what resuming an interrupted run relies on (the bytes and the fingerprint: input/bodies.py).

Memory: a batch keeps only its body plus compact columns (payload offsets into the body, rows as
int64, emails as one Arrow string array, a boolean per row for "sent without a field", see
input/fields.py); `payloads`, `rows`, `emails`, `warned` and `segments` are built as lists on
access. The engine holds dozens of batches while their jobs run, so no Python object per
profile is kept. `add_arrays` packs Arrow columns without touching each row in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import numpy as np
import pyarrow as pa

from klaviyo_tui.input.bodies import (
    PREFIX,
    blake2b_fingerprint,
    build_body,
    fingerprint_of,
    joined,
    offsets_of,
    suffix,
)

MAX_PROFILES = 10_000
MAX_BYTES = 4_500_000


class Batch:
    """One bulk import job's body plus the source rows it carries, aligned by position."""

    __slots__ = (
        "number",
        "list_id",
        "body",
        "fingerprint",
        "_offsets",
        "_rows",
        "_emails",
        "_runs",
        "_warned",
    )

    def __init__(
        self,
        number: int,  # 0-based, sequential within a run
        list_id: str,
        body: bytes,  # the exact POST body
        payloads: Sequence[bytes],  # each profile resource, as in `body`
        rows: Sequence[int],  # 1-based source row numbers
        emails: Sequence[str],  # normalized emails
        segments: Sequence[str],  # the segment each row came from ("" when not given)
        fingerprint: str = "",
        warned: Sequence[bool] | np.ndarray | None = None,  # rows sent without a field
    ) -> None:
        sizes = np.fromiter(map(len, payloads), np.int64, count=len(payloads))
        runs: list[tuple[str, int]] = []
        for seg in segments:
            if runs and runs[-1][0] == seg:
                runs[-1] = (seg, runs[-1][1] + 1)
            else:
                runs.append((seg, 1))
        self._init(
            number,
            list_id,
            body,
            np.concatenate([[0], np.cumsum(sizes)]),
            np.asarray(rows, np.int64),
            pa.array(list(emails), pa.string()),
            runs,
            fingerprint,
            _flags(warned, len(rows)),
        )

    def _init(
        self,
        number: int,
        list_id: str,
        body: bytes,
        offsets: np.ndarray,
        rows: np.ndarray,
        emails: pa.Array,
        runs: list[tuple[str, int]],
        fingerprint: str = "",
        warned: np.ndarray | None = None,
    ) -> None:
        self.number = number
        self.list_id = list_id
        self.body = body
        self._offsets = offsets  # payload boundaries within the joined payloads (no commas)
        self._rows = rows
        self._emails = emails
        self._runs = runs
        self._warned = _flags(warned, len(rows))
        self.fingerprint = fingerprint or fingerprint_of(body)

    @classmethod
    def _compact(
        cls,
        number: int,
        list_id: str,
        body: bytes,
        offsets: np.ndarray,
        rows: np.ndarray,
        emails: pa.Array,
        runs: list[tuple[str, int]],
        warned: np.ndarray,
    ) -> Batch:
        batch = cls.__new__(cls)
        batch._init(number, list_id, body, offsets, rows, emails, runs, warned=warned)
        return batch

    def __repr__(self) -> str:
        return f"Batch(number={self.number}, count={self.count}, size={self.size})"

    @property
    def count(self) -> int:
        return len(self._rows)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def payloads(self) -> list[bytes]:
        if not len(self._offsets):
            raise ValueError(f"batch {self.number} is a receipt: its body was dropped")
        start = len(PREFIX) + self._offsets[:-1] + np.arange(self.count)
        end = start + np.diff(self._offsets)
        body = self.body
        return [body[s:e] for s, e in zip(start.tolist(), end.tolist(), strict=True)]

    @property
    def rows(self) -> list[int]:
        return cast(list[int], self._rows.tolist())  # numpy and pyarrow type these as Any

    @property
    def emails(self) -> list[str]:
        return cast(list[str], self._emails.to_pylist())

    def email_at(self, position: int) -> str:
        """One row's email, without building the whole list."""
        return str(self._emails[position].as_py())

    @property
    def segments(self) -> list[str]:
        return [seg for seg, n in self._runs for _ in range(n)]

    @property
    def segment_runs(self) -> list[tuple[str, int]]:
        """(segment, row count) runs in order: `segments` without a string per row."""
        return list(self._runs)

    @property
    def row_array(self) -> np.ndarray:
        """The source rows as int64 (a copy), without a Python int per row."""
        return self._rows.astype(np.int64)

    @property
    def warned(self) -> list[bool]:
        """Per row: sent without a field (confirmed, it ends imported_with_warnings)."""
        flags: list[bool] = self._warned.tolist()
        return flags

    @property
    def warned_count(self) -> int:
        return int(self._warned.sum())

    def warned_confirmed(self, rejected: Iterable[tuple[str, int]]) -> int:
        """Rows with warnings among those Klaviyo confirmed: all of them but the `rejected`
        (segment, row) pairs. No Python work per row unless a warned row was rejected."""
        total = self.warned_count
        refused = set(rejected)
        if not total or not refused:
            return total
        where = np.flatnonzero(self._warned)
        starts = np.cumsum([0] + [n for _, n in self._runs])
        segs = [self._runs[i][0] for i in np.searchsorted(starts, where, "right") - 1]
        rows = self._rows[where].tolist()
        return total - sum((seg, row) in refused for seg, row in zip(segs, rows, strict=True))

    def matches(self, fingerprint: str) -> bool:
        """Whether a journaled fingerprint is this batch's, in the current form or the blake2b
        one (a run interrupted under an older version resumes without resending)."""
        if fingerprint == self.fingerprint:
            return True
        return bool(self.body) and fingerprint == blake2b_fingerprint(self.body)

    def receipt(self) -> Batch:
        """This batch without its body or payloads: all that confirming an accepted job needs
        (number, fingerprint, count, rows, emails, segments). Keeps ~2.5 MB less per pending job."""
        batch = Batch.__new__(Batch)
        batch._init(
            self.number,
            self.list_id,
            b"",
            np.zeros(0, np.int64),
            self._rows,
            self._emails,
            self._runs,
            self.fingerprint,
            self._warned,
        )
        return batch

    def without(self, indexes: set[int]) -> Batch:
        """The same batch (same number) minus the profiles at `indexes` (positions in `data`).

        Used after a 400 whose error pointers name rows Klaviyo refused: the rest is resent.
        """
        keep = [i for i in range(self.count) if i not in indexes]
        payloads, rows, emails, segments = self.payloads, self.rows, self.emails, self.segments
        kept = [payloads[i] for i in keep]
        return Batch(
            number=self.number,
            list_id=self.list_id,
            body=build_body(kept, self.list_id),
            payloads=kept,
            rows=[rows[i] for i in keep],
            emails=[emails[i] for i in keep],
            segments=[segments[i] for i in keep],
            warned=self._warned[keep],
        )


def _flags(values: Sequence[bool] | np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    flags = np.asarray(values, dtype=bool)
    if len(flags) != n:
        raise ValueError(f"{len(flags)} warned flags for {n} rows")
    return flags


class BatchPacker:
    """Accumulates payloads; hands back a full batch when the next payload would not fit."""

    def __init__(
        self, list_id: str, *, max_profiles: int = MAX_PROFILES, max_bytes: int = MAX_BYTES
    ) -> None:
        if max_profiles < 1:
            raise ValueError("max_profiles must be at least 1")
        self.list_id = list_id
        self.max_profiles = max_profiles
        self.max_bytes = max_bytes
        self._suffix = suffix(list_id)
        self._overhead = len(PREFIX) + len(self._suffix)
        self._number = 0
        self._reset()

    def _reset(self) -> None:
        # pieces of the batch being filled: (payloads, rows, emails, segment, warned)
        self._pieces: list[tuple[pa.Array, np.ndarray, pa.Array, str, np.ndarray]] = []
        self._count = 0
        self._size = self._overhead

    @property
    def batches_emitted(self) -> int:
        return self._number

    @property
    def pending(self) -> int:
        """Profiles waiting in the batch being filled."""
        return self._count

    def add(
        self, payload: bytes, row: int, email: str, segment: str = "", warned: bool = False
    ) -> Batch | None:
        """Add one profile; returns the previous batch if this profile starts a new one."""
        out = self.add_arrays(
            pa.array([payload], pa.binary()),
            np.array([row], np.int64),
            pa.array([email], pa.string()),
            segment,
            np.array([warned]),
        )
        return out[0] if out else None

    def add_many(
        self,
        payloads: list[bytes],
        rows: list[int],
        emails: list[str],
        segment: str = "",
        warned: list[bool] | None = None,
    ) -> list[Batch]:
        """`add` for a whole chunk at once (same batches, without a Python call per row)."""
        return self.add_arrays(
            pa.array(payloads, pa.binary()),
            np.asarray(rows, np.int64),
            pa.array(emails, pa.string()),
            segment,
            None if warned is None else np.asarray(warned, dtype=bool),
        )

    def add_arrays(
        self,
        payloads: pa.Array,
        rows: np.ndarray,
        emails: pa.Array,
        segment: str = "",
        warned: np.ndarray | None = None,
    ) -> list[Batch]:
        """`add` for Arrow columns (binary payloads, string emails), int64 row numbers and
        a boolean per row for "sent without a field" (None: no row has warnings)."""
        total = len(payloads)
        if total == 0:
            return []
        flags = _flags(warned, total)
        if payloads.type != pa.binary():
            payloads = payloads.cast(pa.binary())
        lengths = np.diff(offsets_of(payloads))
        biggest = int(lengths.max())
        if biggest + self._overhead > self.max_bytes:
            i = int(np.argmax(lengths + self._overhead > self.max_bytes))
            raise ValueError(
                f"row {int(rows[i])}: a profile of {int(lengths[i])} bytes cannot fit a "
                f"{self.max_bytes}-byte request"
            )
        sizes = lengths + 1  # each payload plus the comma before it (the first has none)
        out: list[Batch] = []
        start = 0
        while start < total:
            room_count = self.max_profiles - self._count
            room_bytes = self.max_bytes - self._size + (0 if self._count else 1)
            window = sizes[start : start + room_count]
            end = start + int(np.searchsorted(np.cumsum(window), room_bytes, "right"))
            if end > start:
                n = end - start
                self._pieces.append(
                    (
                        payloads.slice(start, n),
                        rows[start:end],
                        emails.slice(start, n),
                        segment,
                        flags[start:end],
                    )
                )
                self._size += int(sizes[start:end].sum()) - (0 if self._count else 1)
                self._count += n
                start = end
            if start < total:
                batch = self.flush()
                if batch is not None:
                    out.append(batch)
        return out

    def flush(self) -> Batch | None:
        """The batch being filled, if it holds anything (call once at the end of input)."""
        if not self._count:
            return None
        pieces = self._pieces
        payloads = pa.concat_arrays([p[0] for p in pieces])
        body = b"".join((PREFIX, joined(payloads), self._suffix))
        assert len(body) == self._size, "size bookkeeping drifted"
        runs: list[tuple[str, int]] = []
        for _, piece_rows, _, seg, _ in pieces:
            if runs and runs[-1][0] == seg:
                runs[-1] = (seg, runs[-1][1] + len(piece_rows))
            else:
                runs.append((seg, len(piece_rows)))
        batch = Batch._compact(
            self._number,
            self.list_id,
            body,
            offsets_of(payloads),
            np.concatenate([p[1] for p in pieces]).astype(np.int64, copy=False),
            pa.concat_arrays([p[2] for p in pieces]),
            runs,
            np.concatenate([p[4] for p in pieces]),
        )
        self._number += 1
        self._reset()
        return batch
