"""Suite-wide isolation: config and data dirs in tmp_path, an in-memory keyring, no real env key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from klaviyo_tui.demo.launch import MemoryKeyring
from klaviyo_tui.sandbox import SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "data").mkdir(parents=True)
    monkeypatch.setenv("KLAVIYO_TUI_CONFIG", str(home / "config" / "config.toml"))
    monkeypatch.setenv("KLAVIYO_TUI_DATA", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    monkeypatch.delenv("KLAVIYO_API_KEY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(tmp_path)  # files written "here" (exported rejects) stay out of the repo
    return home


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A sandbox Klaviyo on a free loopback port: no rate limits, jobs finish at once, no faults.
    Tests that need limits, faults or slow jobs start their own."""
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.0)) as server:
        yield server


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
