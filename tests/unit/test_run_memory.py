"""A run allocates Arrow buffers from jemalloc where the wheel has it, and on glibc gives large
blocks their own mappings, unless the user chose."""

from __future__ import annotations

import platform
import subprocess
import sys

import pyarrow as pa
import pytest

from klaviyo_tui.run.memory import fix_mmap_threshold, use_lean_pool


def test_run_pool_is_jemalloc_where_the_wheel_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    if "jemalloc" not in pa.supported_memory_backends():
        pytest.skip("this pyarrow wheel has no jemalloc")
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        use_lean_pool()
        assert pa.default_memory_pool().backend_name == "jemalloc"
    finally:
        pa.set_memory_pool(before)


def test_a_users_pool_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        use_lean_pool()
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)


PROBE = """
import sys
from klaviyo_tui.run.memory import fix_mmap_threshold

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
first = b"x" * 2_500_000  # mapped; freeing it raises glibc's threshold unless it is fixed
del first
pins = []
before = rss_kb()
for _ in range(8):  # bodies alive together, each followed by a small block that stays
    pins.append((b"b" * 2_500_000, b"p" * 10_000))
pins = [small for _, small in pins]  # the bodies go, the small blocks stay
print(rss_kb() - before)
"""


def kept_kb(mode: str) -> int:
    """What stays resident of 8 freed request-sized blocks; in a child process, as the
    allocator's state (a raised threshold) is per process."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


GLIBC = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")


@GLIBC
def test_freed_bodies_go_back_to_the_os_once_the_threshold_is_fixed() -> None:
    assert kept_kb("default") > 10_000  # ~20 MB of 8 freed 2.5 MB bodies stay resident
    assert kept_kb("fixed") < 2_000


@GLIBC
def test_a_users_malloc_tuning_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=4194304")
    assert not fix_mmap_threshold()
