"""Where config, history and rejects live. One seam so tests can isolate them."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "klaviyo-tui"


def config_path(override: str | os.PathLike[str] | None = None) -> Path:
    """`--config` wins, then `KLAVIYO_TUI_CONFIG`, then the platform's user config dir."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("KLAVIYO_TUI_CONFIG")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def data_dir() -> Path:
    """History database and rejects files. `KLAVIYO_TUI_DATA` overrides (tests, the demo)."""
    env = os.environ.get("KLAVIYO_TUI_DATA")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_data_path(APP_NAME)


def history_path() -> Path:
    return data_dir() / "history.sqlite3"


def rejects_dir() -> Path:
    return data_dir() / "rejects"
