"""Which allocator Arrow's buffers come from during a run.

pyarrow's default pool is mimalloc, which keeps freed pages per thread even after
`release_unused()`; jemalloc hands them back. Measured at 1M rows (bench/export_bench.py,
interleaved, same tree): peak RSS 318-339 MB with mimalloc, 302-312 MB switched here, CPU the
same within noise (9.2-10.0 s vs 9.0-10.5 s); jemalloc's decay at 0 saved nothing more.
Wheels without jemalloc (or a user's `ARROW_DEFAULT_MEMORY_POOL`) keep what they have.
"""

from __future__ import annotations

import ctypes
import os
import platform

import pyarrow as pa

#: glibc's M_MMAP_THRESHOLD (malloc.h), and the size from which our blocks get their own mapping.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20


def use_lean_pool() -> None:
    """Allocate Arrow buffers from jemalloc from now on, where the wheel has it; on glibc, give
    every block of 1 MiB or more its own mapping (see `fix_mmap_threshold`)."""
    fix_mmap_threshold()
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return  # the user chose
    if "jemalloc" not in pa.supported_memory_backends():
        return
    if pa.default_memory_pool().backend_name != "jemalloc":
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at 1 MiB; True when set.

    glibc raises the threshold to the size of each mapped block freed (up to 32 MiB), so after
    the first request body (~2.5 MB) is sent, the next bodies and large numpy arrays come from
    the heap, where freed space is kept. A fixed threshold gives them their own mappings, handed
    back on free. A user's MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES setting is kept.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("GLIBC_TUNABLES"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover (glibc always has it)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
