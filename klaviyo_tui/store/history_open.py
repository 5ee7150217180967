"""Opening the history database, and saying exactly what is wrong when it can't be used.

The file holds the resume journal, so no message ever advises deleting a file that may be fine:
another application's database, a newer schema, a read-only or busy file are each named as such
and left untouched. Only a file SQLite itself calls damaged ("file is not a database",
"malformed") gets the advice to move it aside, with a warning about the journal inside.

Readers never take the write lock: they open the file with `mode=ro` (or, in a read-only folder
without the WAL's `-shm` file, `immutable=1`), so `klaviyo-tui history` and the app's screens
work on a read-only file and while another process is in the middle of a write transaction.
A writer takes the lock only to create the schema, and waits for it with a bounded, reported wait
(`execute_waiting`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.store.history_holder import Holder, describe_writer, find_writer

SCHEMA_VERSION = 4
#: Schema 1, as the first release created it. Later versions are explicit steps in MIGRATIONS.
SCHEMA = (
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
#: Each step takes the file from the version before it (key - 1) to `key`, in one transaction.
#: Keep one step per change, so parallel changes merge as separate steps.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 2: confirmation. Batches remember the rows a 400 refused and the fields removed before
    # Klaviyo accepted them (to resume them), and how many rows were imported with warnings;
    # runs may have a verification read-back.
    2: (
        "ALTER TABLE batches ADD COLUMN warned INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE batches ADD COLUMN resend_log TEXT",
        """CREATE TABLE verifications (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            mode TEXT NOT NULL, checked INTEGER NOT NULL, in_list INTEGER NOT NULL,
            missing INTEGER NOT NULL, members INTEGER, verified_at TEXT NOT NULL)""",
    ),
    # 3: rejects people can act on: the matching email and the row's mapped source values (a
    # JSON object), so a rejects file can be fixed and imported again.
    3: (
        "ALTER TABLE failures ADD COLUMN email TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE failures ADD COLUMN source_values TEXT",
    ),
    # 4: sync modes (run/sync, store/export_state). Per export, the confirmed rows as compact
    # keyed hashes (sorted arrays in chunks, not a row per customer: 1M rows load in
    # milliseconds); per run, its sync figures, the hashes of its batches until they are
    # merged, and the journal of its list removals.
    4: (
        "ALTER TABLE runs ADD COLUMN sync TEXT",
        """CREATE TABLE sync_state (
            export TEXT NOT NULL, chunk INTEGER NOT NULL, keys BLOB NOT NULL,
            hashes BLOB NOT NULL, PRIMARY KEY (export, chunk))""",
        """CREATE TABLE sync_basis (
            export TEXT PRIMARY KEY, basis TEXT NOT NULL, entries INTEGER NOT NULL,
            run_id INTEGER, updated_at TEXT NOT NULL)""",
        """CREATE TABLE sync_runs (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            export TEXT NOT NULL, basis TEXT NOT NULL, settled INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX sync_runs_open ON sync_runs(export, settled)",
        """CREATE TABLE sync_batches (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            batch_no INTEGER NOT NULL, keys BLOB NOT NULL, hashes BLOB NOT NULL,
            known BLOB NOT NULL, rows BLOB NOT NULL, segments TEXT NOT NULL,
            PRIMARY KEY (run_id, batch_no))""",
        """CREATE TABLE sync_removals (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            batch_no INTEGER NOT NULL, state TEXT NOT NULL, profile_ids TEXT NOT NULL,
            keys BLOB NOT NULL, PRIMARY KEY (run_id, batch_no))""",
    ),
}
TABLES = ("batches", "export_rows", "failures", "runs")  # every version has these


