"""The export builder: five tab widgets (list, source and filter, columns, sync, check and save).

Each tab owns its fields and handlers and posts typed messages up; this screen only orchestrates:
which tab shows, the nav bar (the way forward is always a visible button, so it fits 80×24),
feeding one tab's result to another, reading the form back, saving and leaving. Leaving with
unsaved changes asks first, by Esc or by ctrl+q (the app asks `can_leave`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Button, Footer, Header, Input, TabbedContent, Tabs

from klaviyo_tui.store.config import Export, Segment
from klaviyo_tui.tui.screens.base import HELP_KEYS, BaseScreen
from klaviyo_tui.tui.screens.builder import form, nav
from klaviyo_tui.tui.screens.builder.check_tab import CheckTab
from klaviyo_tui.tui.screens.builder.columns_tab import ColumnsTab
from klaviyo_tui.tui.screens.builder.filter_field import FilterField
from klaviyo_tui.tui.screens.builder.list_tab import ListTab
from klaviyo_tui.tui.screens.builder.source_tab import SourceTab
from klaviyo_tui.tui.screens.builder.sync_tab import SyncTab
from klaviyo_tui.tui.screens.dialogs import ConfirmModal

LEAVE_QUESTION = "Leave the builder? The changes to this export have not been saved."


class ExportBuilderScreen(BaseScreen[Export | None]):
    """Build or edit an export. Dismisses with the saved Export, or None when cancelled."""

    BINDINGS = [
        *HELP_KEYS,  # first: a narrow footer cuts the other keys before it cuts help
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
        Binding("f6,ctrl+pagedown", "switch_tab(1)", "Next tab", key_display="F6", priority=True),
        Binding("f5,ctrl+pageup", "switch_tab(-1)", "Prev tab", key_display="F5", priority=True),
    ]

    def __init__(self, existing: Export | None = None) -> None:
        super().__init__()
        self.existing = existing
        self.list_id: str | None = existing.list_id if existing else None
        self.list_name: str | None = existing.list_name if existing else None
        self.frame: Any = None  # the first rows of the loaded source
        self.loaded_segment: Segment | None = None
        self.matching: tuple[str | None, int | None] = (None, None)  # filter, rows it keeps
        self.baseline: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield from nav.tab_panes(self.existing, self.app.config)
        yield from nav.nav_bar()
        yield Footer()

    def on_mount(self) -> None:
        demo = self.app.demo
        if self.existing:
            self.load_source()
        elif demo:
            self.query_one(SourceTab).suggest(demo.sample_path)
        self.baseline = form.form_state(self)
        nav.show_nav(self, "tab-list")
        self._focus_first("tab-list")  # at once: keys typed right after `n` land in the name

    def load_source(self) -> None:
        self.query_one(SourceTab).load()

    # ---- tabs and the nav bar ----------------------------------------------------------------
    def action_switch_tab(self, step: int) -> None:
        self.show_tab(nav.next_tab(self.query_one(TabbedContent).active, step))

    def show_tab(self, tab: str) -> None:
        """Open `tab`; its first field gets the focus."""
        tabbed = self.query_one(TabbedContent)
        if tabbed.active == tab:
            self._focus_first(tab)
            return
        self.set_focus(tabbed.query_one(Tabs))  # focus left in the old pane would switch back to it
        tabbed.active = tab

    @on(TabbedContent.TabActivated)
    def _tab_opened(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or "tab-list"
        nav.show_nav(self, tab)
        self.call_after_refresh(self._focus_first, tab)
        if tab == "tab-check":
            self._run_check()
        elif tab == "tab-sync":
            mapping = self.query_one(ColumnsTab).mapping()
            self.query_one(SyncTab).set_phone_mapped(
                not isinstance(mapping, str) and bool(mapping.phone_number)
            )

    def _focus_first(self, tab: str) -> None:
        # set_focus is immediate (widget.focus() is deferred and could land after a tab switch)
        if self.query_one(TabbedContent).active == tab:
            self.set_focus(nav.first_focus(self, tab))

    @on(Button.Pressed, "#next,#prev")
    @on(Input.Submitted, "#filter")
    def _step(self, event: Button.Pressed | Input.Submitted) -> None:
        self.action_switch_tab(-1 if event.control and event.control.id == "prev" else 1)

    # ---- what the tabs report ----------------------------------------------------------------
    @on(ListTab.ListChosen)
    def _list_chosen(self, event: ListTab.ListChosen) -> None:
        self.list_id, self.list_name = event.list_id, event.list_name
        self.query_one("#next", Button).focus()

    @on(SourceTab.SourceLoaded)
    def _source_loaded(self, event: SourceTab.SourceLoaded) -> None:
        first_load = self.frame is None and self.loaded_segment is None
        self.frame, self.loaded_segment = event.frame, event.segment
        mapping = self.existing.mapping if self.existing and not form.source_changed(self) else None
        self.query_one(ColumnsTab).load(event.frame, event.email, mapping)
        self.query_one(SyncTab).set_columns([str(c) for c in event.frame.columns])
        self.query_one(CheckTab).forget()
        if first_load and self.existing:  # the saved export, as it opened: nothing changed yet
            self.baseline = form.form_state(self)

    @on(SourceTab.SourceFailed)
    def _source_failed(self) -> None:
        self.frame = self.loaded_segment = None

    @on(FilterField.Counted)
    def _filter_counted(self, event: FilterField.Counted) -> None:
        self.matching = (event.filter, event.matching)
        self.query_one(SyncTab).set_rows(event.matching)
        self._run_check()

    @on(ColumnsTab.MappingChanged)
    @on(CheckTab.CheckRequested)
    def _tab_changed(self, event: ColumnsTab.MappingChanged | CheckTab.CheckRequested) -> None:
        self._run_check(force=isinstance(event, CheckTab.CheckRequested))

    def _run_check(self, force: bool = False) -> None:
        """Feed the Check tab what the other tabs hold; it validates in a thread when shown."""
        if self.query_one(TabbedContent).active == "tab-check":
            self.query_one(CheckTab).run_check(*form.check_inputs(self), force=force)

    # ---- save and leave ----------------------------------------------------------------------
    @on(Button.Pressed, "#save,#save-run")
    def _save_pressed(self, event: Button.Pressed) -> None:
        self.action_save(run=event.button.id == "save-run")

    def action_save(self, run: bool = False) -> None:
        built = form.read_export(self)
        check = self.query_one(CheckTab)
        if isinstance(built, str):
            check.show_save_error(built)
            self.notify(built, title="Not saved yet", severity="warning", markup=False)
            return
        check.show_save_error("")
        self._save(*built, run=run)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def _save(self, export: Export, segment: Segment, run: bool = False) -> None:
        app = self.app
        await app.save_config(form.storing(export, segment))
        self.dismiss(export)
        if run:
            app.start_run(export.name)
        else:
            saved = f"Saved “{export.name}”. It has not run: press r on Home to run it."
            self.notify(saved, title="Export saved", timeout=6, markup=False)

    def can_leave(self, then: Callable[[], object]) -> bool:
        """True when nothing would be lost; otherwise ask, and call `then` if the user discards."""
        if not form.has_changes(self):
            return True
        if isinstance(self.app.screen, ConfirmModal):
            return False  # already asking (presses queued before the question showed)
        modal = ConfirmModal("Discard changes?", LEAVE_QUESTION, yes="Discard", no="Keep editing")

        def answered(discard: bool | None) -> None:
            if discard:
                then()

        self.app.push_screen(modal, answered)
        return False

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.can_leave(lambda: self.dismiss(None)):
            self.dismiss(None)
