"""Per-export sync state in the history database: what this tool confirmed, compactly.

What is stored (schema step 4 in history_schema):
- `sync_state`: per export, every row Klaviyo confirmed as a keyed hash of its identity (16
  bytes, the normalised email), of its sent profile (8 bytes) and, since source hashes, of the
  source values it was made from (8 more bytes in the same blob: run/sync/state.py reads both
  formats, 8 or 16 bytes an entry, and writes the second), as sorted arrays cut into
  chunks of at most `CHUNK_ENTRIES`. No email or other value is stored (run/sync/hashing.py:
  keyed with this install's secret). `sync_basis` says what the state is valid for (connection,
  list, mapping, subscribe settings) and how many entries it holds.
- `sync_runs`: each real run of an export with a sync basis, and whether its confirmed rows were
  merged into the state yet ("settled"). A run is settled when the next fresh run of the export
  starts, never while it could still be resumed: a resumed run must see the state its first
  start saw, to pack the same batches.
- `sync_batches`: the hashes of each batch a run packed (with its source rows, to leave out
  the rows a run's failures name), until the run is settled. Negative batch numbers hold the
  source hashes a run brought up to date for rows it did not send (run/sync/runner.py).
- `sync_removals`: the journal of mirror removals, one row per request of at most 1,000
  profile ids: planned -> sending -> done. Kept after settling, for `history show`.
- `sync_members`: per export, the members of its list as the last mirror removal read them
  (keyed hashes of their emails and their profile ids; run/sync/members.py), so the next one
  reads only who joined since.
- `runs.sync`: the run's sync figures as JSON (mode, added, updated, unchanged, removed, ...).

Mixed into `HistoryStore` (history.py), which provides the connection and transactions. Every
value here is bytes or JSON text; the arrays are built in run/sync/state.py.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

#: Entries per `sync_state` row: 24 MB a row, far below SQLite's 1 GB blob limit.
CHUNK_ENTRIES = 1_000_000
KEY_BYTES = 16
HASH_BYTES = 8


@dataclass(frozen=True, slots=True)
class StoredState:
    """An export's state as stored: `keys` (16 bytes each) and `hashes` (8 bytes each),
    aligned and sorted by key; `basis` is None when the export has none yet."""

    basis: dict[str, object] | None
    keys: bytes
    hashes: bytes
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class SyncBatchRecord:
    batch_no: int
    keys: bytes  # 16 bytes a row
    hashes: bytes  # 16 bytes a row: payload hash, source hash (8 in the first format)
    known: bytes  # 1 byte a row: the key was in the state when the batch was packed
    rows: bytes  # int64 source row numbers
    segments: list[tuple[str, int]]  # runs of (segment, count), in row order


@dataclass(frozen=True, slots=True)
class StoredMembers:
    """An export's list members as last read: `keys` (16 bytes each, sorted) and the profile
    ids, aligned; `joined_until` the latest `joined_group_at` seen (ISO 8601)."""

    list_id: str
    keys: bytes
    ids: list[str]
    joined_until: str | None


@dataclass(frozen=True, slots=True)
class RemovalRecord:
    batch_no: int
    state: str  # planned | sending | done
    profile_ids: list[str]
    keys: bytes  # 16 bytes per profile id, aligned


def _drop_hashes(db: sqlite3.Connection, export: str, runs: list[int]) -> None:
    """Delete the export's state and the settled runs' batch hashes with `secure_delete` at
    FAST: Debian's SQLite zeroes every freed page, which wrote the old state and the runs'
    batches again as zeroes (34 MB for a first run of 1M rows; written twice: WAL, checkpoint),
    for pages of keyed hashes (no personal data) that the new state mostly reuses in this same
    transaction. Restored after: other tables hold source values, zeroed when deleted."""
    before = int(db.execute("PRAGMA secure_delete").fetchone()[0])
    db.execute("PRAGMA secure_delete = FAST")
    try:
        db.execute("DELETE FROM sync_state WHERE export = ?", (export,))
        for run_id in runs:
            db.execute("DELETE FROM sync_batches WHERE run_id = ?", (run_id,))
    finally:
        db.execute(f"PRAGMA secure_delete = {before}")


class ExportStateMixin:
    """Sync-state methods of HistoryStore."""

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def _has_sync_tables(self) -> bool:
        """A reader may hold a schema-1 file (it never migrates): no tables, no sync data."""
        rows = self._query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_runs'"
        )
        return bool(rows)

    # ---- the state ---------------------------------------------------------------------------

    def sync_state(self, export: str) -> StoredState:
        if not self._has_sync_tables():
            return StoredState(None, b"", b"")
        head = self._query("SELECT basis, run_id FROM sync_basis WHERE export = ?", (export,))
        if not head:
            return StoredState(None, b"", b"")
        chunks = self._query(
            "SELECT keys, hashes FROM sync_state WHERE export = ? ORDER BY chunk", (export,)
        )
        return StoredState(
            json.loads(head[0]["basis"]),
            b"".join(bytes(c["keys"]) for c in chunks),
            b"".join(bytes(c["hashes"]) for c in chunks),
            head[0]["run_id"],
        )

    def settle_sync(
        self,
        export: str,
        basis: dict[str, object],
        keys: bytes,
        hashes: bytes,
        runs: Iterable[int],
    ) -> None:
        """Replace the export's state and mark `runs` settled (their batch hashes are dropped),
        in one transaction: a crash leaves either the old state or the new one."""
        runs = list(runs)
        entries = len(keys) // KEY_BYTES
        width = len(hashes) // entries if entries else HASH_BYTES  # 8 or 16 (state.py)
        key_view, hash_view = memoryview(keys), memoryview(hashes)  # chunks without copies
        with self._tx() as db:
            _drop_hashes(db, export, runs)  # first: the new state reuses the pages they free
            for chunk, start in enumerate(range(0, max(entries, 1), CHUNK_ENTRIES)):
                end = min(start + CHUNK_ENTRIES, entries)
                db.execute(
                    "INSERT INTO sync_state (export, chunk, keys, hashes) VALUES (?, ?, ?, ?)",
                    (
                        export,
                        chunk,
                        key_view[start * KEY_BYTES : end * KEY_BYTES],
                        hash_view[start * width : end * width],
                    ),
                )
            db.execute(
                "INSERT INTO sync_basis (export, basis, entries, run_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (export) DO UPDATE SET basis = excluded.basis, "
                "entries = excluded.entries, run_id = excluded.run_id, "
                "updated_at = excluded.updated_at",
                (
                    export,
                    json.dumps(basis, sort_keys=True),
                    entries,
                    max(runs) if runs else None,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
            for run_id in runs:
                db.execute("UPDATE sync_runs SET settled = 1 WHERE run_id = ?", (run_id,))

    # ---- runs ----------------------------------------------------------------------------------

    def sync_run_opened(self, run_id: int, export: str, basis: dict[str, object]) -> None:
        """Remember the run and its basis (kept as it was when a run is resumed)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO sync_runs (run_id, export, basis) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, export, json.dumps(basis, sort_keys=True)),
            )

    def forget_sync(self, export: str) -> None:
        """The export was removed: what it added to its list is forgotten, so a new export of
        the same name starts afresh (a mirror never removes what the old one added). Its runs
        stay in the history."""
        if not self._has_sync_tables():
            return
        with self._tx() as db:
            for table in ("sync_state", "sync_basis", "sync_members", "sync_phone_memo"):
                db.execute(f"DELETE FROM {table} WHERE export = ?", (export,))  # noqa: S608
            db.execute("UPDATE sync_runs SET settled = 1 WHERE export = ?", (export,))

    def unsettled_sync_runs(
        self, export: str, *, but: int | None = None
    ) -> list[tuple[int, dict[str, object]]]:
        """(run id, basis) of the export's runs not merged into its state yet, oldest first."""
        if not self._has_sync_tables():
            return []
        rows = self._query(
            "SELECT run_id, basis FROM sync_runs WHERE export = ? AND settled = 0 ORDER BY run_id",
            (export,),
        )
        return [(r[0], json.loads(r[1])) for r in rows if r[0] != but]

    def set_run_sync(self, run_id: int, figures: dict[str, object]) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET sync = ? WHERE id = ?", (json.dumps(figures), run_id))

    def run_sync(self, run_id: int) -> dict[str, object]:
        """The run's sync figures ({} for a run before sync modes, or a schema-1 file)."""
        return self.runs_sync([run_id]).get(run_id, {})

    def runs_sync(self, run_ids: Iterable[int]) -> dict[int, dict[str, object]]:
        ids = list(run_ids)
        if not ids or not self._has_sync_tables():
            return {}
        out: dict[int, dict[str, object]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ", ".join("?" * len(part))
            rows = self._query(
                f"SELECT id, sync FROM runs WHERE id IN ({marks}) AND sync IS NOT NULL",
                tuple(part),
            )
            out.update({r[0]: json.loads(r[1]) for r in rows})
        return out

    # ---- batches -------------------------------------------------------------------------------

    def sync_batch(self, run_id: int, batch_no: int, record: SyncBatchRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO sync_batches (run_id, batch_no, keys, hashes, known, rows, segments) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, batch_no) DO UPDATE SET "
                "keys = excluded.keys, hashes = excluded.hashes, known = excluded.known, "
                "rows = excluded.rows, segments = excluded.segments",
                (
                    run_id,
                    batch_no,
                    record.keys,
                    record.hashes,
                    record.known,
                    record.rows,
                    json.dumps(record.segments),
                ),
            )

    def sync_batches(
        self, run_id: int, *, with_keys: bool = True, refreshes: bool = False
    ) -> list[SyncBatchRecord]:
        """The run's journaled batches; without `with_keys`, their keys and hashes are empty
        (counting confirmed rows needs neither: 24 of the 34 bytes a row); with `refreshes`,
        only the source hashes brought up to date (negative numbers, not the sent batches)."""
        if not self._has_sync_tables():
            return []
        blobs = "keys, hashes" if with_keys else "X'', X''"
        which = " AND batch_no < 0" if refreshes else ""
        rows = self._query(
            f"SELECT batch_no, {blobs}, known, rows, segments FROM sync_batches "
            f"WHERE run_id = ?{which} ORDER BY batch_no",
            (run_id,),
        )
        return [
            SyncBatchRecord(
                r[0],
                bytes(r[1]),
                bytes(r[2]),
                bytes(r[3]),
                bytes(r[4]),
                [(str(s), int(n)) for s, n in json.loads(r[5])],
            )
            for r in rows
        ]

    def failed_rows(self, run_id: int, *, but: Iterable[str] = ()) -> list[tuple[str, int]]:
        """(segment, row) of every failure of the run, except those in states `but`."""
        skip = sorted(set(but))
        marks = ", ".join("?" * len(skip))
        rows = self._query(
            "SELECT segment, row FROM failures WHERE run_id = ?"
            + (f" AND state NOT IN ({marks})" if skip else ""),
            (run_id, *skip),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    # ---- removals ------------------------------------------------------------------------------

    def removals_planned(self, run_id: int, batches: Iterable[tuple[list[str], bytes]]) -> None:
        """Journal every removal request of the run before the first is sent (one transaction)."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO sync_removals (run_id, batch_no, state, profile_ids, keys) "
                "VALUES (?, ?, 'planned', ?, ?)",
                ((run_id, n, json.dumps(ids), keys) for n, (ids, keys) in enumerate(batches)),
            )

    def removal_state(self, run_id: int, batch_no: int, state: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE sync_removals SET state = ? WHERE run_id = ? AND batch_no = ?",
                (state, run_id, batch_no),
            )

    def removal_kept(self, run_id: int, batch_no: int, ids: list[str], keys: bytes) -> None:
        """A resumed batch without the profiles found back in the segment."""
        with self._tx() as db:
            db.execute(
                "UPDATE sync_removals SET profile_ids = ?, keys = ? "
                "WHERE run_id = ? AND batch_no = ?",
                (json.dumps(ids), keys, run_id, batch_no),
            )

    def removals(self, run_id: int) -> list[RemovalRecord]:
        if not self._has_sync_tables():
            return []
        rows = self._query(
            "SELECT batch_no, state, profile_ids, keys FROM sync_removals WHERE run_id = ? "
            "ORDER BY batch_no",
            (run_id,),
        )
        return [RemovalRecord(r[0], r[1], list(json.loads(r[2])), bytes(r[3])) for r in rows]

    # ---- the list's members, for mirror removals ----------------------------------------------

    def sync_members(self, export: str) -> StoredMembers | None:
        rows = self._query(
            "SELECT list_id, keys, ids, joined_until FROM sync_members WHERE export = ?", (export,)
        )
        if not rows:
            return None
        text = rows[0]["ids"]
        ids = text.split("\n") if text else []
        return StoredMembers(
            rows[0]["list_id"], bytes(rows[0]["keys"]), ids, rows[0]["joined_until"]
        )

    def save_sync_members(self, export: str, members: StoredMembers) -> None:
        """Replace what the export knows of its list's members (one list at a time)."""
        with self._tx() as db:
            db.execute("DELETE FROM sync_members WHERE export = ?", (export,))
            db.execute(
                "INSERT INTO sync_members (export, list_id, keys, ids, joined_until, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    export,
                    members.list_id,
                    members.keys,
                    "\n".join(members.ids),
                    members.joined_until,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
