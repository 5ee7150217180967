"""Small reusable modals: yes/no confirmation and an error panel. Self-contained, so DEFAULT_CSS.

Titles and messages carry names and server texts, so they are shown as text, never markup.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from klaviyo_tui.tui.errors import ErrorInfo
from klaviyo_tui.tui.text import shown


class ConfirmModal(ModalScreen[bool]):
    """Ask a yes/no question; dismisses True only on an explicit yes."""

    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > Vertical {
        width: 64; max-width: 95%; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmModal .title { text-style: bold; margin-bottom: 1; }
    ConfirmModal .keys { color: $text-muted; margin-top: 1; }
    ConfirmModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    ConfirmModal Button { margin-left: 1; }
    """
    BINDINGS = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, message: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self._title, self._message, self._yes, self._no = title, message, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(self._title), classes="title")
            yield Static(shown(self._message, keep_layout=True))
            yield Static(shown(f"y: {self._yes} · n or esc: {self._no}"), classes="keys")
            with Horizontal():
                yield Button(self._no, id="no")
                yield Button(self._yes, id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def _yes_pressed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no_pressed(self) -> None:
        self.dismiss(False)

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ErrorModal(ModalScreen[None]):
    """What went wrong and what to do about it. Never a traceback."""

    DEFAULT_CSS = """
    ErrorModal { align: center middle; }
    ErrorModal > Vertical {
        width: 70; max-width: 95%; height: auto; max-height: 90%; padding: 1 2;
        border: thick $error; background: $surface;
    }
    ErrorModal .title { text-style: bold; color: $error; margin-bottom: 1; }
    ErrorModal .hint { margin-top: 1; color: $text-muted; }
    ErrorModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    """
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(self.info.title), classes="title")
            yield Static(shown(self.info.message, keep_layout=True), classes="message")
            yield Static(shown(f"What to do: {self.info.hint}"), classes="hint")
            with Horizontal():
                yield Button("Close", id="close", variant="primary")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
