"""The export builder: list, source and filter, columns, checks and schedule, in four tabs.

Fits 80×24 because each tab holds one concern; a button row under the tabs always shows the way
forward (Next, Save, Save and run). Leaving with unsaved changes asks first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.timer import Timer
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    RadioButton,
    RadioSet,
    Select,
    Static,
    TabbedContent,
    Tabs,
)

from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens import builder_form as form
from klaviyo_tui.tui.screens import builder_tabs as tabs
from klaviyo_tui.tui.screens.base import BaseScreen
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.screens.pickers import FilePickerScreen, ListPickerScreen
from klaviyo_tui.tui.widgets.columns import ColumnsPane
from klaviyo_tui.tui.widgets.report import render_report

if TYPE_CHECKING:
    pass


class ExportBuilderScreen(BaseScreen[Export | None]):
    """Build or edit an export. Dismisses with the saved Export, or None when cancelled."""

    BINDINGS = [
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
        self.frame: Any = None  # preview DataFrame of the current source
        self.loaded_segment: Segment | None = None
        self._count_timer: Timer | None = None
        self._baseline: tuple[object, ...] = ()

    # ---- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        app = self.app
        e = self.existing
        segment = app.config.segments.get(e.segments[0]) if e and e.segments else None
        conns = [(c.display_name, n) for n, c in sorted(app.config.connections.items())]
        yield Header()
        with tabs.BuilderTabs(id="tabs"):
            yield from tabs.list_tab(e, conns, self._list_text())
            yield from tabs.source_tab(segment)
            yield from tabs.columns_tab()
            yield from tabs.check_tab(e)
        yield from tabs.nav_bar()
        yield Footer()

    def on_mount(self) -> None:
        self._show_kind()
        app = self.app
        if self.existing:
            self.load_source()
        elif app.demo:
            self.query_one("#path", Input).value = str(app.demo.sample_path)
            self.query_one("#source-status", Static).update(
                "Demo: the sample customers file is filled in. Press Load columns."
            )
        self._baseline = self._form_state()
        self._show_nav("tab-list")
        self._focus_first("tab-list")  # at once: keys typed right after `n` land in the name

    def _list_text(self) -> str:
        if not self.list_id:
            return "[i]No list chosen yet.[/i]"
        name = f"“{self.list_name}” " if self.list_name else ""
        return f"{name}[dim]({self.list_id})[/dim]"

    def _set_list(self, list_id: str, name: str | None) -> None:
        self.list_id, self.list_name = list_id, name
        self.query_one("#list-label", Static).update(self._list_text())

    def action_switch_tab(self, step: int) -> None:
        ids = tabs.TAB_IDS
        active = self.query_one(TabbedContent).active
        current = ids.index(active) if active in ids else 0
        self.show_tab(ids[max(0, min(len(ids) - 1, current + step))])

    def show_tab(self, tab: str) -> None:
        """Open `tab`; its first field gets the focus."""
        tabbed = self.query_one(TabbedContent)
        self.set_focus(tabbed.query_one(Tabs))  # focus left in the old pane would switch back to it
        tabbed.active = tab

    @on(TabbedContent.TabActivated)
    def _tab_opened(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or "tab-list"
        self._show_nav(tab)
        self.call_after_refresh(self._focus_first, tab)

    def _focus_first(self, tab: str) -> None:
        # set_focus is immediate (widget.focus() is deferred and could land after a tab switch)
        if self.query_one(TabbedContent).active == tab:
            self.set_focus(self.query_one(tabs.first_field(self, tab)))

    def _show_nav(self, tab: str) -> None:
        index = tabs.TAB_IDS.index(tab) if tab in tabs.TAB_IDS else 0
        self.query_one("#prev", Button).display = index > 0
        self.query_one("#next", Button).display = index < len(tabs.TAB_IDS) - 1

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.action_switch_tab(1)

    @on(Button.Pressed, "#prev")
    def _prev(self) -> None:
        self.action_switch_tab(-1)

    # ---- list ------------------------------------------------------------------------------------
    def _connection(self) -> Any:
        app = self.app
        return app.config.connections[str(self.query_one("#connection", Select).value)]

    @on(Button.Pressed, "#pick-list")
    def _pick_list(self) -> None:
        def picked(result: Any) -> None:
            if result is not None:
                self._set_list(result.id, result.name)
                self.query_one("#next", Button).focus()

        suggested = self.query_one("#name", Input).value.strip()
        self.app.push_screen(ListPickerScreen(self._connection(), suggested), picked)

    @on(Input.Submitted, "#name")
    def _name_submitted(self) -> None:
        target = "#next" if self.list_id else "#pick-list"
        self.query_one(target, Button).focus()

    @on(Input.Submitted, "#list-id")
    @on(Button.Pressed, "#check-list")
    def _check_list_pressed(self) -> None:
        list_id = self.query_one("#list-id", Input).value.strip()
        if list_id:
            self.check_list(list_id)

    @work(exclusive=True, group="check-list", exit_on_error=False)
    async def check_list(self, list_id: str) -> None:
        from klaviyo_tui.services.lists import get_list

        app = self.app
        label = self.query_one("#list-label", Static)
        label.update(Content(f"Checking {list_id} …"))
        try:
            found = await get_list(app.config, self._connection().name, list_id)
        except Exception as exc:
            info = describe_error(exc)
            label.update(Content.assemble((info.title, "bold"), ": ", info.as_text()))
            label.add_class("error-text")
            return
        label.remove_class("error-text")
        self._set_list(found.id, found.name)

    # ---- source ----------------------------------------------------------------------------------
    @on(RadioSet.Changed, "#source-kind")
    def _show_kind(self) -> None:
        sql = self.query_one("#kind-sql", RadioButton).value
        self.query_one("#file-row").display = not sql
        self.query_one("#sql-url").display = sql
        self.query_one("#sql-query").display = sql

    @on(Button.Pressed, "#browse")
    def _browse(self) -> None:
        app = self.app
        current = Path(self.query_one("#path", Input).value or ".").expanduser()
        start = current.parent if current.is_file() else current if current.is_dir() else Path.cwd()
        if app.demo and not self.query_one("#path", Input).value:
            start = app.demo.sample_path.parent

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#path", Input).value = str(path)
                self.load_source()

        app.push_screen(FilePickerScreen(start.resolve()), chosen)

    @on(Input.Submitted, "#path,#sql-query,#sql-url")
    @on(Button.Pressed, "#load")
    def load_source(self) -> None:
        segment = self.segment()
        status = self.query_one("#source-status", Static)
        if isinstance(segment, str):
            status.update(segment)
            return
        status.update("Reading the first rows…")
        self._read_preview(segment)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _read_preview(self, segment: Segment) -> None:
        from klaviyo_tui.input.preview import detect_email_column
        from klaviyo_tui.input.sources import preview

        try:
            frame = preview(segment, n=500)
            email = detect_email_column(frame)
        except Exception as exc:
            self.app.call_from_thread(self._preview_failed, exc)
            return
        self.app.call_from_thread(self._preview_loaded, segment, frame, email)

    def _preview_failed(self, exc: Exception) -> None:
        info = describe_error(exc)
        self.frame = self.loaded_segment = None  # the columns shown before belong to another file
        status = self.query_one("#source-status", Static)
        status.update(f"[b]{info.title}[/b]: {escape(info.message)}\nWhat to do: {info.hint}")
        status.add_class("error-text")
        self.query_one("#count", Static).update("")

    def _preview_loaded(self, segment: Segment, frame: Any, email: str | None) -> None:
        self.frame, self.loaded_segment = frame, segment
        status = self.query_one("#source-status", Static)
        status.remove_class("error-text")
        found = f"email column: {email}" if email else "no email column found: pick it"
        status.update(f"{len(frame.columns)} columns ({found}). Next: the Columns tab.")
        mapping = self.existing.mapping if self.existing and not self.frame_changed() else None
        self.query_one(ColumnsPane).load(frame, email, mapping)
        self._schedule_count()
        if self.query_one(TabbedContent).active == "tab-source":
            self.set_focus(self.query_one("#filter", Input))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.action_switch_tab(1)

    def frame_changed(self) -> bool:
        if not self.existing or not self.loaded_segment:
            return True
        app = self.app
        old = app.config.segments.get(self.existing.segments[0])
        return old is None or old.source != self.loaded_segment.source

    @on(Input.Changed, "#filter")
    def _schedule_count(self) -> None:
        self.query_one("#count", Static).update("Counting matching rows…")
        if self._count_timer is not None:
            self._count_timer.stop()
        self._count_timer = self.set_timer(0.5, self._count_now)

    def _count_now(self) -> None:
        segment = self.segment()
        if isinstance(segment, Segment):
            self._count(segment)
        else:
            self.query_one("#count", Static).update("")

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def _count(self, segment: Segment) -> None:
        from klaviyo_tui.input.filters import apply_filter, count_matching

        try:
            if self.frame is not None:  # fast check first; its message lists every column
                apply_filter(self.frame, segment.filter)
            n = count_matching(segment)
            text = f"{n:,} rows match." if segment.filter else f"{n:,} rows (no filter)."
        except Exception as exc:
            info = describe_error(exc)
            # a source that cannot be read is already reported above the filter
            text = (
                ""
                if type(exc).__name__ == "SourceError"
                else f"[b]{info.title}[/b]: {escape(info.message)}\nWhat to do: {info.hint}"
            )
        self.app.call_from_thread(self._counted, text)

    def _counted(self, text: str) -> None:
        count = self.query_one("#count", Static)
        count.update(text)
        count.set_class(text.startswith("[b]"), "error-text")

    # ---- checks ----------------------------------------------------------------------------------
    @on(TabbedContent.TabActivated, pane="#tab-check")
    def _check_tab(self) -> None:
        if self.frame is not None:
            self._check_pressed()

    @on(Button.Pressed, "#check")
    def _check_pressed(self) -> None:
        mapping = self.query_one(ColumnsPane).mapping()
        checks = self.query_one("#checks", Static)
        if self.frame is None:
            checks.update("Load a source first (Source tab).")
        elif isinstance(mapping, str):
            checks.update(mapping)
        else:
            checks.update("Checking…")
            self._validate(mapping, self.query_one("#region", Input).value.strip() or "US")

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def _validate(self, mapping: Mapping, region: str) -> None:
        from klaviyo_tui.input.preview import validation_preview

        try:
            text = render_report(validation_preview(self.frame, mapping, region), len(self.frame))
        except Exception as exc:
            info = describe_error(exc)
            text = f"[b]{info.title}[/b]: {escape(info.message)}"
        self.app.call_from_thread(self.query_one("#checks", Static).update, text)

    @on(Input.Changed, "#schedule")
    def _schedule_changed(self, event: Input.Changed) -> None:
        from klaviyo_tui.run.schedule import next_run, validate_schedule

        status = self.query_one("#schedule-status", Static)
        text = event.value.strip()
        problem = validate_schedule(text) if text else None
        status.set_class(bool(problem), "error-text")
        if not text:
            status.update("Empty: runs only when you start it.")
        elif problem:
            status.update(problem)
        else:
            from datetime import datetime

            status.update(
                f"Next run: {next_run(text, datetime.now()):%Y-%m-%d %H:%M} "
                "(needs `klaviyo-tui run --due` in cron)"
            )

    # ---- save ------------------------------------------------------------------------------------
    def segment(self) -> Segment | str:
        return form.read_segment(self)

    def build(self) -> tuple[Export, Segment] | str:
        return form.read_export(self)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    def action_save(self, run: bool = False) -> None:
        built = self.build()
        error = self.query_one("#save-error", Static)
        if isinstance(built, str):
            error.update(built)
            self.notify(built, title="Not saved yet", severity="warning")
            return
        error.update("")
        self._save(*built, run=run)

    @on(Button.Pressed, "#save-run")
    def _save_and_run(self) -> None:
        self.action_save(run=True)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def _save(self, export: Export, segment: Segment, run: bool = False) -> None:
        app = self.app

        def edit(store: Any) -> None:
            store.put_segment(segment)
            store.put_export(export)

        await app.save_config(edit)
        self.dismiss(export)
        if run:
            app.start_run(export.name)
            return
        self.notify(
            f"Saved “{export.name}”. It has not run: press r on Home to run it.",
            title="Export saved",
            timeout=6,
        )

    # ---- leaving -----------------------------------------------------------------------------
    def _form_state(self) -> tuple[object, ...]:
        return form.form_state(self)

    def has_changes(self) -> bool:
        """Would leaving now lose something the user did?"""
        return form.has_changes(self)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @work(exclusive=True, group="leave", exit_on_error=False)
    async def action_cancel(self) -> None:
        if self.has_changes():
            question = "Leave the builder? The changes to this export have not been saved."
            if not await self.app.push_screen_wait(
                ConfirmModal("Discard changes?", question, yes="Discard", no="Keep editing")
            ):
                return
        self.dismiss(None)