def upgrade(db: sqlite3.Connection, found: int) -> None:
    """Create the schema (`found` 0) or bring it from version `found` to SCHEMA_VERSION.
    Call inside a write transaction: a failed step leaves the file as it was."""
    if found == 0:
        for statement in SCHEMA:
            db.execute(statement)
        found = 1
    for version in range(found + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


BUSY_TIMEOUT_S = 30.0  # the longest a write waits for another process before giving up
WAIT_NOTICE_S = 1.0  # after this long, `on_wait` tells the user why nothing happens

_READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class HistoryError(AppError):
    """The history database can't be used; the message says what was found."""

    title = "Run history unavailable"
    default_hint = (
        "The file was left as it is. To use a separate history, point KLAVIYO_TUI_DATA "
        "at another folder."
    )
    exit_code = ExitCode.USAGE


class HistoryBusy(HistoryError):
    """Another process held the write lock for longer than the bounded wait."""

    title = "Run history busy"
    default_hint = (
        "Wait for that process to finish (or stop it), then try again. Nothing was changed."
    )

    def __init__(self, path: Path, holder: Holder | None, waited_s: float | None) -> None:
        self.path = path
        self.holder = holder
        after = f"; gave up after {waited_s:g}s" if waited_s is not None else ""
        super().__init__(f"the history database {path} is busy: {describe_writer(holder)}{after}")


class HistoryCorrupt(HistoryError):
    """SQLite itself says the file is damaged."""

    title = "Run history damaged"
    default_hint = (
        "Move the file aside (rename it, for example to history.sqlite3.broken) and klaviyo-tui "
        "will start a fresh history. Keep the copy: it holds the resume journal of interrupted "
        "runs, and a fresh history cannot resume them."
    )


class HistoryForeign(HistoryError):
    """The file is an SQLite database, but not ours: never write to it."""

    title = "Not a klaviyo-tui history"
    default_hint = (
        "That file was not changed. Point KLAVIYO_TUI_DATA at another folder for "
        "klaviyo-tui's history."
    )


class HistoryNewer(HistoryError):
    """Written by a newer klaviyo-tui: reading it could misreport runs, writing could break it."""

    title = "History from a newer klaviyo-tui"
    default_hint = (
        "Upgrade klaviyo-tui to use it (the file was not changed), or point KLAVIYO_TUI_DATA "
        "at another folder to keep a separate history."
    )


class HistoryReadOnly(HistoryError):
    """The history can be read but not written: runs can't record their progress."""

    title = "Run history is read-only"
    default_hint = (
        "Runs record their progress and resume journal there: make the file and its folder "
        "writable, or point KLAVIYO_TUI_DATA at a writable folder. Reading the history "
        "(`klaviyo-tui history`) still works."
    )


def _name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def is_busy(exc: sqlite3.Error) -> bool:
    name = _name(exc)
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in str(exc)


def translate(exc: sqlite3.Error, path: Path) -> HistoryError:
    """The `HistoryError` that tells a person what an SQLite error means for them."""
    name, text = _name(exc), str(exc)
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or (
        not name and ("not a database" in text or "malformed" in text)
    ):
        return HistoryCorrupt(f'the history database {path} is damaged: SQLite says "{text}"')
    if is_busy(exc):
        return HistoryBusy(path, find_writer(path), None)
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return HistoryReadOnly(f"the history database {path} is read-only ({text})")
    if name.startswith("SQLITE_FULL"):
        return HistoryError(
            f"the disk holding the history database {path} is full",
            hint="Free some space, then run again (`--resume` continues an interrupted run).",
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return HistoryError(f"cannot open the history database {path} ({text})")
    return HistoryError(f"the history database {path} failed: {text}")


def _os_error(exc: OSError, path: Path, doing: str) -> HistoryError:
    reason = exc.strerror or str(exc)
    if exc.errno in _READ_ONLY_ERRNOS and doing == "write":
        if path.exists():
            return HistoryReadOnly(f"the history database {path} is read-only ({reason})")
        return HistoryReadOnly(
            f"cannot create the history database {path}: its folder is read-only ({reason})"
        )
    return HistoryError(f"cannot {doing} the history database {path}: {reason}")


def _shown(names: list[str]) -> str:
    """Table names are data: control characters dropped, a long list cut short."""
    clean = [_CONTROL.sub("?", n)[:40] for n in names[:6]]
    more = f" and {len(names) - 6} more" if len(names) > 6 else ""
    return ", ".join(clean) + more


def inspect(db: sqlite3.Connection, path: Path) -> int:
    """Our schema version (0: an empty file, ready to create). Reads only; raises
    `HistoryForeign` / `HistoryNewer` for a file that must not be touched."""
    # One statement, so one read transaction: a concurrent creator's commit can't fall between
    # reading the version and the tables.
    rows = db.execute(
        "SELECT v.user_version, m.name FROM pragma_user_version AS v LEFT JOIN ("
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite!_%' ESCAPE '!') AS m ON 1 ORDER BY m.name"
    ).fetchall()
    version = int(rows[0][0])
    names = [str(row[1]) for row in rows if row[1] is not None]
    if names and "runs" not in names:
        raise HistoryForeign(
            f"{path} is not a klaviyo-tui history database: it has tables {_shown(names)}"
        )
    if version > SCHEMA_VERSION:
        raise HistoryNewer(
            f"the history database {path} was written by a newer klaviyo-tui (schema "
            f"{version}; this version knows schema {SCHEMA_VERSION})"
        )
    if not names and version == 0:
        return 0
    missing = [t for t in TABLES if t not in names]
    if version == 0 or missing:
        found = f"tables {_shown(names)}" if names else "no tables"
        raise HistoryForeign(
            f"{path} is not a klaviyo-tui history database (schema {version}, {found})"
        )
    return version


def _memory() -> sqlite3.Connection:
    """An empty history: what a reader sees before the first run created the file."""
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    upgrade(db, 0)
    return db


def connect_reader(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection that never creates, migrates or locks the file for writing."""
    if not path.exists():
        return _memory()
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        raise _os_error(exc, path, "read") from None
    uri = path.absolute().as_uri()
    for mode in ("mode=ro", "immutable=1"):  # immutable: a read-only folder without `-shm`
        db = sqlite3.connect(
            f"{uri}?{mode}",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            if inspect(db, path) == 0:
                db.close()
                return _memory()
            return db
        except sqlite3.Error as exc:
            db.close()
            if mode == "mode=ro" and _name(exc).startswith("SQLITE_CANTOPEN"):
                continue
            raise translate(exc, path) from None
        except BaseException:
            db.close()
            raise
    raise HistoryError(f"cannot open the history database {path}")  # pragma: no cover


def _folder_writable(folder: Path) -> bool:
    """A real probe: `os.access` says yes to root even on an immutable or read-only mount."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".write-probe-")
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return True


def _ensure_file(path: Path) -> None:
    """Create the file private (0600) if missing; refuse early if it can't be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = os.open(path, os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        raise _os_error(exc, path, "write") from None


def connect_writer(path: Path, timeout: float) -> tuple[sqlite3.Connection, int]:
    """A read-write connection and the schema version found (0: create it). Nothing is written
    and no lock is taken here; a file that is not ours is refused before any change."""
    _ensure_file(path)
    try:
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise translate(exc, path) from None
    try:
        return db, inspect(db, path)
    except sqlite3.Error as exc:
        db.close()
        if _name(exc).startswith("SQLITE_CANTOPEN") and not _folder_writable(path.parent):
            raise HistoryReadOnly(
                f"the folder of the history database {path} is read-only"
            ) from None
        raise translate(exc, path) from None
    except BaseException:
        db.close()
        raise


def _set_busy(db: sqlite3.Connection, seconds: float) -> None:
    db.execute(f"PRAGMA busy_timeout = {max(int(seconds * 1000), 0)}")


def execute_waiting(
    db: sqlite3.Connection,
    path: Path,
    statement: str,
    *,
    timeout: float,
    wait_notice: float,
    on_wait: Callable[[str], None] | None,
) -> None:
    """Run a statement that needs the write lock (`BEGIN IMMEDIATE`, the switch to WAL), waiting
    at most `timeout`. After `wait_notice`, `on_wait` hears once who holds the lock; at the end
    `HistoryBusy` names the holder."""
    start = time.monotonic()
    deadline = start + timeout
    notice_at = start + min(wait_notice, timeout)
    notified = False
    try:
        while True:
            stop = deadline if notified else notice_at
            _set_busy(db, stop - time.monotonic())
            try:
                db.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            now = time.monotonic()
            if now >= deadline:
                raise HistoryBusy(path, find_writer(path), timeout) from None
            if not notified and now >= notice_at:
                notified = True
                if on_wait is not None:
                    on_wait(
                        f"waiting for the history database: {describe_writer(find_writer(path))}"
                    )
            elif stop - now > 0:  # SQLite answered busy without waiting (no busy handler call)
                time.sleep(min(0.05, stop - now))
    finally:
        with contextlib.suppress(sqlite3.Error):
            _set_busy(db, timeout)


def load_or_create_secret(path: Path) -> bytes:
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
