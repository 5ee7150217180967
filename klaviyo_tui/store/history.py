"""Run history, the resume journal, per-row failures and per-export state, in one SQLite file.

SQLite in WAL mode with synchronous=NORMAL: a killed process loses no committed transaction and
never corrupts the file (a power cut may lose the last few commits). One connection per store,
shared across threads behind a lock (the TUI calls it from thread workers, the engine via
`asyncio.to_thread`); other processes (cron, a second terminal) use their own connections and
wait on `busy_timeout`.

A run left "running" by a killed process is reported as "interrupted": a run is only alive while
its export's lock (see `locking`) is held by the process that started it.

Privacy: failures keep the offending values (the user needs them to fix the rows). Successful
rows are never stored in plain text: `export_rows` holds HMAC-SHA256 digests keyed by a random
per-install secret (`row-hash.secret`, 0600, beside the database), so the file can't be used to
test whether an address was exported without that secret.

Designed for later modes on `export_rows(export, list_id, key_hash, row_hash, first_run, last_run)`:
- incremental: hash each row's identity (`key_hash`, e.g. the normalised email) and its sent
  attributes (`row_hash`); send only rows whose key is new or whose row_hash changed, then
  `record_confirmed` the confirmed ones.
- mirror: keys in `export_rows` for this export and list that are absent from the current segment
  were added by this tool earlier and can be removed from the list (and then from the table).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.events import Reject, RowState, RunSummary
from klaviyo_tui.redaction import redact
from klaviyo_tui.run.locking import lock_holder
from klaviyo_tui.store import paths

SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        export TEXT NOT NULL, connection TEXT NOT NULL, list_id TEXT NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT, status TEXT NOT NULL,
        counts TEXT NOT NULL DEFAULT '{}', duration_s REAL, exit_code INTEGER, error TEXT,
        rejects_path TEXT, jobs INTEGER NOT NULL DEFAULT 0, dry_run INTEGER NOT NULL DEFAULT 0,
        pid INTEGER)""",
    "CREATE INDEX runs_by_export ON runs(export, id)",
    """CREATE TABLE batches (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        batch_no INTEGER NOT NULL, fingerprint TEXT NOT NULL, profiles INTEGER NOT NULL,
        job_id TEXT, state TEXT NOT NULL, imported INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, batch_no)) WITHOUT ROWID""",
    """CREATE TABLE failures (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        row INTEGER NOT NULL, segment TEXT NOT NULL, column_name TEXT NOT NULL,
        value TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL)""",
    "CREATE INDEX failures_by_run ON failures(run_id, state)",
    """CREATE TABLE export_rows (
        export TEXT NOT NULL, list_id TEXT NOT NULL, key_hash BLOB NOT NULL,
        row_hash BLOB NOT NULL, first_run INTEGER NOT NULL, last_run INTEGER NOT NULL,
        PRIMARY KEY (export, list_id, key_hash)) WITHOUT ROWID""",
)
_RUN_COLUMNS = (
    "id, export, connection, list_id, started_at, ended_at, status, counts, duration_s, "
    "exit_code, error, rejects_path, jobs, dry_run, pid"
)
_STATUS = {ExitCode.OK: "ok", ExitCode.PARTIAL: "partial", ExitCode.INTERRUPTED: "interrupted"}


class HistoryError(AppError):
    """The history database can't be used; the message says what to do."""

    title = "Run history unavailable"
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    export: str
    connection: str
    list_id: str
    started_at: str  # ISO 8601, UTC
    ended_at: str | None
    status: str  # running | ok | partial | failed | interrupted
    counts: dict[str, int]
    duration_s: float | None
    exit_code: int | None
    error: str | None
    rejects_path: str | None
    jobs: int
    dry_run: bool

    @property
    def started(self) -> datetime:
        return datetime.fromisoformat(self.started_at)


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch_no: int
    fingerprint: str
    profiles: int
    job_id: str | None
    state: str  # submitting | accepted | finished
    imported: int = 0
    failed: int = 0
    rejected: int = 0  # rows Klaviyo refused before accepting the job (400 pointers)


OPEN_RETRIES = 40  # about 40 s of patience in all, for a fresh file's switch to WAL

