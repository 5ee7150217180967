"""Screen bases: typed access to the app, failed workers shown as error panels, help keys first.

`app` is typed as `KlaviyoApp` (textual.getters.app), so screens call the app's own methods
without casts. Workers use exit_on_error=False; `on_worker_state_changed` shows their errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from textual import getters
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from klaviyo_tui.tui.app import KlaviyoApp
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.dialogs import ErrorModal

if TYPE_CHECKING:
    from klaviyo_tui.tui.runs import RunHandle

T = TypeVar("T")

# First in a screen's BINDINGS, so a narrow footer cuts other keys before it cuts help. While a
# text field has focus `?` is typed into it, and the footer offers F1 instead.
HELP_KEYS = [
    Binding("question_mark", "app.help", "Help", key_display="?"),
    Binding("f1", "app.help_while_typing", "Help", key_display="F1"),
]


class BaseScreen(Screen[T]):
    """A full screen of klaviyo-tui."""

    app = getters.app(KlaviyoApp)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            self.show_error(worker.error)

    def show_error(self, exc: BaseException) -> None:
        self.app.push_screen(ErrorModal(describe_error(exc)))

    @property
    def hidden(self) -> bool:
        """Under an opaque screen: nothing drawn here would be seen (on_screen_resume redraws)."""
        top = self.app.screen
        return top is not self and top.styles.background.a == 1

    def watch_runs(self, callback: Callable[[RunHandle], None]) -> None:
        """Call `callback` on each run update, at once rather than as a message to this screen.

        Textual draws the screen just under the top one as if visible, and every message that
        screen handles ends in a repaint of it and of the whole top screen: a run's dozens of
        updates a second drew Home and the run view in full each time (tui_bench: ~22 extra
        full frames a second). Callbacks check `hidden` and skip their drawing."""
        self.app.run_updated.subscribe(self, callback, immediate=True)


class BaseModal(ModalScreen[T]):
    """A dialog over another screen."""

    app = getters.app(KlaviyoApp)
