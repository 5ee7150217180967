"""The export builder's four tabs, composed here so the screen module keeps only behaviour.

Each function runs inside `ExportBuilderScreen.compose` (the compose stack is Textual's), so its
`with` blocks nest widgets exactly as if they were written inline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import (
    Button,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from klaviyo_tui.store.config import Export, Segment
from klaviyo_tui.tui.widgets.columns import ColumnsPane

TAB_IDS = ("tab-list", "tab-source", "tab-columns", "tab-check")
SAVE_NOTE = (
    "Save keeps the export for later (run it from Home with [b]r[/b], or headless with "
    "[b]klaviyo-tui run NAME[/b]); [b]Save and run[/b] starts it now."
)


class BuilderTabs(TabbedContent):
    """TabbedContent that ignores a stale "focus moved into pane X" message.

    Focusing a field posts that message; if the user switched tabs before it arrived (F6 right
    after the builder opened), the stock widget would jump back to the old tab.
    """

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors:
            event.stop()
            return
        super()._on_tab_pane_focused(event)


def _scroll() -> VerticalScroll:
    # not a focus stop of its own: Tab goes straight to the first field
    return VerticalScroll(can_focus=False)


def list_tab(e: Export | None, conns: list[tuple[str, str]], list_text: str) -> Iterator[Widget]:
    with TabPane("1 List", id="tab-list"), _scroll():
        yield Label("Export name", classes="field-label")
        yield Input(
            e.name if e else "",
            placeholder="e.g. vip-customers",
            id="name",
            disabled=e is not None,
            compact=True,
        )
        yield Label("Connection", classes="field-label")
        yield Select(
            conns,
            compact=True,
            id="connection",
            allow_blank=False,
            value=e.connection if e else conns[0][1],
        )
        yield Label("Klaviyo list", classes="field-label")
        yield Static(list_text, id="list-label")
        with Horizontal(classes="row"):
            yield Button("Pick or create list…", id="pick-list", variant="primary", compact=True)
        with Horizontal(classes="row"):
            yield Input(placeholder="…or type a list ID (e.g. Y6nRLr)", id="list-id", compact=True)
            yield Button("Check ID", id="check-list", compact=True)


def source_tab(segment: Segment | None) -> Iterator[Widget]:
    with TabPane("2 Source", id="tab-source"), _scroll():
        is_sql = bool(segment and segment.query)
        with RadioSet(id="source-kind"):
            yield RadioButton("File (CSV, Parquet, xlsx, JSONL)", value=not is_sql, id="kind-file")
            yield RadioButton("SQL database (URL + query)", value=is_sql, id="kind-sql")
        with Horizontal(classes="row", id="file-row"):
            yield Input(
                segment.source if segment and not is_sql else "",
                placeholder="/path/to/customers.csv",
                id="path",
                compact=True,
            )
            yield Button("Browse…", id="browse", compact=True)
        yield Input(
            segment.source if segment and is_sql else "",
            placeholder="sqlite:///shop.db or postgresql://user@host/db",
            id="sql-url",
            compact=True,
        )
        yield Input(
            segment.query or "" if segment else "",
            placeholder="SELECT email, phone FROM customers",
            id="sql-query",
            compact=True,
        )
        with Horizontal(classes="row"):
            yield Button("Load columns", id="load", variant="primary", compact=True)
        yield Static("", id="source-status", classes="help")
        yield Label("Filter (optional, SQL WHERE)", classes="field-label")
        yield Input(
            segment.filter or "" if segment else "",
            placeholder="e.g. country = 'US' AND orders > 2",
            id="filter",
            compact=True,
        )
        yield Static("", id="count", classes="help")


def columns_tab() -> Iterator[Widget]:
    with TabPane("3 Columns", id="tab-columns"):
        yield ColumnsPane(id="columns")


def check_tab(e: Export | None) -> Iterator[Widget]:
    with TabPane("4 Check & save", id="tab-check"), _scroll():
        yield Static("Press Check rows to validate the mapped rows.", id="checks")
        yield Label("Default phone region (for numbers without +country)", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(
                e.default_region if e else "US",
                id="region",
                placeholder="Default phone region, e.g. US",
                compact=True,
            )
            yield Button("Check rows", id="check", compact=True)
        yield Label("Schedule (optional, cron, local time)", classes="field-label")
        yield Input(
            e.schedule or "" if e else "",
            placeholder="e.g. 0 6 * * 1-5",
            id="schedule",
            compact=True,
        )
        yield Static("Empty: runs only when you start it.", id="schedule-status", classes="help")
        yield Static(SAVE_NOTE, classes="help")
        yield Static("", id="save-error", classes="error-text")


def nav_bar() -> Iterator[Widget]:
    """One row under every tab: the way forward is always a visible button."""
    with Horizontal(id="builder-nav"):
        yield Button("Cancel", id="cancel", compact=True)
        yield Static("", classes="spacer")
        yield Button("‹ Back", id="prev", compact=True)
        yield Button("Next ›", id="next", variant="primary", compact=True)
        yield Button("Save", id="save", compact=True)
        yield Button("Save and run ›", id="save-run", variant="success", compact=True)


def first_field(screen: Any, tab: str) -> str:
    """The selector to focus when `tab` opens: where a newcomer's next keystroke belongs."""
    if tab == "tab-list":
        return "#name" if not screen.query_one("#name", Input).value.strip() else "#pick-list"
    if tab == "tab-source":
        if screen.query_one("#kind-sql", RadioButton).value:
            return "#sql-url"
        if screen.frame is None and screen.query_one("#path", Input).value.strip():
            return "#load"
        return "#path" if screen.frame is None else "#filter"
    if tab == "tab-columns":
        email = screen.query_one("#map-email", Select).value
        return "#next" if isinstance(email, str) else "#map-email"
    return "#save-run"