DUPLICATE_REASON = "duplicate email: a later row with the same email is sent instead"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _status(row: sqlite3.Row) -> str:
    """A "running" row whose process no longer holds the export's lock was killed."""
    if row["status"] != "running":
        return str(row["status"])
    locked, holder = lock_holder(row["export"])
    alive = locked and (holder is None or row["pid"] is None or holder == row["pid"])
    return "running" if alive else "interrupted"


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        export=row["export"],
        connection=row["connection"],
        list_id=row["list_id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=_status(row),
        counts=json.loads(row["counts"] or "{}"),
        duration_s=row["duration_s"],
        exit_code=row["exit_code"],
        error=row["error"],
        rejects_path=row["rejects_path"],
        jobs=row["jobs"],
        dry_run=bool(row["dry_run"]),
    )


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class HistoryStore:
    """The history database. Thread-safe; open one per process (or per screen) and `close()`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.history_path()
        self._lock = threading.RLock()
        self._secret: bytes | None = None
        try:
            _create_private(self.path)
            self._db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open the history database {self.path}: {exc}") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise HistoryError(
                f"the history database {self.path} is unreadable ({exc}); move it aside "
                "and klaviyo-tui will start a fresh history"
            ) from None

    def _prepare(self) -> None:
        """Pragmas and schema. Switching a new file to WAL takes an exclusive lock that SQLite's
        busy handler does not wait for, so two stores opening a fresh file at once (the app's
        screens and a run) retry briefly instead of failing."""
        self._db.execute("PRAGMA busy_timeout = 30000")
        for attempt in range(OPEN_RETRIES):
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == OPEN_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"the history database {self.path} was written by a newer klaviyo-tui "
                    f"(schema {version}); upgrade klaviyo-tui to read it"
                )
            if version == 0:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of failing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

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
        status = _STATUS.get(summary.exit_code, "failed")
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
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _record(rows[0]) if rows else None

    def runs(self, export: str | None = None, limit: int = 200) -> list[RunRecord]:
        """Newest first."""
        if export is None:
            rows = self._query(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._query(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE export = ? ORDER BY id DESC LIMIT ?",
                (export, limit),
            )
        return [_record(row) for row in rows]

    def resumable_run(self, export: str) -> RunRecord | None:
        """The export's latest real (not dry) run, if it was interrupted or killed."""
        rows = self._query(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE export = ? AND dry_run = 0 "
            "ORDER BY id DESC LIMIT 1",
            (export,),
        )
        if not rows:
            return None
        record = _record(rows[0])
        return record if record.status == "interrupted" else None

    # ---- resume journal --------------------------------------------------------------------

    def batch_submitting(self, run_id: int, batch_no: int, fingerprint: str, profiles: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (run_id, batch_no, fingerprint, profiles, state) "
                "VALUES (?, ?, ?, ?, 'submitting') ON CONFLICT (run_id, batch_no) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, profiles = excluded.profiles, "
                "job_id = NULL, state = 'submitting', imported = 0, failed = 0, rejected = 0",
                (run_id, batch_no, fingerprint, profiles),
            )

    def _batch(self, sql: str, args: tuple[object, ...]) -> None:
        with self._tx() as db:
            db.execute(f"UPDATE batches SET {sql} WHERE run_id = ? AND batch_no = ?", args)

    def batch_accepted(self, run_id: int, batch_no: int, job_id: str) -> None:
        self._batch("job_id = ?, state = 'accepted'", (job_id, run_id, batch_no))

    def batch_finished(self, run_id: int, batch_no: int, imported: int, failed: int) -> None:
        self._batch(
            "imported = ?, failed = ?, state = 'finished'", (imported, failed, run_id, batch_no)
        )

    def batch_rejected_rows(self, run_id: int, batch_no: int, count: int) -> None:
        self._batch("rejected = rejected + ?", (count, run_id, batch_no))

    def journal(self, run_id: int) -> dict[int, BatchRecord]:
        rows = self._query(
            "SELECT batch_no, fingerprint, profiles, job_id, state, imported, failed, rejected "
            "FROM batches WHERE run_id = ? ORDER BY batch_no",
            (run_id,),
        )
        return {row["batch_no"]: BatchRecord(*row) for row in rows}

    # ---- failures --------------------------------------------------------------------------

    def add_failures(self, run_id: int, rejects: Iterable[Reject]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO failures (run_id, row, segment, column_name, value, reason, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (run_id, r.row, r.segment, r.column, str(r.value), r.reason, str(r.state))
                    for r in rejects
                ),
            )

    def failures(self, run_id: int, limit: int | None = None) -> list[Reject]:
        rows = self._query(
            "SELECT row, segment, column_name, value, reason, state FROM failures "
            "WHERE run_id = ? ORDER BY id LIMIT ?",
            (run_id, -1 if limit is None else limit),
        )
        return [Reject(r[0], r[1], r[2], r[3], r[4], RowState(r[5])) for r in rows]

    def failure_reasons(self, run_id: int) -> list[tuple[str, str, int]]:
        """(reason, state, count), most frequent first. Duplicates count as one reason (each
        names its own winning row, which would make every one a group of its own)."""
        rows = self._query(
            "SELECT CASE WHEN state = ? THEN ? ELSE reason END AS why, state, COUNT(*) AS n "
            "FROM failures WHERE run_id = ? GROUP BY why, state ORDER BY n DESC, why",
            (RowState.DUPLICATE.value, DUPLICATE_REASON, run_id),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def clear_failures(self, run_id: int, states: Iterable[RowState | str]) -> None:
        wanted = [str(s) for s in states]
        if not wanted:
            return
        marks = ", ".join("?" * len(wanted))
        with self._tx() as db:
            db.execute(
                f"DELETE FROM failures WHERE run_id = ? AND state IN ({marks})", (run_id, *wanted)
            )

    # ---- per-export state (keyed hashes only) ----------------------------------------------

    def _hash_secret(self) -> bytes:
        if self._secret is None:
            self._secret = _load_or_create_secret(self.path.parent / "row-hash.secret")
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


def _load_or_create_secret(path: Path) -> bytes:
    """32 random bytes, created once per install (0600); races resolve to the first writer."""
    with contextlib.suppress(FileNotFoundError):
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, os.urandom(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and never overwrites: a concurrent creator's secret wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()
