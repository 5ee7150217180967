"""Which allocator Arrow's buffers come from during a run.

pyarrow's default pool is mimalloc, which keeps freed pages per thread even after
`release_unused()`; jemalloc hands them back. Measured at 1M rows (bench/export_bench.py,
interleaved, same tree): peak RSS 318-339 MB with mimalloc, 302-312 MB switched here, CPU the
same within noise (9.2-10.0 s vs 9.0-10.5 s); jemalloc's decay at 0 saved nothing more.
Wheels without jemalloc (or a user's `ARROW_DEFAULT_MEMORY_POOL`) keep what they have.
"""

from __future__ import annotations

import os

import pyarrow as pa


def use_lean_pool() -> None:
    """Allocate Arrow buffers from jemalloc from now on, where the wheel has it."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return  # the user chose
    if "jemalloc" not in pa.supported_memory_backends():
        return
    if pa.default_memory_pool().backend_name != "jemalloc":
        pa.set_memory_pool(pa.jemalloc_memory_pool())
