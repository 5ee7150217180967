"""The demo banner: where the sandbox runs and the key to paste (shown on Home and the wizard)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import DemoInfo


class DemoBanner(Horizontal):
    """Demo mode: sandbox URL and API key, with a button that fills the wizard's fields."""

    class UseKey(Message):
        """The user asked to paste the demo key into the form."""

    def __init__(self, demo: DemoInfo, *, show_button: bool = False) -> None:
        super().__init__(id="demo-banner")
        self.demo = demo
        self.show_button = show_button

    def compose(self) -> ComposeResult:
        yield Static(
            f"[b]Demo mode[/b]: a sandbox Klaviyo at {self.demo.base_url} (nothing real is "
            f"touched); its API key is [b]{self.demo.api_key}[/b]",
            id="demo-text",
        )
        if self.show_button:
            yield Button("Paste key (F2)", id="use-demo-key", compact=True)

    @on(Button.Pressed, "#use-demo-key")
    def _use(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.UseKey())
