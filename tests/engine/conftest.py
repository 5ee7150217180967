"""Fixtures shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klaviyo_tui.store.history import HistoryStore


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    s = HistoryStore()
    yield s
    s.close()
