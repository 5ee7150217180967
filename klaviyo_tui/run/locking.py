"""One run per export at a time, across processes (cron, the TUI, a second terminal).

`fcntl.flock` on a file under the data dir: the OS drops the lock when the holder exits, even on
SIGKILL, so a crash never leaves a stale lock behind. The file keeps the holder's pid and start
time only to make the "already running" message useful; the lock itself is the truth.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.store import paths


class RunInProgress(AppError):
    """Another process (or another run in this one) holds the export's lock."""

    title = "This export is already running"
    default_hint = "Wait for it to finish, or open it."
    exit_code = ExitCode.USAGE

    def __init__(self, export: str, pid: int | None, started: datetime | None) -> None:
        self.export = export
        self.pid = pid
        self.started = started
        who = f"pid {pid}" if pid else "another process"
        when = f", started {started.astimezone().strftime('%H:%M')}" if started else ""
        super().__init__(
            f"export {export!r} is already running ({who}{when}); wait for it or stop it"
        )


def lock_path(export_name: str) -> Path:
    """A safe, collision-free file name for any export name."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", export_name)[:40]
    digest = hashlib.sha256(export_name.encode()).hexdigest()[:10]
    return paths.data_dir() / "locks" / f"{slug}-{digest}.lock"


def _open(export_name: str) -> int:
    path = lock_path(export_name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def _holder(fd: int) -> tuple[int | None, datetime | None]:
    try:
        pid_text, _, when = os.pread(fd, 200, 0).decode().strip().partition(" ")
        return int(pid_text), datetime.fromisoformat(when) if when else None
    except (OSError, ValueError):
        return None, None


def _acquire(fd: int, export_name: str) -> None:
    # A holder without a pid in the file is a momentary `lock_holder` probe (or a run that is
    # just starting): give it a moment before calling the export busy.
    for _ in range(50):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pid, started = _holder(fd)
            if pid is not None:
                raise RunInProgress(export_name, pid, started) from None
            time.sleep(0.01)
    raise RunInProgress(export_name, None, None)


@contextlib.contextmanager
def export_lock(export_name: str) -> Iterator[None]:
    """Hold the export's lock for the block; raises `RunInProgress` at once if it is taken."""
    fd = _open(export_name)
    try:
        _acquire(fd, export_name)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {datetime.now().astimezone().isoformat()}".encode(), 0)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder(export_name: str) -> tuple[bool, int | None]:
    """(locked, holder's pid if known). Probes with a shared lock, so it never blocks a run."""
    if not lock_path(export_name).exists():
        return False, None
    fd = _open(export_name)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, _holder(fd)[0]
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None
    finally:
        os.close(fd)


def is_locked(export_name: str) -> bool:
    """True while some run (in any process, this one included) holds the export's lock."""
    return lock_holder(export_name)[0]
