"""One run's sync work, called from the engine's hooks (each marked "sync hook" there).

- `open` (before reading): merges finished earlier runs into the export's state (settle.py),
  and decides whether rows confirmed before can be skipped (incremental) or the run is full,
  and why (the mapping, list, connection or subscribe settings changed; --full, --verify; a
  resumed run is full when its first start was).
- `before_reading`, `on_keys`, `presence_ready`, `unchanged`, `filter`, `packed` (reading
  thread): the consent pass (subscribe), every segment key from the pipeline's first pass
  (mirror), the removal limits checked before the first batch, each chunk's de-duplicated rows
  skipped before validation when their source values are those a confirmed row was made from
  (`unchanged`: the cheap path of an incremental run), the rest hashed once serialized and
  compared with the state in bulk (`filter`), and each packed batch's hashes journaled.
- `after_import` (event loop, after every job is confirmed): mirror removals, then
  subscriptions and their read-back.
- `figures` and `record`: added / updated / removed / ... for the summary and the history.

Counts add up: every valid row is sent (imported, rejected, not sent, ...) or `unchanged`. A
row is skipped by its source hash only when it would be skipped by its payload hash too: the
hash's key covers all else that shapes a payload (`source_context`), a row whose identifier is
shared with another customer this run is never skipped that way (and is stored with source
hash 0, so the next run does not skip it that way either), and neither are rows of a run that
subscribes (consent is checked per row) or retries failed rows. Rows that miss this path
(changed, new, or from a state stored before source hashes) go by their payload hash as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from klaviyo_tui.events import Notice, ProgressEvent, Reject, RowState
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.input.identifiers import sorted_contains
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.run.sync import mirror, plan
from klaviyo_tui.run.sync.hashing import Hasher
from klaviyo_tui.run.sync.options import MassRemoval, SyncOptions, basis_of, same_place, why_full
from klaviyo_tui.run.sync.phonememo import PhoneMemo
from klaviyo_tui.run.sync.queue import HashQueue
from klaviyo_tui.run.sync.settle import confirmed_counts, confirmed_of, removed_of, settle
from klaviyo_tui.run.sync.sources import source_context, sources_of
from klaviyo_tui.run.sync.state import SyncState, pair_bytes
from klaviyo_tui.run.sync.subscribe import (
    ConsentTimes,
    SubRow,
    consent_problems,
    phones_of,
    read_consent,
    subscribe,
)
from klaviyo_tui.store.config import Connection, Export, Segment
from klaviyo_tui.store.export_state import SyncBatchRecord
from klaviyo_tui.store.history import HistoryStore

_NAT = np.iinfo(np.int64).min


class SyncRun:
    def __init__(
        self,
        export: Export,
        connection: Connection,
        store: HistoryStore,
        run_id: int,
        options: SyncOptions,
        *,
        dry_run: bool,
        resumed: bool,
        counts: dict[RowState, int],
        emit: Callable[[ProgressEvent], None],
        others: tuple[str, ...] = (),
    ) -> None:
        settings = export.sync
        if options.mode is not None:
            settings = replace(settings, mode=options.mode)
        self.export, self.connection, self.store = export, connection, store
        self.run_id, self.options, self.settings = run_id, options, settings
        self.dry_run, self.resumed, self.counts, self.emit = dry_run, resumed, counts, emit
        self.mirror, self.subscribe = settings.mirror, settings.subscribe
        self.others = list(others)  # the other exports of this list (mirror.others_keys)
        self.others_keys = np.zeros((0, 2), np.uint64)
        self.kept_for_others = 0
        self.incremental = settings.incremental  # a run may still send every row: full_reason
        self.state = SyncState.empty()
        self.skip = False  # rows confirmed before with the same hash are skipped
        self.by_source = False  # ... and found so before validation, by their source hash
        self.phones: PhoneMemo | None = None  # the phones seen before (phonememo.py)
        self._context: tuple[dict[str, str], str] | None = None
        self._fresh: tuple[np.ndarray, np.ndarray] | None = None  # (rows, source hashes)
        self._skipped = 0  # rows `unchanged` skipped that `filter` has not counted yet
        self.unchanged_by_source = 0
        self._refreshes = 0  # records of source hashes brought up to date (`_refresh`)
        self.full_reason: str | None = None
        self.list_size: int | None = None  # a mirror's list, before the run
        self.consent: ConsentTimes | None = None
        self.present_first = np.zeros(0, np.uint64)
        self._present: list[np.ndarray] = []
        self._ready = False
        self.leavers = SyncState.empty()
        self.refused: str | None = None
        self.planned = {"added": 0, "updated": 0, "unchanged": 0}
        self.removed = self.subscribed = 0
        self._queue = HashQueue()
        self._subs: dict[int, list[SubRow]] = {}
        self.hasher: Hasher

    # ---- before reading -------------------------------------------------------------------

    async def start(self) -> SyncRun:
        """Settle earlier runs and load the state (in a thread); say why a run is full."""
        await asyncio.to_thread(self._open)
        if self.full_reason:
            self.emit(Notice(f"sending every row once: {self.full_reason}"))
        return self

    def _open(self) -> None:
        store, name = self.store, self.export.name
        self.hasher = Hasher.of(store)
        basis = basis_of(self.export, self.connection)
        if not self.dry_run:
            store.sync_run_opened(self.run_id, name, basis)
        if self.resumed:
            store.clear_failures(self.run_id, [RowState.SUBSCRIPTION_UNCONFIRMED])
        state, stored = settle(store, name, but=self.run_id, persist=not self.dry_run)
        if self.resumed:  # profiles this run may have removed are not in the list any more
            state = state.without(removed_of(store, self.run_id, in_flight=True))
        if stored is not None and same_place(stored, basis):
            self.state = state  # what this tool added to this very list
        if self.mirror and self.others:
            self.others_keys = mirror.others_keys(store, self.others, basis)
        reason = why_full(stored, basis, empty=len(self.state) == 0) or self.options.forced
        if self.resumed:  # it packs the batches its first start packed: full if that was
            reason = reason or SyncOptions.full_before(store.run_sync(self.run_id))
        elif (reason or self.options.retry_of) and not self.dry_run:  # for --resume, after a kill
            store.set_run_sync(self.run_id, {"full_reason": reason, **self.options.retried})
        if self.settings.incremental and self.options.retry_of is None:  # a retry sends its rows
            self.full_reason = reason
        self.skip = self.incremental and reason is None
        self.by_source = self.skip and self.subscribe is None
        self.phones = PhoneMemo.of(store, self.export, deferring=self.by_source)

    async def prepare(self, client: KlaviyoClient) -> None:
        """Mirror: the list's size, the base of `max_removal_ratio`."""
        if self.mirror:
            _, self.list_size = await client.list_with_count(self.export.list_id)

    # ---- the reading thread ---------------------------------------------------------------

    def before_reading(self, segments: list[Segment]) -> None:
        sub = self.subscribe
        if sub is not None and sub.consented_at_column:
            column = sub.consented_at_column
            self.consent = read_consent(self.export, segments, column, self.hasher)

    def on_keys(self, keys: pa.Array) -> None:
        """Every normalised email of the segment (the pipeline's first pass; nulls included)."""
        valid = keys.filter(keys.is_valid())
        if len(valid):
            self._present.append(self.hasher.keys(valid)[:, 0])

    def presence_ready(self) -> None:
        """The whole segment is known: find who left, and refuse before anything is sent."""
        if self._ready:
            return
        self._ready = True
        if self.phones is not None and not self.dry_run:
            self.phones.save(self.store, self.export.name)
        if not self.mirror:
            return
        parts = self._present
        self.present_first = np.unique(np.concatenate(parts)) if parts else self.present_first
        self._present = []
        absent = self.state.absent(self.present_first)
        leavers = SyncState(self.state.keys[absent], self.state.hashes[absent])
        self.leavers = leavers.without(self.others_keys)
        self.kept_for_others = len(leavers) - len(self.leavers)
        message = mirror.refusal(
            self.export.name,
            len(self.leavers),
            self.list_size,
            len(self.state),
            len(self.present_first) == 0,
            self.settings,
        )
        if message and not self.options.allow_mass_removal:
            if not self.dry_run:
                raise MassRemoval(message)
            self.refused = message

    def present(self, keys: np.ndarray) -> np.ndarray:
        return sorted_contains(self.present_first, keys[:, 0])

    def unchanged(
        self,
        df: pd.DataFrame,
        emails: pa.Array,
        shared: dict[str, np.ndarray],
        kinds: dict[str, str],
    ) -> np.ndarray:
        """Sync hook (the full pass, before validation): mask of the chunk's de-duplicated rows
        confirmed before from these very source values, skipped unseen. Works out every row's
        source hash (for `filter` to journal) whenever the export is incremental."""
        n = len(df)
        skip = np.zeros(n, bool)
        self._fresh = None
        if not self.settings.incremental or n == 0:
            return skip
        if self._context is None or self._context[0] != kinds:
            self._context = (dict(kinds), source_context(self.export, kinds))
        sources = self.hasher.sources(df, self.export.mapping.columns(), self._context[1])
        for mask in shared.values():  # a shared identifier's fate depends on other rows
            sources[mask] = 0
        if self.by_source:
            at = np.flatnonzero(emails.is_valid().to_numpy(zero_copy_only=False) & (sources != 0))
            keys = self.hasher.keys(emails.take(pa.array(at)))
            skip[at] = self.state.same_source(keys, sources[at])
        self._fresh = (np.asarray(df.index, np.int64)[~skip], sources[~skip])
        self._skipped += int(skip.sum())
        self.unchanged_by_source += int(skip.sum())
        return skip

    def _refresh(self, keys: np.ndarray, hashes: np.ndarray, sources: np.ndarray) -> None:
        """Rows skipped by their payload hash whose source hash is not the stored one (a state
        from before source hashes; a change that leaves the payload as it was): journaled with
        a negative batch number, merged into the state when the run is settled, so the next
        run skips them before validation."""
        if self.dry_run or not len(keys):
            return
        self._refreshes += 1
        number = -self._refreshes
        key_bytes = np.ascontiguousarray(keys).tobytes()
        known = np.ones(len(keys), np.uint8).tobytes()
        record = SyncBatchRecord(number, key_bytes, pair_bytes(hashes, sources), known, b"", [])
        self.store.sync_batch(self.run_id, number, record)

    def filter(
        self, segment: str, payloads: pa.Array, rows: np.ndarray, emails: pa.Array
    ) -> tuple[np.ndarray, list[Reject], int]:
        """Which rows to send (a mask), consent refusals, and how many rows are unchanged
        (with those `unchanged` skipped before validation)."""
        skipped, self._skipped = self._skipped, 0
        keys = self.hasher.keys(emails)
        hashes = self.hasher.rows(payloads)
        fresh, self._fresh = self._fresh, None
        sources = sources_of(fresh, rows)
        known, unchanged = self.state.classify(keys, hashes)
        if not self.skip:
            unchanged[:] = False
        refused = np.zeros(len(keys), bool)
        rejects: list[Reject] = []
        consent = np.full(len(keys), _NAT, np.int64)
        phones: list[str | None] = [None] * len(keys)
        sub = self.subscribe
        if sub is not None:
            if self.consent is not None:
                consent = self.consent.lookup(keys)
            if sub.historical:
                now = int(datetime.now(UTC).timestamp() * 1e9)
                raw = self.consent.raw if self.consent else {}
                for i, value, reason in consent_problems(sub, consent, keys, raw, now):
                    refused[i] = True
                    column = sub.consented_at_column or ""
                    rejects.append(Reject(int(rows[i]), segment, column, value, reason))
            if sub.sms:
                phones = phones_of(payloads)
                if sub.channel == "sms":
                    for j in np.flatnonzero(~refused).tolist():
                        if phones[j] is None:
                            refused[j] = True
                            reason = "no phone number to subscribe to SMS marketing"
                            rejects.append(
                                Reject(int(rows[j]), segment, "phone_number", "", reason)
                            )
        unchanged &= ~refused
        if self.settings.incremental and unchanged.any():
            at = np.flatnonzero(unchanged & (sources != 0))
            _, idx = self.state.find(keys[at])
            at = at[self.state.sources[idx] != sources[at]] if len(at) else at
            self._refresh(keys[at], hashes[at], sources[at])
        keep = ~unchanged & ~refused
        self.planned["added"] += int((keep & ~known).sum())
        self.planned["updated"] += int((keep & known).sum())
        self.planned["unchanged"] += int(unchanged.sum()) + skipped
        if not keep.all():
            phones = [phones[i] for i in np.flatnonzero(keep)]
        arrays = (keys[keep], hashes[keep], sources[keep], known[keep], consent[keep])
        self._queue.put(arrays, phones)
        rejects.sort(key=lambda r: r.row)
        return keep, rejects, int(unchanged.sum()) + skipped

    def packed(self, batches: list[Batch]) -> None:
        for batch in batches:
            (keys, hashes, sources, known, consent), phones = self._queue.take(batch.count)
            record = SyncBatchRecord(  # per-row Python lists only for subscriptions (below)
                batch.number,
                np.ascontiguousarray(keys).tobytes(),
                pair_bytes(hashes, sources),
                known.astype(np.uint8).tobytes(),
                batch.row_array.tobytes(),
                batch.segment_runs,
            )
            if self.dry_run:
                continue
            self.store.sync_batch(self.run_id, batch.number, record)
            if self.subscribe is not None:
                self._subs[batch.number] = [
                    SubRow(e, p, int(c), s, r)
                    for e, p, c, s, r in zip(
                        batch.emails, phones, consent, batch.segments, batch.rows, strict=True
                    )
                ]

    # ---- after the import ---------------------------------------------------------------------

    async def after_import(self, client: KlaviyoClient) -> None:
        if self.dry_run:
            return
        if self.kept_for_others:
            self.emit(Notice(mirror.kept_notice(self.kept_for_others, self.others)))
        if self.mirror:
            self.removed = await mirror.remove(
                client=client,
                store=self.store,
                run_id=self.run_id,
                export=self.export.name,
                list_id=self.export.list_id,
                leavers=self.leavers,
                present=self.present,
                hasher=self.hasher,
                emit=self.emit,
            )
        sub = self.subscribe
        if sub is None:
            return
        confirmed = await asyncio.to_thread(confirmed_of, self.store, self.run_id)
        rows = [
            self._subs[number][i]
            for number, mask in sorted(confirmed.positions.items())
            if number in self._subs
            for i in np.flatnonzero(mask)
        ]
        outcome = await subscribe(
            client, self.export.list_id, sub, rows, self.emit, self.options.subscribe_wait_s
        )
        self.subscribed = len(outcome.subscribed)
        if outcome.unconfirmed:
            rejects = [
                Reject(r.row, r.segment, "email", r.email, why, RowState.SUBSCRIPTION_UNCONFIRMED)
                for r, why in outcome.unconfirmed
            ]
            await asyncio.to_thread(self.store.add_failures, self.run_id, rejects)
            self.counts[RowState.IMPORTED] -= len(rejects)
            self.counts[RowState.SUBSCRIPTION_UNCONFIRMED] += len(rejects)

    # ---- the end ------------------------------------------------------------------------------

    def figures(self) -> dict[str, object]:
        """The run's sync figures for its summary (reads the history: call from a thread or
        at the end)."""
        out: dict[str, object] = {
            "mode": self.settings.mode,
            "incremental": self.incremental,
            "full_reason": self.full_reason,
            "unchanged": self.planned["unchanged"],
            "unchanged_by_source": self.unchanged_by_source,  # of those: never validated
            **self.options.retried,
        }
        if self.dry_run:
            out.update(added=self.planned["added"], updated=self.planned["updated"])
            if self.mirror:
                out.update(plan.removal_plan(len(self.leavers), self.list_size))
            if self.subscribe is not None:
                sent = self.planned["added"] + self.planned["updated"]
                out.update(plan.subscribe_plan(sent))
            if self.refused:
                out["refused"] = self.refused
            return out
        added, updated = confirmed_counts(self.store, self.run_id)
        out.update(added=added, updated=updated)
        if self.mirror:
            out.update(removed=self.removed, leavers=len(self.leavers))
            if self.kept_for_others:
                out["kept_for_other_exports"] = self.kept_for_others
        if self.subscribe is not None:
            out.update(
                subscribed=self.subscribed,
                subscription_unconfirmed=self.counts[RowState.SUBSCRIPTION_UNCONFIRMED],
            )
        return out

    def record(self, figures: dict[str, object]) -> None:
        self.store.set_run_sync(self.run_id, figures)
