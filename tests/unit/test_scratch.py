"""Scratch folders left by killed runs are removed by the next run (input/scratch.py): only this
user's, only those whose process is gone, never through a link."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from klaviyo_tui.input.scratch import scratch_dir, sweep_orphans

pytestmark = pytest.mark.skipif(os.name != "posix", reason="swept on POSIX only")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has it (a reuse this soon would only keep a folder)


def test_only_the_folders_of_gone_processes_go(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getppid()
    gone = tmp_path / f"klaviyo-tui-keys-{dead}-ab12cd_3"
    (gone / "sub").mkdir(parents=True)
    (gone / "sub" / "keys.arrow").write_bytes(b"x" * 1000)
    spill = tmp_path / f"klaviyo-tui-phone_number-{dead}-zz99zz99"
    spill.mkdir()
    kept = [
        tmp_path / f"klaviyo-tui-dedupe-{alive}-ab12cd34",  # its process runs
        tmp_path / f"klaviyo-tui-dedupe-{os.getpid()}-ab12cd34",  # this process's own
        tmp_path / "klaviyo-tui-keys-0d51171i",  # an older version's name: owner unknown
        tmp_path / "klaviyo-tui-demo-ab12cd34",
        tmp_path / f"someone-else-{dead}-ab12cd34",
    ]
    for folder in kept:
        folder.mkdir()
    target = tmp_path / "precious"
    target.mkdir()
    (target / "data.csv").write_text("keep me")
    (tmp_path / f"klaviyo-tui-keys-{dead}-link0000").symlink_to(target)

    assert sweep_orphans(tmp_path) == 2
    assert not gone.exists() and not spill.exists()
    assert all(folder.is_dir() for folder in kept)
    assert (target / "data.csv").read_text() == "keep me"  # a link is never followed
    assert (tmp_path / f"klaviyo-tui-keys-{dead}-link0000").is_symlink()


def test_a_scratch_folder_is_named_after_its_process() -> None:
    folder = scratch_dir("dedupe")
    try:
        assert Path(folder.name).name.startswith(f"klaviyo-tui-dedupe-{os.getpid()}-")
    finally:
        folder.cleanup()
