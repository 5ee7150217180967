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
from klaviyo_tui.store.history_schema import SCHEMA_VERSION, TABLES, upgrade

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
