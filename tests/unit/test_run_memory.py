"""A run allocates Arrow buffers from jemalloc where the wheel has it, unless the user chose."""

from __future__ import annotations

import pyarrow as pa
import pytest

from klaviyo_tui.run.memory import use_lean_pool


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
