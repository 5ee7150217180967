"""locking.py: one run per export, released by the OS even when the holder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from klaviyo_tui.run.locking import RunInProgress, export_lock, is_locked, lock_holder, lock_path


def test_lock_is_exclusive_and_released() -> None:
    assert not is_locked("weekly")
    with export_lock("weekly"):
        assert is_locked("weekly")
        assert lock_holder("weekly") == (True, os.getpid())
        assert not is_locked("daily")
        with pytest.raises(RunInProgress) as info, export_lock("weekly"):
            pass
        message = str(info.value)
        assert "'weekly' is already running" in message
        assert f"pid {os.getpid()}" in message
        assert "started " in message
        assert "wait for it or stop it" in message
    assert not is_locked("weekly")
    with export_lock("weekly"):  # reusable after release
        pass


def test_odd_names_get_distinct_files() -> None:
    a, b = lock_path("a/b"), lock_path("a_b")
    assert a != b
    assert a.parent == b.parent
    assert "/" not in a.name


def test_lock_released_when_holder_is_killed() -> None:
    code = (
        "import sys\n"
        "from klaviyo_tui.run.locking import export_lock\n"
        "with export_lock('nightly'):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        assert lock_holder("nightly") == (True, proc.pid)
        with pytest.raises(RunInProgress, match=f"pid {proc.pid}"), export_lock("nightly"):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not is_locked("nightly")
    with export_lock("nightly"):
        pass
