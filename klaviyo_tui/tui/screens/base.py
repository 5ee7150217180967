"""A screen base that turns failed workers into error panels instead of tracebacks."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import Screen
from textual.worker import Worker, WorkerState

from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.dialogs import ErrorModal

T = TypeVar("T")


class BaseScreen(Screen[T]):
    """Workers here use exit_on_error=False; this handler shows their errors to the user."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            self.show_error(worker.error)

    def show_error(self, exc: BaseException) -> None:
        self.app.push_screen(ErrorModal(describe_error(exc)))
