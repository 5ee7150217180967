"""Who is writing to an SQLite file: so a busy history names the process instead of guessing.

SQLite locks with POSIX byte-range locks, which Linux lists in /proc/locks with the holder's pid.
A writer in WAL mode holds the write lock on byte 120 of the `-shm` file (WAL_WRITE_LOCK); in the
rollback-journal mode it holds the RESERVED byte of the database itself. When /proc/locks says
nothing useful, the processes that have the database or its `-wal` open (from /proc/*/fd) are
the candidates. Elsewhere (macOS, Windows) the answer is "another process".

The command line shown is data: control characters become spaces, anything key-shaped is masked.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from klaviyo_tui.redaction import redact

WAL_WRITE_LOCK_BYTE = 120  # WALINDEX_LOCK_OFFSET + 0 in the -shm file
RESERVED_BYTE = 0x40000001  # PENDING_BYTE + 1 in the database file
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PYTHON = re.compile(r"python[0-9.]*$")
_MAX_COMMAND = 80


@dataclass(frozen=True, slots=True)
class Holder:
    """The process holding (or suspected of holding) the write lock."""

    pid: int
    command: str  # short and safe to show: "klaviyo-tui run weekly"

    @property
    def is_klaviyo_tui(self) -> bool:
        return "klaviyo" in self.command.lower()


def _file_id(path: Path) -> str | None:
    """`maj:min:inode` as /proc/locks prints it (device numbers in hex)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


def _lock_writers(targets: dict[str, int]) -> list[int]:
    """Pids holding a write lock over the given byte of the given file ids."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids: list[int] = []
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 11828 fe:00:2146432 120 120"; "->" marks a blocked waiter.
        if len(fields) < 8 or fields[1] == "->" or fields[3] != "WRITE":
            continue
        file_id, start, end = fields[5], fields[6], fields[7]
        byte = targets.get(file_id)
        if byte is None:
            continue
        with contextlib.suppress(ValueError):
            last = int(end) if end != "EOF" else byte
            pid = int(fields[4])
            if pid > 0 and int(start) <= byte <= last:  # OFD locks show pid -1
                pids.append(pid)
    return pids


def _openers(paths: list[Path]) -> list[int]:
    """Other processes with one of `paths` open (readers included: only a hint)."""
    wanted = set()
    for path in paths:
        with contextlib.suppress(OSError):
            wanted.add(str(path.resolve()))
    found: list[int] = []
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in wanted:
                found.append(pid)
                break
    return found


def command_of(pid: int) -> str:
    """A short, printable command line for `pid` ("" when unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if not args:
        return ""
    args[0] = os.path.basename(args[0])
    if _PYTHON.match(args[0]) and len(args) > 1 and not args[1].startswith("-"):
        args = [os.path.basename(args[1]), *args[2:]]  # `python …/bin/klaviyo-tui run x`
    text = redact(" ".join(_CONTROL.sub(" ", " ".join(args)).split()))
    return text if len(text) <= _MAX_COMMAND else text[: _MAX_COMMAND - 1] + "…"


def find_writer(database: Path) -> Holder | None:
    """The process holding the database's write lock, if this platform can tell."""
    targets: dict[str, int] = {}
    shm_id = _file_id(database.with_name(database.name + "-shm"))
    db_id = _file_id(database)
    if shm_id:
        targets[shm_id] = WAL_WRITE_LOCK_BYTE
    if db_id:
        targets[db_id] = RESERVED_BYTE
    pids = _lock_writers(targets) if targets else []
    if not pids:
        pids = _openers([database, database.with_name(database.name + "-wal")])
    if not pids:
        return None
    return Holder(pids[0], command_of(pids[0]))


def describe_writer(holder: Holder | None) -> str:
    """ "another klaviyo-tui process is writing (pid 1234: klaviyo-tui run weekly)"."""
    if holder is None:
        return "another process is writing"
    if holder.pid == os.getpid():
        return f"another connection in this process is writing (pid {holder.pid})"
    who = "another klaviyo-tui process" if holder.is_klaviyo_tui else "another process"
    detail = f"pid {holder.pid}: {holder.command}" if holder.command else f"pid {holder.pid}"
    return f"{who} is writing ({detail})"
