"""Per export, the phones an incremental run need not normalise again (run/sync/phonememo.py).

Stored as two sorted arrays of keyed 64-bit hashes (schema step 6 in history_schema): the raw
value as read and what it normalised to (0: unusable). No phone number is stored: without this
install's secret the hashes tell nothing. Mixed into `HistoryStore` (history.py), like
export_state.py.
"""

from __future__ import annotations

import contextlib
import sqlite3

from klaviyo_tui.store.export_state import CHUNK_ENTRIES

ENTRY_BYTES = 8


class PhoneMemoMixin:
    """Phone-memo methods of HistoryStore."""

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def phone_memo(self, export: str) -> tuple[bytes, bytes]:
        """(raw hashes, normalised hashes), empty when there is none (or the file predates it)."""
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_phone_memo'"
        if not self._query(table):
            return b"", b""
        chunks = self._query(
            "SELECT raw, normalised FROM sync_phone_memo WHERE export = ? ORDER BY chunk",
            (export,),
        )
        return (
            b"".join(bytes(c["raw"]) for c in chunks),
            b"".join(bytes(c["normalised"]) for c in chunks),
        )

    def save_phone_memo(self, export: str, raw: bytes, normalised: bytes) -> None:
        """Replace the export's memo, in one transaction."""
        entries = len(raw) // ENTRY_BYTES
        raw_view, norm_view = memoryview(raw), memoryview(normalised)
        with self._tx() as db:
            db.execute("DELETE FROM sync_phone_memo WHERE export = ?", (export,))
            for chunk, start in enumerate(range(0, entries, CHUNK_ENTRIES)):
                end = min(start + CHUNK_ENTRIES, entries) * ENTRY_BYTES
                db.execute(
                    "INSERT INTO sync_phone_memo (export, chunk, raw, normalised) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        export,
                        chunk,
                        raw_view[start * ENTRY_BYTES : end],
                        norm_view[start * ENTRY_BYTES : end],
                    ),
                )
