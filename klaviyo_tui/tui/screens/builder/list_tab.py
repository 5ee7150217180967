"""The List tab: the export's name, its connection and the Klaviyo list it fills.

An export whose connection was removed still opens: the connection shows as missing and the
user picks another (a Select cannot hold a value it has no option for).
"""

from __future__ import annotations

from typing import Any

from textual import getters, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from klaviyo_tui.store.config import Connection, Export
from klaviyo_tui.tui.app import KlaviyoApp
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.builder.fields import CONTROL_PICTURES, shown
from klaviyo_tui.tui.screens.connection import slugify


def list_text(list_id: str | None, name: str | None) -> Content:
    """`“VIP” (Y6nRLr)`; the name comes from Klaviyo, so it is shown as text."""
    if not list_id:
        return Content.styled("No list chosen yet.", "italic")
    quoted = f"“{shown(name, 60)}” " if name else ""
    return Content.assemble(quoted, (f"({shown(list_id, 40)})", "dim"))


class ListTab(VerticalScroll):
    """Name, connection and list. Posts `ListChosen` when a list is picked or checked."""

    app = getters.app(KlaviyoApp)

    class ListChosen(Message):
        """The user chose the Klaviyo list (from the picker, or by a checked ID)."""

        def __init__(self, list_id: str, list_name: str | None) -> None:
            super().__init__()
            self.list_id = list_id
            self.list_name = list_name

    def __init__(
        self, existing: Export | None, connections: dict[str, Connection], *, id: str | None = None
    ) -> None:
        super().__init__(can_focus=False, id=id)
        self.existing = existing
        self.connections = connections
        named = existing.connection if existing else None
        self.missing = named if named is not None and named not in connections else None

    def compose(self) -> ComposeResult:
        e = self.existing
        conns = sorted(self.connections.items())
        options = [(Content(shown(c.display_name, 60)), n) for n, c in conns]
        blank = self.missing is not None or not options
        value = Select.NULL if blank else e.connection if e else options[0][1]
        yield Label("Export name", classes="field-label")
        yield Input(
            e.name if e else "",
            placeholder="e.g. vip-customers",
            id="name",
            disabled=e is not None,
            compact=True,
            highlighter=CONTROL_PICTURES,
        )
        yield Label("Connection", classes="field-label")
        yield Select(
            options,
            compact=True,
            id="connection",
            allow_blank=blank,
            value=value,
            prompt="(pick a connection)",
        )
        missing = Static(self._missing_text(), id="connection-missing", classes="warning-text")
        missing.display = self.missing is not None
        yield missing
        yield Label("Klaviyo list", classes="field-label")
        chosen = list_text(e.list_id, e.list_name) if e else list_text(None, None)
        yield Static(chosen, id="list-label")
        with Horizontal(classes="row"):
            yield Button("Pick or create list…", id="pick-list", variant="primary", compact=True)
        with Horizontal(classes="row"):
            yield Input(
                placeholder="…or type a list ID (e.g. Y6nRLr)",
                id="list-id",
                compact=True,
                highlighter=CONTROL_PICTURES,
            )
            yield Button("Check ID", id="check-list", compact=True)

    def _missing_text(self) -> Content:
        name = shown(self.missing or "", 40)
        return Content(
            f"Connection '{name}' was removed: pick another. The list must be in its account."
        )

    # ---- read back -------------------------------------------------------------------------------
    def export_name(self) -> str:
        """The config name typed here (slugified), or ""."""
        text = self.query_one("#name", Input).value.strip()
        return slugify(text, set()) if text else ""

    def connection(self) -> str | None:
        value = self.query_one("#connection", Select).value
        return value if isinstance(value, str) and value in self.connections else None

    def connection_problem(self) -> str:
        if self.missing:
            return f"Connection '{shown(self.missing, 40)}' was removed: pick another (List tab)."
        return "Pick a connection (List tab)."

    def first_focus(self) -> Widget:
        if not self.query_one("#name", Input).value.strip():
            return self.query_one("#name")
        if self.connection() is None:
            return self.query_one("#connection")
        return self.query_one("#pick-list")

    # ---- events ----------------------------------------------------------------------------------
    @on(Select.Changed, "#connection")
    def _connection_changed(self) -> None:
        self.query_one("#connection-missing").display = self.connection() is None and bool(
            self.missing
        )

    @on(Input.Submitted, "#name")
    def _name_submitted(self) -> None:
        if self.connection() is None:
            self.query_one("#connection").focus()
        else:
            self.query_one("#pick-list").focus()

    @on(Button.Pressed, "#pick-list")
    def _pick_list(self) -> None:
        from klaviyo_tui.tui.screens.pickers import ListPickerScreen

        name = self.connection()
        if name is None:
            self.notify(self.connection_problem(), severity="warning", markup=False)
            return

        def picked(result: Any) -> None:
            if result is not None:
                self._chose(str(result.id), getattr(result, "name", None))

        suggested = self.query_one("#name", Input).value.strip()
        self.app.push_screen(ListPickerScreen(self.connections[name], suggested), picked)

    def _chose(self, list_id: str, name: str | None) -> None:
        label = self.query_one("#list-label", Static)
        label.remove_class("error-text")
        label.update(list_text(list_id, name))
        self.post_message(self.ListChosen(list_id, name))

    @on(Input.Submitted, "#list-id")
    @on(Button.Pressed, "#check-list")
    def _check_list_pressed(self) -> None:
        list_id = self.query_one("#list-id", Input).value.strip()
        if list_id:
            self.check_list(list_id)

    @work(exclusive=True, group="check-list", exit_on_error=False)
    async def check_list(self, list_id: str) -> None:
        """Look the ID up in the account (async httpx), then choose it."""
        from klaviyo_tui.services.lists import get_list

        label = self.query_one("#list-label", Static)
        name = self.connection()
        if name is None:
            label.update(Content(self.connection_problem()))
            label.add_class("error-text")
            return
        label.update(Content(f"Checking {shown(list_id, 40)} …"))
        try:
            found = await get_list(self.app.config, name, list_id)
        except Exception as exc:
            info = describe_error(exc)
            label.update(Content.assemble((info.title, "bold"), ": ", info.as_text()))
            label.add_class("error-text")
            return
        self._chose(found.id, found.name)
