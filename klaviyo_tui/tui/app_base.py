"""App-wide behaviour every screen relies on, kept out of the routing code in app.py.

- Toasts show text, never markup, and are repainted away when they expire.
- Keys typed while a screen is being shown are held and replayed to it (keys.py).
- Pasted text has its control characters made visible before any field gets it.
- Space presses the focused button, as Enter does.
- A worker that fails outside a screen shows an error panel, never a traceback.
- Quitting with unsaved work on a screen (the export builder) asks first, and so does quitting
  while a run is going: it stops the run (resumable), and the process says so (exit code 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from typing import Any

from rich.text import Text
from textual import events
from textual.app import App
from textual.binding import Binding
from textual.notifications import Notify, SeverityLevel
from textual.widgets import Button
from textual.worker import Worker, WorkerState

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.redaction import printable, safe_text
from klaviyo_tui.run.progress import plural
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.keys import KeyHold
from klaviyo_tui.tui.runs import RunHandle
from klaviyo_tui.tui.screens.dialogs import ConfirmModal


def pasted_text(text: str) -> str:
    """A paste as fields get it: line ends normalised, other control characters made visible
    (a pasted ESC would otherwise reach the terminal when the field is drawn)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return printable(text, keep_layout=True, controls_only=True)


class AppBase(App[int]):
    """The behaviour above; KlaviyoApp adds routing and the run registry."""

    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        Binding("f1", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
        Binding("space", "press_focused", "Press", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keys = KeyHold(self)
        self.runs: dict[str, RunHandle] = {}  # the run registry (app.py), by export
        self.resumable = True  # a stopped run can be resumed later (not in the demo)

    def on_mount(self) -> None:
        self.screen_change_signal.subscribe(self, self.keys.screen_changed, immediate=True)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Paste) and not event.is_forwarded:
            event = events.Paste(pasted_text(event.text))
        if not self.keys.hold(event):
            await super().on_event(event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a toast of plain text: names and messages come from data, never markup.

        Thread-safe, as Textual's: it only posts a message.
        """
        del markup
        text, head = safe_text(message, keep_layout=True), safe_text(title)
        super().notify(text, title=head, severity=severity, timeout=timeout, markup=False)

    def on_notify(self, event: Notify) -> None:
        # Textual can leave an expired toast drawn until the next key: repaint once it is gone.
        self.set_timer(event.notification.timeout + 0.1, self._repaint)

    def _repaint(self) -> None:
        if self.screen_stack:  # the toast's timer can outlive the screens while the app closes
            self.screen.refresh(repaint=True, layout=True)

    async def action_quit(self) -> None:
        """Quit; a screen with unsaved work (a `can_leave(then)` hook, e.g. the export builder)
        asks first and calls `then` once the user agrees; then a run still going asks."""
        for screen in reversed(self.screen_stack):
            can_leave = getattr(screen, "can_leave", None)
            if can_leave is not None and not can_leave(self._quit_unless_running):
                return
        self._quit_unless_running()

    def _quit_unless_running(self) -> None:
        running = [name for name, handle in self.runs.items() if handle.active]
        if not running:
            self.exit()
            return
        them = "it" if len(running) == 1 else "them"
        question = (
            f"{plural(len(running), 'run')} still going: {', '.join(map(repr, running))}. "
            f"Quitting stops {them}. Klaviyo keeps every batch it accepted"
            + (
                ", and Resume (in History) goes on without sending any twice."
                if self.resumable
                else "."
            )
        )
        modal = ConfirmModal("Stop and quit?", question, yes="Stop and quit", no="Keep running")

        def answered(stop: bool | None) -> None:
            if stop:
                self.run_worker(self._stop_runs_and_exit(running), group="quit")

        self.push_screen(modal, answered)

    async def _stop_runs_and_exit(self, running: list[str]) -> None:
        """Cancel the runs and wait for each to record itself as interrupted, then exit with
        130 and the command that resumes each (the terminal's last words, as plain text)."""
        workers = [h.worker for h in self.runs.values() if h.worker is not None and h.active]
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.wait(), timeout=15)
        said = f"Stopped {plural(len(running), 'run')}."
        if self.resumable:
            resume = [f"  klaviyo-tui run {shlex.quote(name)} --resume" for name in running]
            said = "\n".join([f"{said} Continue with:", *resume])
        self.exit(return_code=ExitCode.INTERRUPTED, message=Text(printable(said, keep_layout=True)))

    def action_help(self) -> None:
        """Screens' help binding; KlaviyoApp shows the help screen."""

    def action_help_while_typing(self) -> None:
        self.action_help()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "help_while_typing":  # F1 is offered only while `?` would be typed
            # no screen while the app shuts down, and `focused` would raise
            focused = self.focused if self.screen_stack else None
            return focused is not None and focused.check_consume_key("question_mark", "?")
        return True

    def action_press_focused(self) -> None:
        if isinstance(self.focused, Button):
            self.focused.press()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.ERROR or worker.error is None or worker.group == "io":
            return  # "io" workers are awaited by a caller, which shows the error itself
        from klaviyo_tui.tui.screens.dialogs import ErrorModal

        self.push_screen(ErrorModal(describe_error(worker.error)))
