"""The data privacy and compliance step: the user must actively accept before a key is saved."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.widgets import Button, Footer, Header, Label, Static

from klaviyo_tui.redaction import safe_text
from klaviyo_tui.store.config import Connection
from klaviyo_tui.store.consent import CONSENT_TEXT, CONSENT_TITLE, accept
from klaviyo_tui.tui.screens.base import HELP_KEYS, BaseScreen
from klaviyo_tui.tui.widgets.toggles import Checkbox


def record_consent() -> tuple[str, str]:
    """(accepted_at in UTC ISO 8601, OS user), exactly as the CLI records them."""
    accepted = accept(Connection(name="-", display_name="-"))
    return accepted.consent_accepted_at or "", accepted.consent_accepted_by or "unknown"


class AcceptBox(Checkbox):
    """Enter ticks the box; Enter on a ticked box goes on. Space toggles.

    So two quick Enters tick and advance, whatever the focus did in between, instead of ticking
    and unticking.
    """

    BINDINGS = [Binding("enter", "accept", "Accept", show=False)]

    class Confirmed(Message):
        """Enter on the ticked box: the user wants to go on."""

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As many lines as the label needs (a ToggleButton is always one line high)."""
        return max(1, len(self.render().wrap(width)))

    def action_accept(self) -> None:
        if self.value:
            self.post_message(self.Confirmed())
        else:
            self.value = True


class ConsentScreen(BaseScreen[tuple[str, str] | None]):
    """Step 2: dismisses (accepted_at UTC ISO, OS user), or None for back."""

    BINDINGS = [*HELP_KEYS, Binding("escape", "back", "Back")]

    def __init__(self, display_name: str) -> None:
        super().__init__()
        self.display_name = display_name

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(classes="form", can_focus=False):  # arrows still scroll it
            title = f"{safe_text(self.display_name)} · step 2 of 3: {CONSENT_TITLE.lower()}"
            yield Label(Content(title), classes="step-title")
            yield Static(Content(CONSENT_TEXT), id="consent-text")
            yield AcceptBox(
                "I understand and accept: personal data leaves this machine for Klaviyo.",
                id="accept",
            )
            yield Label(
                "Recorded in the config with the time (UTC) and your OS user name.",
                classes="help",
            )
        with Horizontal(classes="buttons"):
            yield Button("‹ Back", id="back", compact=True)
            yield Button(
                "Accept and connect ›",
                id="accept-button",
                variant="primary",
                disabled=True,
                compact=True,
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#accept", Checkbox).focus()

    @on(Checkbox.Changed, "#accept")
    def _toggled(self, event: Checkbox.Changed) -> None:
        self.query_one("#accept-button", Button).disabled = not event.value

    @on(AcceptBox.Confirmed)
    @on(Button.Pressed, "#accept-button")
    def _accepted(self) -> None:
        if not self.query_one("#accept", Checkbox).value:
            return
        self.dismiss(record_consent())

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)
