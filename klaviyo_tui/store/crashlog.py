"""Where a bug's traceback goes: a log file beside the history, never the screen.

A user who hits an internal error sees one short line and this file's path; whoever fixes the bug
reads the traceback here. Keys are masked like everywhere else.
"""

from __future__ import annotations

import os
import traceback
from datetime import UTC, datetime
from pathlib import Path

from klaviyo_tui.redaction import redact
from klaviyo_tui.store import paths


def log_path() -> Path:
    return paths.data_dir() / "logs" / "klaviyo-tui.log"


def record(error: BaseException) -> Path | None:
    """Append the traceback to the log; returns its path (None when it cannot be written)."""
    path = log_path()
    text = "".join(traceback.format_exception(error))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"--- {stamp} pid {os.getpid()}\n{redact(text)}\n")
    except OSError:
        return None
    return path


def internal_message(error: BaseException, log: Path | None) -> str:
    """The one line a person sees for a bug."""
    first = (str(error).strip().splitlines() or [""])[0][:200]
    what = f"{type(error).__name__}: {first}" if first else type(error).__name__
    where = f"; details in {log}" if log else ""
    return f"internal error ({redact(what)}){where}"
