"""The demo banner: where the sandbox runs and the key to paste (shown on Home and the wizard)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Static


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """What the demo banner shows: where the sandbox is and the key to paste."""

    base_url: str
    api_key: str
    sample_path: Path


class DemoBanner(Horizontal):
    """Demo mode: sandbox URL and API key, with a button that fills the wizard's fields."""

    class UseKey(Message):
        """The user asked to paste the demo key into the form."""

    def __init__(self, demo: DemoInfo, *, show_button: bool = False) -> None:
        super().__init__(id="demo-banner")
        self.demo = demo
        self.show_button = show_button

    def compose(self) -> ComposeResult:
        text = Content.from_markup(
            "[b]Demo mode[/b]: a sandbox Klaviyo at $url (nothing real is touched); its API key "
            "is [b]$key[/b]",
            url=self.demo.base_url,
            key=self.demo.api_key,
        )
        yield Static(text, id="demo-text")
        if self.show_button:
            yield Button("Paste key (F2)", id="use-demo-key", compact=True)

    @on(Button.Pressed, "#use-demo-key")
    def _use(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.UseKey())
