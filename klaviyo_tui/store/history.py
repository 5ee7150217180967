"""Run history, the resume journal, per-row failures and per-export state, in one SQLite file.

SQLite in WAL mode with synchronous=NORMAL: a killed process loses no committed transaction and
never corrupts the file (a power cut may lose the last few commits). One connection per store,
shared across threads behind a lock (the TUI calls it from thread workers, the engine via
`asyncio.to_thread`); other processes (cron, a second terminal) use their own connections. Read
paths open the store with `readonly=True` and never wait for a writer; a write waits for another
process's transaction within a bounded time, says who holds it, and gives up with `HistoryBusy`.
Opening, diagnosing damaged or foreign files and the errors themselves live in `history_open`,
the tables and their migrations in `history_schema`; the journal, the failures and the sync state
are mixed in from `history_journal`, `history_failures` and `export_state`.

A run left "running" by a killed process reads as "interrupted" (see `history_records`).

Privacy: failures keep the offending values (the user needs them to fix the rows). Successful
rows are never stored in plain text: the sync state (`export_state`, mixed in) holds keyed hashes
of each confirmed row's email and sent profile, keyed by a random per-install secret
(`row-hash.secret`, 0600, beside the database), so the file can't be used to test whether an
address was exported without that secret. The schema-1 `export_rows` table (one SQLite row per
customer, HMAC-SHA256) is kept for `record_confirmed`/`confirmed_rows`, but the sync modes use
the compact state instead: at 1M rows, a row per customer took 18 s to insert and 0.75 CPU-s to
load, the compact arrays take milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from klaviyo_tui.events import RunSummary
from klaviyo_tui.redaction import redact
from klaviyo_tui.run.locking import lock_holder
from klaviyo_tui.store import paths
from klaviyo_tui.store.export_state import ExportStateMixin
from klaviyo_tui.store.history_failures import FailuresMixin
from klaviyo_tui.store.history_journal import JournalMixin, ResendLog, Verification
from klaviyo_tui.store.history_open import (
    BUSY_TIMEOUT_S,
    WAIT_NOTICE_S,
    HistoryBusy,
    HistoryCorrupt,
    HistoryError,
    HistoryForeign,
    HistoryNewer,
    HistoryReadOnly,
    connect_reader,
    connect_writer,
    execute_waiting,
    inspect,
    load_or_create_secret,
    translate,
)
from klaviyo_tui.store.history_records import (
    DUPLICATE_REASON,
    RESUMABLE_FAILURES,
    RUN_COLUMNS,
    STATUS_BY_EXIT,
    BatchRecord,
    RunRecord,
    record_of,
)
from klaviyo_tui.store.history_schema import SCHEMA_VERSION, upgrade
from klaviyo_tui.store.phone_memo import PhoneMemoMixin

__all__ = [
    "BUSY_TIMEOUT_S",
    "DUPLICATE_REASON",
    "SCHEMA_VERSION",
    "WAIT_NOTICE_S",
    "BatchRecord",
    "HistoryBusy",
    "HistoryCorrupt",
    "HistoryError",
    "HistoryForeign",
    "HistoryNewer",
    "HistoryReadOnly",
    "HistoryStore",
    "ResendLog",
    "RunRecord",
    "Verification",
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class HistoryStore(JournalMixin, FailuresMixin, ExportStateMixin, PhoneMemoMixin):
    """The history database. Thread-safe; open one per process (or per screen) and `close()`.

    `readonly=True` (or `open_for_reading()`) is for screens and commands that only look: it
    never creates, migrates or write-locks the file, so it works on a read-only file and while
    another process writes. A writable store refuses a read-only file at once
    (`HistoryReadOnly`), so a run stops before it starts. A write that finds the lock taken waits
    up to `timeout` seconds; after `wait_notice` seconds `on_wait(message)` is called once, from
    the writing thread, with who holds it; then `HistoryBusy` names the holder.
    Every failure is a `HistoryError` (an `AppError`) with a hint; the file is never changed
    unless it is an empty file or our own schema.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        readonly: bool = False,
        on_wait: Callable[[str], None] | None = None,
        timeout: float = BUSY_TIMEOUT_S,
        wait_notice: float = WAIT_NOTICE_S,
    ) -> None:
        self.path = path or paths.history_path()
        self.readonly = readonly
        self.on_wait = on_wait
        self.timeout = timeout
        self.wait_notice = wait_notice
        self._lock = threading.RLock()
        self._secret: bytes | None = None
        if readonly:
            self._db = connect_reader(self.path, timeout)
            self._db.row_factory = sqlite3.Row
            # an older file is read as it is (a reader never migrates): its missing columns
            # read as their defaults
            self.version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            return
        self.version = SCHEMA_VERSION
        self._db, version = connect_writer(self.path, timeout)
        self._db.row_factory = sqlite3.Row
        try:
            self._prepare(version)
        except sqlite3.Error as exc:
            self._db.close()
            raise translate(exc, self.path) from None
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open_for_reading(
        cls, path: Path | None = None, *, timeout: float = BUSY_TIMEOUT_S
    ) -> HistoryStore:
        """A store for looking only (history lists, a run's details, the Home screen)."""
        return cls(path, readonly=True, timeout=timeout)

    def _execute_waiting(self, statement: str) -> None:
        execute_waiting(
            self._db,
            self.path,
            statement,
            timeout=self.timeout,
            wait_notice=self.wait_notice,
            on_wait=self.on_wait,
        )

    def _prepare(self, version: int) -> None:
        """Connection pragmas, then the schema if the file is empty, or the migration steps if
        it is an older version of ours. Only that takes the write lock; a file already in WAL
        mode with the current schema is used as it is."""
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA synchronous = NORMAL")
        if str(self._db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            # Switching to WAL takes an exclusive lock that SQLite's busy handler does not wait
            # for: two stores opening a fresh file at once retry within the bounded wait.
            self._execute_waiting("PRAGMA journal_mode = WAL")
        if version == SCHEMA_VERSION:
            return
        with self._tx() as db:
            found = inspect(db, self.path)  # another process may have upgraded it meanwhile
            if found < SCHEMA_VERSION:
                upgrade(db, found)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of failing."""
        if self.readonly:
            raise HistoryReadOnly(f"the history database {self.path} was opened for reading")
        with self._lock:
            try:
                self._execute_waiting("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path) from None
                raise

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- runs ------------------------------------------------------------------------------

    def start_run(
        self, *, export: str, connection: str, list_id: str, dry_run: bool = False
    ) -> int:
        """A new run in state "running". Call it while holding `export_lock(export)`."""
        with self._tx() as db:
            locked, holder = lock_holder(export)
            if locked and holder == os.getpid():  # we hold the lock: older "running" rows are dead
                db.execute(
                    "UPDATE runs SET status = 'interrupted' "
                    "WHERE export = ? AND status = 'running'",
                    (export,),
                )
            cursor = db.execute(
                "INSERT INTO runs (export, connection, list_id, started_at, status, dry_run, pid) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (export, connection, list_id, _now(), int(dry_run), os.getpid()),
            )
            return int(cursor.lastrowid or 0)

    def reopen_run(self, run_id: int) -> None:
        """Resume: the run is "running" again, in this process."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL, pid = ? WHERE id = ?",
                (os.getpid(), run_id),
            )

    def finish_run(self, run_id: int, summary: RunSummary) -> None:
        status = STATUS_BY_EXIT.get(summary.exit_code, "failed")
        counts = {str(k): int(v) for k, v in summary.counts.items()}
        error = redact(summary.error) if summary.error else None
        rejects = str(summary.rejects_path) if summary.rejects_path else None
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, ended_at = ?, counts = ?, duration_s = ?, "
                "exit_code = ?, error = ?, rejects_path = ?, jobs = ? WHERE id = ?",
                (
                    status,
                    _now(),
                    json.dumps(counts),
                    summary.duration_s,
                    int(summary.exit_code),
                    error,
                    rejects,
                    summary.jobs,
                    run_id,
                ),
            )

    def run(self, run_id: int) -> RunRecord | None:
        rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return record_of(rows[0]) if rows else None

    def runs(self, export: str | None = None, limit: int = 200) -> list[RunRecord]:
        """Newest first."""
        if export is None:
            rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._query(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE export = ? ORDER BY id DESC LIMIT ?",
                (export, limit),
            )
        return [record_of(row) for row in rows]

    def resumable_run(self, export: str) -> RunRecord | None:
        """The export's latest real (not dry) run, if it was interrupted or killed, failed because
        Klaviyo refused the key or was unavailable (their messages say to resume), or ended
        partial with batches Klaviyo never confirmed (resuming asks about them again)."""
        rows = self._query(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE export = ? AND dry_run = 0 "
            "ORDER BY id DESC LIMIT 1",
            (export,),
        )
        if not rows:
            return None
        record = record_of(rows[0])
        if record.status == "interrupted":
            return record
        if record.status == "failed" and record.exit_code in RESUMABLE_FAILURES:
            return record
        if record.status == "partial" and self.unconfirmed_batches(record.id):
            return record
        return None

    # ---- per-export state (keyed hashes only) ----------------------------------------------

    def _hash_secret(self) -> bytes:
        if self._secret is None:
            secret = self.path.parent / "row-hash.secret"
            try:
                if self.readonly:  # looking must not create the install's secret
                    self._secret = secret.read_bytes()
                else:
                    self._secret = load_or_create_secret(secret)
            except OSError as exc:
                raise HistoryError(
                    f"cannot read the row-hash secret {secret}: {exc.strerror or exc}",
                    hint="It sits beside the history database; check that folder's permissions.",
                ) from None
        return self._secret

    def keyed_hash(self, value: str) -> bytes:
        """HMAC-SHA256 of `value` with this install's secret. Normalise `value` before calling."""
        return hmac.new(self._hash_secret(), value.encode("utf-8"), hashlib.sha256).digest()

    def record_confirmed(
        self, export: str, list_id: str, pairs: Iterable[tuple[bytes, bytes]], run_id: int
    ) -> None:
        """Remember (key_hash, row_hash) for rows Klaviyo confirmed in `run_id`."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO export_rows "
                "(export, list_id, key_hash, row_hash, first_run, last_run) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (export, list_id, key_hash) DO UPDATE SET "
                "row_hash = excluded.row_hash, last_run = excluded.last_run",
                ((export, list_id, k, r, run_id, run_id) for k, r in pairs),
            )

    def confirmed_rows(self, export: str, list_id: str) -> dict[bytes, bytes]:
        """key_hash -> row_hash of every row this tool confirmed for the export and list."""
        rows = self._query(
            "SELECT key_hash, row_hash FROM export_rows WHERE export = ? AND list_id = ?",
            (export, list_id),
        )
        return {bytes(row[0]): bytes(row[1]) for row in rows}
