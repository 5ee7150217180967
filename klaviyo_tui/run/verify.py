"""Reading the list back after a run (`--verify`): is every row Klaviyo confirmed in the list?

Klaviyo's confirmation says a job imported a row; something else (a person, a flow, another
integration) can still take the profile out of the list before anyone looks. `full` reads every
member of the list (`GET /api/lists/{id}/profiles`, 100 a page, 75 pages a second and 700 a
minute: about 14 minutes a million members) and reports each confirmed row whose email is not
among them; `sample:N` looks up N random confirmed rows by email (100 emails a call).

Memory stays compact at any size: while the run confirms batches, `Expected` keeps each
confirmed row's email as a 64-bit hash (the pipeline's hash of the trimmed, lower-cased email),
its row number and segment (15 bytes a row; no Python strings), and the members read back are
hashed the same way, 50,000 at a time. Two different emails share a hash with probability about
n²/2⁶⁵; such a row would count as present. `Sample` keeps only its N rows (priority sampling:
the N smallest random keys are a uniform sample).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from klaviyo_tui.events import Notice, ProgressEvent, Reject, RowState
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import OPERATIONS, KlaviyoClient, UnsearchableValue
from klaviyo_tui.klaviyo.pacing import least_seconds_for
from klaviyo_tui.run.progress import describe_verification, format_duration, plural
from klaviyo_tui.store.history import HistoryStore, Verification

MEMBERS_PER_PAGE = 100
EMAILS_PER_LOOKUP = 100
HASH_CHUNK = 50_000


def email_hashes(emails: Sequence[str]) -> np.ndarray:
    """64-bit hashes of the trimmed, lower-cased emails (the pipeline's hash)."""
    values = np.asarray([e.strip().lower() for e in emails], dtype=object)
    hashed: np.ndarray = pd.util.hash_array(values, categorize=False)
    return hashed.astype(np.uint64, copy=False)


class Expected:
    """Every confirmed row of a run, compactly: email hash, row number, segment, warned."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.segments: list[str] = []
        self._segment_ids: dict[str, int] = {}
        self.count = 0

    def add(self, batch: Batch, positions: Sequence[int], warned: Sequence[bool]) -> None:
        """Rows at `positions` of `batch` are confirmed in the list. Blocks: use a thread."""
        if not positions:
            return
        emails, rows, segments = batch.emails, batch.rows, batch.segments
        ids = np.fromiter(
            (self._segment_id(segments[p]) for p in positions), np.uint16, count=len(positions)
        )
        self._chunks.append(
            (
                email_hashes([emails[p] for p in positions]),
                np.asarray([rows[p] for p in positions], np.uint32),
                ids,
                np.asarray(warned, bool),
            )
        )
        self.count += len(positions)

    def _segment_id(self, name: str) -> int:
        found = self._segment_ids.get(name)
        if found is None:
            found = self._segment_ids[name] = len(self.segments)
            self.segments.append(name)
        return found

    def missing(self, members: np.ndarray) -> list[tuple[str, int, bool]]:
        """(segment, row, warned) of every expected row whose hash is not in `members`."""
        if not self._chunks:
            return []
        hashes = np.concatenate([c[0] for c in self._chunks])
        absent = np.flatnonzero(~np.isin(hashes, members))
        if not len(absent):
            return []
        rows = np.concatenate([c[1] for c in self._chunks])[absent]
        ids = np.concatenate([c[2] for c in self._chunks])[absent]
        warned = np.concatenate([c[3] for c in self._chunks])[absent]
        return [
            (self.segments[int(i)], int(r), bool(w))
            for i, r, w in zip(ids.tolist(), rows.tolist(), warned.tolist(), strict=True)
        ]


class Sample:
    """A uniform random sample of `size` confirmed rows: (email, segment, row, warned)."""

    def __init__(self, size: int, seed: int | None = None) -> None:
        self.size = size
        self.count = 0
        self._rng = np.random.default_rng(seed)
        self._keys = np.zeros(0)
        self._items: list[tuple[str, str, int, bool]] = []

    def add(self, batch: Batch, positions: Sequence[int], warned: Sequence[bool]) -> None:
        self.count += len(positions)
        keys = self._rng.random(len(positions))
        take = np.arange(len(positions))
        if len(self._keys) >= self.size:
            take = take[keys < self._keys.max()]
        if len(take) > self.size:
            take = take[np.argpartition(keys[take], self.size - 1)[: self.size]]
        if not len(take):
            return
        emails, rows, segments = batch.emails, batch.rows, batch.segments
        picked = [positions[i] for i in take.tolist()]
        self._items += [
            (emails[p], segments[p], rows[p], bool(warned[i]))
            for p, i in zip(picked, take.tolist(), strict=True)
        ]
        self._keys = np.concatenate([self._keys, keys[take]])
        if len(self._keys) > self.size:
            keep = np.argpartition(self._keys, self.size - 1)[: self.size]
            self._keys = self._keys[keep]
            self._items = [self._items[i] for i in keep.tolist()]

    @property
    def items(self) -> list[tuple[str, str, int, bool]]:
        return list(self._items)


Collector = Expected | Sample
Missing = list[tuple[str, int, bool, str]]  # (segment, row, warned, email or "")


def full_cost(rows: int) -> str:
    """What reading at least `rows` members costs at Klaviyo's limits, in words."""
    pages = max(1, -(-rows // MEMBERS_PER_PAGE))
    seconds = least_seconds_for(OPERATIONS["get_profiles_for_list"], pages)
    return (
        f"the list holds at least {plural(rows, 'member')} (this run's confirmed rows): reading "
        f"them takes about {format_duration(max(seconds, 1.0))} at Klaviyo's limits "
        f"({MEMBERS_PER_PAGE} a page, 75 pages a second, 700 a minute)"
    )


async def verify_full(
    client: KlaviyoClient, list_id: str, expected: Expected, emit: Callable[[ProgressEvent], None]
) -> tuple[Verification, Missing]:
    """Read every member of the list and find the confirmed rows that are not among them."""
    emit(Notice(f"verifying: reading back list {list_id}; {full_cost(expected.count)}"))
    chunks: list[np.ndarray] = []
    pending: list[str] = []
    members = 0
    async for member in client.list_members(list_id):
        members += 1
        if member.email:
            pending.append(member.email)
        if len(pending) >= HASH_CHUNK:
            chunks.append(await asyncio.to_thread(email_hashes, pending))
            pending = []
        if members % 250_000 == 0:
            emit(Notice(f"verifying: {members:,} members read"))
    if pending:
        chunks.append(await asyncio.to_thread(email_hashes, pending))
    seen = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
    missing = await asyncio.to_thread(expected.missing, seen)
    result = Verification(
        "full", expected.count, expected.count - len(missing), len(missing), members
    )
    return result, [(segment, row, warned, "") for segment, row, warned in missing]


async def verify_sample(
    client: KlaviyoClient, list_id: str, sample: Sample, emit: Callable[[ProgressEvent], None]
) -> tuple[Verification, Missing]:
    """Look up the sampled rows by email; the ones not found in the list are missing."""
    items = sample.items
    calls = -(-len(items) // EMAILS_PER_LOOKUP)
    emit(
        Notice(
            f"verifying a sample: looking up {plural(len(items), 'row')} of this run's "
            f"{sample.count:,} confirmed rows in list {list_id} ({plural(calls, 'call')})"
        )
    )
    found: set[str] = set()
    unsearchable: set[str] = set()
    emails = list(dict.fromkeys(item[0] for item in items))
    for start in range(0, len(emails), EMAILS_PER_LOOKUP):
        chunk = emails[start : start + EMAILS_PER_LOOKUP]
        try:
            found |= await _present(client, list_id, chunk)
        except UnsearchableValue as error:
            unsearchable |= set(error.values)
            rest = [e for e in chunk if e not in unsearchable]
            found |= await _present(client, list_id, rest) if rest else set()
    checked = [item for item in items if item[0] not in unsearchable]
    missing = [
        (seg, row, warned, email) for email, seg, row, warned in checked if email not in found
    ]
    if unsearchable:
        emit(
            Notice(
                f"verifying: {plural(len(unsearchable), 'email')} cannot be written in a "
                "Klaviyo filter and were not checked",
                level="warning",
            )
        )
    mode = f"sample:{sample.size}"
    return Verification(mode, len(checked), len(checked) - len(missing), len(missing)), missing


async def _present(client: KlaviyoClient, list_id: str, emails: list[str]) -> set[str]:
    """The emails among `emails` that belong to a member of the list. Klaviyo answers with
    profile ids only, so a short answer is narrowed down by halves (about 7 calls a miss)."""
    if not emails:
        return set()
    ids = await client.list_members_by_email(list_id, emails)
    if len(ids) >= len(emails):
        return set(emails)
    if len(emails) == 1 or not ids:
        return set()
    middle = len(emails) // 2
    return await _present(client, list_id, emails[:middle]) | await _present(
        client, list_id, emails[middle:]
    )


def record(
    store: HistoryStore, run_id: int, list_id: str, result: Verification, missing: Missing
) -> None:
    """Write the read-back: each missing row becomes not_in_list (its warning, if it had one,
    is folded into that line), and the counts go to the run's history. Blocks: use a thread."""
    warned = [(segment, row) for segment, row, was_warned, _ in missing if was_warned]
    store.drop_failures(run_id, RowState.IMPORTED_WITH_WARNINGS, warned)
    reason = (
        f"Klaviyo confirmed the import, but the profile was not in list {list_id} when the run "
        "read the list back (removed since, or merged into another profile)"
    )
    store.add_failures(
        run_id,
        (
            Reject(row, segment, "email" if email else "", email, reason, RowState.NOT_IN_LIST)
            for segment, row, _, email in missing
        ),
    )
    store.record_verification(run_id, result)


async def verify_run(
    client: KlaviyoClient,
    store: HistoryStore,
    run_id: int,
    list_id: str,
    collector: Collector,
    counts: dict[RowState, int],
    emit: Callable[[ProgressEvent], None],
) -> Verification:
    """Read the list back, record the result, and move each missing row's count from
    imported (or imported with warnings) to not_in_list."""
    if isinstance(collector, Expected):
        result, missing = await verify_full(client, list_id, collector, emit)
    else:
        result, missing = await verify_sample(client, list_id, collector, emit)
    await asyncio.to_thread(record, store, run_id, list_id, result, missing)
    warned = sum(1 for m in missing if m[2])
    for state, rows in (
        (RowState.IMPORTED_WITH_WARNINGS, warned),
        (RowState.IMPORTED, len(missing) - warned),
    ):
        moved = min(rows, counts[state])
        counts[state] -= moved
        counts[RowState.NOT_IN_LIST] += moved
    level = "warning" if result.missing else "info"
    emit(Notice(describe_verification(result.as_dict()), level=level))
    return result
