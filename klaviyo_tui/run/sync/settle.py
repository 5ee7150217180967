"""Which rows of a run Klaviyo confirmed, and merging finished runs into the export's state.

A row counts as confirmed when its batch's job finished and no failure of the run names it
(rejected, unconfirmed, subscription unconfirmed, not in the list, ...); only
`imported_with_warnings` still counts. A batch whose failures Klaviyo did not itemise (it counted
more failed rows than it named) is left out whole: its rows are sent again next time, which is
harmless, where recording a failed row as sent would hide it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from klaviyo_tui.run.sync.options import same_place
from klaviyo_tui.run.sync.state import SyncState, keys_from, pairs_from, rows_of
from klaviyo_tui.store.export_state import SyncBatchRecord
from klaviyo_tui.store.history import HistoryStore

#: Failure states whose rows are nevertheless in Klaviyo as sent.
CONFIRMED_FAILURE_STATES = frozenset({"imported_with_warnings"})


@dataclass
class Confirmed:
    """A run's confirmed rows: keys, row hashes, and whether each key was known before."""

    keys: np.ndarray
    hashes: np.ndarray
    known: np.ndarray
    positions: dict[int, np.ndarray]  # batch number -> mask of its confirmed rows
    sources: np.ndarray  # source hashes (0: none)

    @property
    def added(self) -> int:
        return int((~self.known).sum())

    @property
    def updated(self) -> int:
        return int(self.known.sum())


def _failed(store: HistoryStore, run_id: int) -> dict[str, np.ndarray]:
    """Each segment's failed rows, sorted, in one array built once (not once per batch)."""
    out: dict[str, list[int]] = {}
    for segment, row in store.failed_rows(run_id, but=CONFIRMED_FAILURE_STATES):
        out.setdefault(segment, []).append(row)
    return {segment: np.unique(np.asarray(rows, np.int64)) for segment, rows in out.items()}


def _mask(record: SyncBatchRecord, failed: dict[str, np.ndarray]) -> np.ndarray:
    rows = np.frombuffer(record.rows, np.int64)
    ok = np.ones(len(rows), bool)
    start = 0
    for segment, count in record.segments:
        bad = failed.get(segment)
        if bad is not None and len(bad):
            part = rows[start : start + count]
            at = np.minimum(np.searchsorted(bad, part), len(bad) - 1)  # `bad` is sorted
            ok[start : start + count] = bad[at] != part
        start += count
    return ok


def _confirmed_batches(
    store: HistoryStore, run_id: int, *, with_keys: bool
) -> Iterator[tuple[SyncBatchRecord, np.ndarray]]:
    """Each finished batch whose failures are all itemised, with the mask of its confirmed rows."""
    journal = store.journal(run_id)
    failed = _failed(store, run_id)
    for record in store.sync_batches(run_id, with_keys=with_keys):
        entry = journal.get(record.batch_no)  # none for a refresh (negative number)
        if record.batch_no < 0 or entry is None or entry.state != "finished":
            continue
        mask = _mask(record, failed)
        sent_ok = entry.imported + int(getattr(entry, "warned", 0))
        if int(mask.sum()) != sent_ok:  # failures not all itemised: trust none of the batch
            continue
        yield record, mask


def _known(record: SyncBatchRecord, mask: np.ndarray) -> np.ndarray:
    known: np.ndarray = np.frombuffer(record.known, np.uint8).astype(bool)[mask]
    return known


def confirmed_of(store: HistoryStore, run_id: int) -> Confirmed:
    keys, hashes, sources, known = [], [], [], []
    positions: dict[int, np.ndarray] = {}
    for record, mask in _confirmed_batches(store, run_id, with_keys=True):
        positions[record.batch_no] = mask
        batch_keys = keys_from(record.keys)
        payload, source = pairs_from(record.hashes, len(batch_keys))
        keys.append(rows_of(batch_keys, mask))
        hashes.append(payload[mask])
        sources.append(source[mask])
        known.append(_known(record, mask))
    if not keys:
        z = np.zeros(0, np.uint64)
        return Confirmed(np.zeros((0, 2), np.uint64), z, np.zeros(0, bool), positions, z)
    return Confirmed(
        np.concatenate(keys),
        np.concatenate(hashes),
        np.concatenate(known),
        positions,
        np.concatenate(sources),
    )


def confirmed_counts(store: HistoryStore, run_id: int) -> tuple[int, int]:
    """(added, updated) as `confirmed_of` counts them, without reading or joining the keys and
    hashes: the summary needs only these (at 1M rows, ~60 MB less at the end of a run)."""
    added = updated = 0
    for record, mask in _confirmed_batches(store, run_id, with_keys=False):
        known = _known(record, mask)
        updated += int(known.sum())
        added += len(known) - int(known.sum())
    return added, updated


def refreshed_of(store: HistoryStore, run_id: int) -> SyncState:
    """The source hashes the run brought up to date for rows it skipped by their payload hash
    (runner.py, `_refresh`: journaled as batches with negative numbers), unsorted."""
    parts = store.sync_batches(run_id, refreshes=True)
    keys = [keys_from(r.keys) for r in parts]
    pairs = [pairs_from(r.hashes, len(k)) for r, k in zip(parts, keys, strict=True)]
    if not parts:
        return SyncState.empty()
    return SyncState(
        np.concatenate(keys),
        np.concatenate([p[0] for p in pairs]),
        np.concatenate([p[1] for p in pairs]),
    )


def removed_of(store: HistoryStore, run_id: int, *, in_flight: bool = False) -> np.ndarray:
    """Keys of the run's removals that reached Klaviyo ("done"), and with `in_flight` those
    that may have ("sending": sent when the run was stopped)."""
    states = ("done", "sending") if in_flight else ("done",)
    done = [keys_from(r.keys) for r in store.removals(run_id) if r.state in states]
    return np.concatenate(done) if done else np.zeros((0, 2), np.uint64)


def settle(
    store: HistoryStore, export: str, *, but: int | None, persist: bool
) -> tuple[SyncState, dict[str, object] | None]:
    """The export's state with every unsettled run (except `but`, the run being resumed)
    merged in: written back when `persist` (a fresh real run), in memory only otherwise."""
    stored = store.sync_state(export)
    state = SyncState.of(stored.keys, stored.hashes)
    basis = stored.basis
    pending = store.unsettled_sync_runs(export, but=but)
    for run_id, run_basis in pending:
        if basis is None or not same_place(basis, run_basis):
            state = SyncState.empty()  # another list or account: nothing added there yet
        confirmed = confirmed_of(store, run_id)
        fresh = refreshed_of(store, run_id)  # rows not sent: no key is also in `confirmed`
        state = state.merged(fresh.keys, fresh.hashes, fresh.sources)
        merged = state.merged(confirmed.keys, confirmed.hashes, confirmed.sources)
        state = merged.without(removed_of(store, run_id))
        basis = run_basis
    if pending and persist and basis is not None:
        store.settle_sync(
            export, basis, state.key_bytes(), state.hash_bytes(), [r for r, _ in pending]
        )
    return state, basis
