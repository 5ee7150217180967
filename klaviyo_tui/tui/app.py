"""The Textual app: routing between screens, and the run registry.

Screens own their behaviour (flows: their screens and flows.py; config: config_host.py; app-wide
keys and toasts: app_base.py). Runs live here so one keeps going while the user looks elsewhere.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import SystemCommand
from textual.reactive import reactive
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Config, Connection
from klaviyo_tui.tui import flows
from klaviyo_tui.tui.app_base import AppBase
from klaviyo_tui.tui.config_host import CONFIG_POLL_S, ConfigHost
from klaviyo_tui.tui.palette import app_commands
from klaviyo_tui.tui.runs import RunHandle, new_run, sample_runs
from klaviyo_tui.tui.widgets.banner import DemoInfo

__all__ = ["DemoInfo", "KlaviyoApp", "RunHandle", "make_app", "run_app"]


class KlaviyoApp(ConfigHost, AppBase):
    """klaviyo-tui: connections, exports, runs and their history."""

    CSS_PATH = "app.tcss"
    TITLE = "klaviyo-tui"
    SUB_TITLE = "segments → Klaviyo lists"

    config: reactive[Config] = reactive(Config, always_update=True, init=False)

    def __init__(self, config_path: Path | None = None, *, demo: DemoInfo | None = None) -> None:
        super().__init__()
        self.config_path = paths.config_path(config_path)
        self.demo = demo
        self.resumable = demo is None  # the demo's history goes with it
        self.store: Any = None  # ConfigStore once loaded
        self.config_error: str | None = None
        self.last_runs: dict[str, Any] = {}  # export -> its latest real RunRecord (from Home)
        self.run_updated: Signal[RunHandle] = Signal(self, "run-updated")

    def on_mount(self) -> None:
        from klaviyo_tui.tui.screens.home import HomeScreen

        self.push_screen(HomeScreen())
        self.set_interval(0.5, partial(sample_runs, self))
        self.set_interval(CONFIG_POLL_S, self.poll_config)
        self.load_config()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        for handle in self.runs.values():  # a finished run changes the keys on show
            if handle.worker is event.worker and event.state != WorkerState.PENDING:
                self.run_updated.publish(handle)

    # ---- routing ---------------------------------------------------------------------------------
    def _flow(self, work: Coroutine[Any, Any, None], group: str) -> None:
        """Run a flow (a coroutine awaiting screens); a new one replaces a pending one."""
        self.keys.expect()  # its first screen gets the keys typed until it shows
        self.run_worker(work, group=group, exclusive=True, exit_on_error=False)

    def connection_wizard(self, existing: Connection | None = None) -> None:
        from klaviyo_tui.tui.screens.connection import connection_wizard

        self._flow(connection_wizard(self, existing), "wizard")

    def edit_export(self, name: str | None = None) -> None:
        from klaviyo_tui.tui.screens.builder import ExportBuilderScreen

        if not self.config.connections:
            self.notify("Add a connection first (c).", severity="warning")
            return
        self.push_screen(ExportBuilderScreen(self.config.exports.get(name) if name else None))

    def remove_export(self, name: str) -> None:
        self._flow(flows.remove_export(self, name), "remove")

    def remove_connection(self, name: str) -> None:
        self._flow(flows.remove_connection(self, name), "remove")

    def show_run_detail(self, run_id: int) -> None:
        from klaviyo_tui.tui.screens.history import RunDetailScreen

        self.push_screen(RunDetailScreen(run_id))

    def action_help(self) -> None:
        from klaviyo_tui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_history(self, export: str | None = None) -> None:
        from klaviyo_tui.tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen(export))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from app_commands(self)

    # ---- the run registry ------------------------------------------------------------------------
    def start_run(
        self,
        export_name: str,
        *,
        resume: bool = False,
        retry_failed_of: int | None = None,
        dry_run: bool = False,
        allow_removals: bool = False,
    ) -> RunHandle | None:
        """Start (or re-open) the run of an export, then show it. A dry run sends nothing;
        `allow_removals` lets one mirror run pass its removal limits (the user confirmed)."""
        from klaviyo_tui.tui.screens.run import RunScreen

        handle = self.runs.get(export_name)
        if handle is None or not handle.active:
            if export_name not in self.config.exports:
                self.notify(f"No export named {export_name!r}.", severity="error")
                return None
            handle = new_run(self, export_name, resume, retry_failed_of, dry_run, allow_removals)
            self.runs[export_name] = handle
        self.push_screen(RunScreen(handle))
        return handle

    def cancel_run(self, export_name: str) -> None:
        handle = self.runs.get(export_name)
        if handle and handle.worker and handle.active:
            handle.worker.cancel()


def make_app(config_path: Path | str | None = None, *, demo: DemoInfo | None = None) -> KlaviyoApp:
    """The factory shared by the CLI, the demo and the tests."""
    return KlaviyoApp(Path(config_path) if config_path else None, demo=demo)


def run_app(config_path: Path | str | None = None, *, demo: DemoInfo | None = None) -> int:
    """Run the TUI; returns the process exit code."""
    app = make_app(config_path, demo=demo)
    app.run()
    return app.return_code or 0
