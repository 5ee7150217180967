"""The builder's frame: the five tab panes, and the nav bar where the way forward is always a
visible button.

`first_focus` picks where a newcomer's next keystroke belongs when a tab opens: the tab's own
choice (its `first_focus()`), else the nav bar's Next (or Save and run on the last tab).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.containers import Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Static, TabbedContent, TabPane

from klaviyo_tui.store.config import Config, Export
from klaviyo_tui.tui.screens.builder.check_tab import CheckTab
from klaviyo_tui.tui.screens.builder.columns_tab import ColumnsTab
from klaviyo_tui.tui.screens.builder.list_tab import ListTab
from klaviyo_tui.tui.screens.builder.source_tab import SourceTab
from klaviyo_tui.tui.screens.builder.sync_tab import SyncTab

TAB_IDS = ("tab-list", "tab-source", "tab-columns", "tab-sync", "tab-check")


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


def tab_panes(existing: Export | None, config: Config) -> Iterator[Widget]:
    """The tabs, each one widget that owns its fields (runs inside the screen's compose)."""
    segment = config.segments.get(existing.segments[0]) if existing and existing.segments else None
    with BuilderTabs(id="tabs"):
        with TabPane("1 List", id="tab-list"):
            yield ListTab(existing, config.connections, id="list-tab")
        with TabPane("2 Source", id="tab-source"):
            yield SourceTab(segment, id="source-tab")
        with TabPane("3 Columns", id="tab-columns"):
            yield ColumnsTab(id="columns")
        with TabPane("4 Sync", id="tab-sync"):
            yield SyncTab(existing, id="sync-tab")
        with TabPane("5 Check & save", id="tab-check"):
            yield CheckTab(existing, id="check-tab")


def nav_bar() -> Iterator[Widget]:
    """One row under every tab (runs inside the screen's compose)."""
    with Horizontal(id="builder-nav"):
        yield Button("Cancel", id="cancel", compact=True)
        yield Static("", classes="spacer")
        yield Button("‹ Back", id="prev", compact=True)
        yield Button("Next ›", id="next", variant="primary", compact=True)
        yield Button("Save", id="save", compact=True)
        yield Button("Save and run ›", id="save-run", variant="success", compact=True)


def next_tab(active: str, step: int) -> str:
    """The tab `step` away from `active`, stopping at the ends."""
    current = TAB_IDS.index(active) if active in TAB_IDS else 0
    return TAB_IDS[max(0, min(len(TAB_IDS) - 1, current + step))]


def show_nav(screen: Screen[Any], tab: str) -> None:
    """Back and Next only where there is a tab to go to."""
    index = TAB_IDS.index(tab) if tab in TAB_IDS else 0
    screen.query_one("#prev", Button).display = index > 0
    screen.query_one("#next", Button).display = index < len(TAB_IDS) - 1


def first_focus(screen: Screen[Any], tab: str) -> Widget:
    """The widget to focus when `tab` opens."""
    pane = screen.query_one(f"#{tab}", TabPane).children[0]
    target: Widget | None = getattr(pane, "first_focus", lambda: None)()
    return target or screen.query_one("#save-run" if tab == "tab-check" else "#next")
