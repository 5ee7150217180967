"""What every command shares: the config file's path, and whether output is JSON."""

from __future__ import annotations

from pathlib import Path

import click

from klaviyo_tui.cli.utf8 import check_environment
from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.config_read import load_config


class CliContext:
    def __init__(self, config_path: str | None) -> None:
        check_environment()  # --config itself is checked with the other parameters
        self.config_path: Path = paths.config_path(config_path)
        self.as_json = False

    def config(self) -> Config:
        return load_config(self.config_path)


def cli_context(ctx: click.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj


pass_cli = click.make_pass_decorator(CliContext)
