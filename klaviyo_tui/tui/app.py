"""The Textual app: stylesheet, global bindings, routing between screens, and the run registry.

Screens own their behaviour. The App keeps only what must outlive a screen: the loaded config
(an attribute the screens watch), and the export runs, whose workers live here so a run keeps
going while the user looks at other screens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerFailed, WorkerState

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import JobConfirmed
from klaviyo_tui.run.progress import RunProgress
from klaviyo_tui.store import paths
from klaviyo_tui.store.config import Config, ConfigError, Connection
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.palette import export_commands
from klaviyo_tui.tui.screens.dialogs import ConfirmModal, ErrorModal

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """What the demo banner shows: where the sandbox is and the key to paste."""

    base_url: str
    api_key: str
    sample_path: Path


@dataclass
class RunHandle:
    """One export run owned by the App: its folded progress and the worker driving it."""

    export: str
    progress: RunProgress
    kind: str = "run"  # run | resume | retry
    worker: Worker[None] | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def active(self) -> bool:
        return self.worker is not None and self.worker.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )


class KlaviyoApp(App[int]):
    """klaviyo-tui: connections, exports, runs and their history."""

    CSS_PATH = "app.tcss"
    TITLE = "klaviyo-tui"
    SUB_TITLE = "segments → Klaviyo lists"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        Binding("f1", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
    ]

    config: reactive[Config] = reactive(Config, always_update=True, init=False)

    def __init__(self, config_path: Path | None = None, *, demo: DemoInfo | None = None) -> None:
        super().__init__()
        self.config_path = paths.config_path(config_path)
        self.demo = demo
        self.store: Any = None  # ConfigStore once loaded
        self.config_error: str | None = None
        self.runs: dict[str, RunHandle] = {}
        self.last_runs: dict[str, Any] = {}  # export -> its latest history RunRecord (from Home)
        self.run_updated: Signal[RunHandle] = Signal(self, "run-updated")
        self._first_launch_checked = False

    # ---- start-up --------------------------------------------------------------------------------
    def on_mount(self) -> None:
        from klaviyo_tui.tui.screens.home import HomeScreen

        self.push_screen(HomeScreen())
        self.set_interval(0.5, self._sample_runs)
        self._load_config()

    @work(thread=True, exit_on_error=False, group="config")
    def _load_config(self) -> None:
        from klaviyo_tui.store.config_store import ConfigStore

        try:
            store = ConfigStore(self.config_path)
        except ConfigError as exc:
            self.call_from_thread(self._config_failed, exc)
            return
        self.call_from_thread(self._config_loaded, store)

    def _config_loaded(self, store: Any) -> None:
        self.store = store
        self.config = store.config
        if not self._first_launch_checked:
            self._first_launch_checked = True
            if not store.config.connections:
                self.connection_wizard()

    def _config_failed(self, error: ConfigError) -> None:
        self.config_error = error.message
        self.push_screen(ErrorModal(describe_error(error)))

    async def in_thread(self, fn: Callable[..., R], *args: Any) -> R:
        """Run blocking work (keyring, SQLite, pandas, files) in a thread worker; await it."""
        worker: Worker[R] = self.run_worker(
            partial(fn, *args), thread=True, exit_on_error=False, group="io"
        )
        try:
            return await worker.wait()
        except WorkerFailed as failed:
            raise failed.error from None

    async def save_config(self, edit: Callable[[Any], None]) -> Config:
        """Apply an edit to the ConfigStore and save it atomically, off the event loop."""
        from klaviyo_tui.store.config_store import ConfigStore

        if self.store is None:
            self.store = await self.in_thread(ConfigStore, self.config_path)

        def apply() -> Config:
            edit(self.store)
            self.store.save()
            return self.store.config

        self.config = await self.in_thread(apply)
        return self.config

    async def reload_config(self) -> Config:
        """Re-read the file after a service changed it."""
        from klaviyo_tui.store.config_store import ConfigStore

        self.store = await self.in_thread(ConfigStore, self.config_path)
        self.config = self.store.config
        return self.config

    # ---- errors ----------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        for handle in self.runs.values():
            if handle.worker is worker and event.state not in (WorkerState.PENDING,):
                self.run_updated.publish(handle)  # a finished run changes the keys on show
        if event.state != WorkerState.ERROR or worker.error is None:
            return
        if worker.group == "io":  # awaited by a caller, which shows the error itself
            return
        self.push_screen(ErrorModal(describe_error(worker.error)))

    # ---- flows -----------------------------------------------------------------------------------
    @work(exclusive=True, group="wizard", exit_on_error=False)
    async def connection_wizard(self, existing: Connection | None = None) -> None:
        """Form → consent → verify and save; 'back' from a step returns to the form."""
        from klaviyo_tui.tui.screens.connection import ConnectionFormScreen, VerifyScreen
        from klaviyo_tui.tui.screens.consent import ConsentScreen

        draft = None
        while True:
            draft = await self.push_screen_wait(ConnectionFormScreen(existing, draft, self.demo))
            if draft is None:
                return
            consent = draft.consent
            if consent is None:
                consent = await self.push_screen_wait(ConsentScreen(draft.display_name))
                if consent is None:
                    continue
                draft = draft.with_consent(consent)
            saved = await self.push_screen_wait(VerifyScreen(draft))
            if saved is not None:
                self.notify(f"Connection “{saved.display_name}” saved.", title="Saved")
                return

    def edit_export(self, name: str | None = None) -> None:
        from klaviyo_tui.tui.screens.builder import ExportBuilderScreen

        if not self.config.connections:
            self.notify("Add a connection first (c).", severity="warning")
            return
        existing = self.config.exports.get(name) if name else None
        self.push_screen(ExportBuilderScreen(existing))

    def start_run(
        self, export_name: str, *, resume: bool = False, retry_failed_of: int | None = None
    ) -> RunHandle | None:
        """Start (or re-open) the run of an export, then show it."""
        from klaviyo_tui.tui.screens.run import RunScreen

        handle = self.runs.get(export_name)
        if handle is None or not handle.active:
            if export_name not in self.config.exports:
                self.notify(f"No export named {export_name!r}.", severity="error")
                return None
            kind = "resume" if resume else "retry" if retry_failed_of is not None else "run"
            handle = RunHandle(export_name, RunProgress(export_name), kind=kind)
            handle.progress.sample(handle.started)  # the rate's baseline
            self.runs[export_name] = handle
            handle.worker = self._run_worker(handle, resume, retry_failed_of)
        self.push_screen(RunScreen(handle))
        return handle

    @work(group="runs", exit_on_error=False)
    async def _run_worker(
        self, handle: RunHandle, resume: bool, retry_failed_of: int | None
    ) -> None:
        """Drive the run service and fold its events; survives screen changes."""
        import asyncio

        from klaviyo_tui.services.runs import run

        progress = handle.progress
        loop = asyncio.get_running_loop()

        def history_busy(message: str) -> None:  # called on the writing thread: never block it
            loop.call_soon_threadsafe(partial(self.notify, message, markup=False))

        try:
            events = run(
                self.config,
                handle.export,
                resume=resume,
                retry_failed_of=retry_failed_of,
                on_wait=history_busy,
            )
            async for event in events:
                progress.apply(event)
                if isinstance(event, JobConfirmed):
                    progress.sample(time.monotonic())
                self.run_updated.publish(handle)
        except asyncio.CancelledError:
            progress.interrupted = True
            progress.log.append("cancelled: the run can be resumed from History")
            self.run_updated.publish(handle)
            raise
        except Exception as exc:  # shown in the run view, with what to do
            info = describe_error(exc)
            progress.error = f"{info.title}: {info.as_text()}"
            progress.log.append(f"error: {info.message}")
            self.run_updated.publish(handle)
            return
        summary = progress.summary
        if summary is not None:
            done = sum(v for k, v in summary.counts.items() if k.startswith("imported"))
            self.notify(
                f"{handle.export}: {done:,} imported.",
                title="Run finished",
                severity="information" if summary.exit_code == ExitCode.OK else "warning",
                markup=False,
            )

    @work(exclusive=True, group="remove", exit_on_error=False)
    async def remove_export(self, name: str) -> None:
        """Ask, then remove the export (and its segments no other export uses)."""
        from klaviyo_tui.services import exports

        if name not in self.config.exports:
            return
        question = f"Remove the export “{name}”? Its run history is kept."
        if not await self.push_screen_wait(ConfirmModal("Remove export?", question)):
            return
        await self.in_thread(exports.remove_export, self.config_path, name)
        await self.reload_config()
        self.notify(f"Removed export “{name}”.", markup=False)

    @work(exclusive=True, group="remove", exit_on_error=False)
    async def remove_connection(self, name: str) -> None:
        """Ask, then remove the connection and delete its key from the keyring."""
        from klaviyo_tui.services import connections

        conn = self.config.connections.get(name)
        if conn is None:
            return
        users = [e.name for e in self.config.exports.values() if e.connection == name]
        extra = f"\nExports that use it will not run: {', '.join(users)}." if users else ""
        question = (
            f"Remove the connection “{conn.display_name}” and delete its API key from the "
            f"keyring? Data already in Klaviyo stays there.{extra}"
        )
        if not await self.push_screen_wait(ConfirmModal("Remove connection?", question)):
            return
        await self.in_thread(connections.remove_connection, self.config_path, name)
        await self.reload_config()
        self.notify(f"Removed “{conn.display_name}” and its key.", markup=False)

    def show_run_detail(self, run_id: int) -> None:
        from klaviyo_tui.tui.screens.history import RunDetailScreen

        self.push_screen(RunDetailScreen(run_id))

    def cancel_run(self, export_name: str) -> None:
        handle = self.runs.get(export_name)
        if handle and handle.worker and handle.active:
            handle.worker.cancel()

    def _sample_runs(self) -> None:
        now = time.monotonic()
        for handle in self.runs.values():
            if handle.active:
                handle.progress.sample(now)
                self.run_updated.publish(handle)

    # ---- actions ---------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Quit; a screen with unsaved work (a `can_leave(then)` hook) asks first."""
        for screen in reversed(self.screen_stack):
            can_leave = getattr(screen, "can_leave", None)
            if can_leave is not None and not can_leave(self.exit):
                return
        self.exit()

    def action_help(self) -> None:
        from klaviyo_tui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_new_connection(self) -> None:
        self.connection_wizard()

    def action_new_export(self) -> None:
        self.edit_export(None)

    def action_history(self, export: str | None = None) -> None:
        from klaviyo_tui.tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen(export))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New connection", "Add a Klaviyo account", self.action_new_connection)
        yield SystemCommand("New export", "Build an export to a list", self.action_new_export)
        yield SystemCommand("History", "Past runs, rejects, retry and resume", self.action_history)
        yield SystemCommand("Help", "Keys and how the app works", self.action_help)
        for name in sorted(self.config.exports):
            yield from export_commands(self, name)
        for key, conn in sorted(self.config.connections.items()):
            label = conn.display_name
            edit = partial(self.connection_wizard, conn)
            yield SystemCommand(f"Edit connection {label}", "Rename, change key or URL", edit)
            remove = partial(self.remove_connection, key)
            yield SystemCommand(f"Remove connection {label}", "And delete its key", remove)


def make_app(config_path: Path | str | None = None, *, demo: DemoInfo | None = None) -> KlaviyoApp:
    """The factory shared by the CLI, the demo and the tests."""
    return KlaviyoApp(Path(config_path) if config_path else None, demo=demo)


def run_app(config_path: Path | str | None = None, *, demo: DemoInfo | None = None) -> int:
    """Run the TUI; returns the process exit code."""
    app = make_app(config_path, demo=demo)
    app.run()
    return app.return_code or 0
