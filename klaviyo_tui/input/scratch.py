"""A run's scratch folders in the system's temp dir (the first pass's spills, the key tape).

Each is named after the process that made it (`klaviyo-tui-<kind>-<pid>-<random>`), so that a
run can remove what a killed run left behind: SIGKILL, the OOM killer or a cron timeout skip
every cleanup, and a killed 1M-row run leaves tens of MB. Only folders of this user whose process is
gone are removed, and only on POSIX (where `kill(pid, 0)` asks without signalling); a folder of a
live process, of another user, or in another name shape is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

_NAME = re.compile(r"klaviyo-tui-[a-z_]+-(\d+)-[a-z0-9_]+")
_swept = threading.Event()


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A new scratch folder for `kind` ("dedupe", "keys", a field name), removed on cleanup."""
    return tempfile.TemporaryDirectory(prefix=f"klaviyo-tui-{kind}-{os.getpid()}-")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's
        return False
    return False


def sweep_orphans(folder: Path | None = None) -> int:
    """Remove the scratch folders whose process is gone; how many. Once per process (the first
    pass of its first run), unless `folder` is given (tests)."""
    if os.name != "posix" or (folder is None and _swept.is_set()):
        return 0
    _swept.set()
    root = folder or Path(tempfile.gettempdir())
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            found = _NAME.fullmatch(entry.name)
            if found is None or int(found.group(1)) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                mine = entry.is_dir(follow_symlinks=False) and entry.stat().st_uid == os.getuid()
                if mine and _gone(int(found.group(1))):
                    shutil.rmtree(entry.path)
                    removed += 1
    return removed
