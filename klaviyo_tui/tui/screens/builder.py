"""The export builder: list, source and filter, columns, checks and schedule, in four tabs.

Fits 80×24 because each tab holds one concern. Saving writes the config only; the export runs
when the user presses `r` on Home (or from cron with `klaviyo-tui run --due`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
)

from klaviyo_tui.config import Export, Mapping, Segment
from klaviyo_tui.tui.errors import describe_error
from klaviyo_tui.tui.screens.base import BaseScreen
from klaviyo_tui.tui.screens.connection import slugify
from klaviyo_tui.tui.screens.pickers import FilePickerScreen, ListPickerScreen, api_key_for
from klaviyo_tui.tui.widgets.columns import ColumnsPane
from klaviyo_tui.tui.widgets.report import render_report

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import KlaviyoApp

SAVE_NOTE = (
    "Saving does not run the export. Run it from Home with [b]r[/b], "
    "or headless with: klaviyo-tui run NAME."
)


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

    # ---- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        app: KlaviyoApp = self.app  # type: ignore[assignment]
        e = self.existing
        segment = app.config.segments.get(e.segments[0]) if e and e.segments else None
        conns = [(c.display_name, n) for n, c in sorted(app.config.connections.items())]
        yield Header()
        with TabbedContent(id="tabs"):
            with TabPane("1 List", id="tab-list"), VerticalScroll():
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
                yield Static(self._list_text(), id="list-label")
                with Horizontal(classes="row"):
                    yield Button(
                        "Pick or create list…", id="pick-list", variant="primary", compact=True
                    )
                with Horizontal(classes="row"):
                    yield Input(
                        placeholder="…or type a list ID (e.g. Y6nRLr)", id="list-id", compact=True
                    )
                    yield Button("Check ID", id="check-list", compact=True)
            with TabPane("2 Source", id="tab-source"), VerticalScroll():
                is_sql = bool(segment and segment.query)
                with RadioSet(id="source-kind"):
                    yield RadioButton(
                        "File (CSV, Parquet, xlsx, JSONL)", value=not is_sql, id="kind-file"
                    )
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
                yield Label("Filter (optional, pandas query)", classes="field-label")
                yield Input(
                    segment.filter or "" if segment else "",
                    placeholder="e.g. country == 'US' and orders > 2",
                    id="filter",
                    compact=True,
                )
                yield Static("", id="count", classes="help")
            with TabPane("3 Columns", id="tab-columns"):
                yield ColumnsPane(id="columns")
            with TabPane("4 Check & save", id="tab-check"), VerticalScroll():
                yield Static("Press Check rows to validate the mapped rows.", id="checks")
                yield Label(
                    "Default phone region (for numbers without +country)", classes="field-label"
                )
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
                yield Static(
                    "Empty: runs only when you start it.", id="schedule-status", classes="help"
                )
                yield Static(SAVE_NOTE, classes="help")
                yield Static("", id="save-error", classes="error-text")
                with Horizontal(classes="row"):
                    yield Button("Cancel", id="cancel", compact=True)
                    yield Button("Save export", id="save", variant="success", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self._show_kind()
        app: KlaviyoApp = self.app  # type: ignore[assignment]
        if self.existing:
            self.load_source()
        else:
            self.query_one("#name", Input).focus()
            if app.demo:
                self.query_one("#path", Input).value = str(app.demo.sample_path)
                self.query_one("#source-status", Static).update(
                    "Demo: the sample customers file is filled in. Press Load columns."
                )

    def _list_text(self) -> str:
        if not self.list_id:
            return "[i]No list chosen yet.[/i]"
        name = f"“{self.list_name}” " if self.list_name else ""
        return f"{name}[dim]({self.list_id})[/dim]"

    def _set_list(self, list_id: str, name: str | None) -> None:
        self.list_id, self.list_name = list_id, name
        self.query_one("#list-label", Static).update(self._list_text())

    def action_switch_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        ids = ["tab-list", "tab-source", "tab-columns", "tab-check"]
        current = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.query_one(Tabs).focus()  # focus left in the old pane would switch back to it
        tabs.active = ids[(current + step) % len(ids)]

    # ---- list ------------------------------------------------------------------------------------
    def _connection(self) -> Any:
        app: KlaviyoApp = self.app  # type: ignore[assignment]
        return app.config.connections[str(self.query_one("#connection", Select).value)]

    @on(Button.Pressed, "#pick-list")
    def _pick_list(self) -> None:
        def picked(result: Any) -> None:
            if result is not None:
                self._set_list(result.id, result.name)

        suggested = self.query_one("#name", Input).value.strip()
        self.app.push_screen(ListPickerScreen(self._connection(), suggested), picked)

    @on(Input.Submitted, "#list-id")
    @on(Button.Pressed, "#check-list")
    def _check_list_pressed(self) -> None:
        list_id = self.query_one("#list-id", Input).value.strip()
        if list_id:
            self.check_list(list_id)

    @work(exclusive=True, group="check-list", exit_on_error=False)
    async def check_list(self, list_id: str) -> None:
        from klaviyo_tui.klaviyo import KlaviyoClient

        connection = self._connection()
        label = self.query_one("#list-label", Static)
        label.update(f"Checking {list_id} …")
        try:
            key = await api_key_for(self.app, connection)  # type: ignore[arg-type]
            async with KlaviyoClient(connection.base_url, key) as client:
                found = await client.get_list(list_id)
        except Exception as exc:
            info = describe_error(exc)
            label.update(f"[b]{info.title}[/b]: {info.message} {info.hint}")
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
        app: KlaviyoApp = self.app  # type: ignore[assignment]
        current = Path(self.query_one("#path", Input).value or ".").expanduser()
        start = current.parent if current.is_file() else current if current.is_dir() else Path.cwd()
        if app.demo and not self.query_one("#path", Input).value:
            start = app.demo.sample_path.parent

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#path", Input).value = str(path)
                self.load_source()

        app.push_screen(FilePickerScreen(start.resolve()), chosen)

    def segment(self) -> Segment | str:
        """The segment the Source tab describes, or what is missing."""
        name = self._export_name() or "segment"
        filter_text = self.query_one("#filter", Input).value.strip() or None
        if self.query_one("#kind-sql", RadioButton).value:
            url = self.query_one("#sql-url", Input).value.strip()
            query = self.query_one("#sql-query", Input).value.strip()
            if not url or not query:
                return "Give the database URL and the SQL query (Source tab)."
            return Segment(name, url, query=query, filter=filter_text)
        path = self.query_one("#path", Input).value.strip()
        if not path:
            return "Choose a source file (Source tab › Browse…)."
        return Segment(name, str(Path(path).expanduser()), filter=filter_text)

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
        from klaviyo_tui.mapping import detect_email_column
        from klaviyo_tui.sources import preview

        try:
            frame = preview(segment, n=500)
            email = detect_email_column(frame)
        except Exception as exc:
            self.app.call_from_thread(self._preview_failed, exc)
            return
        self.app.call_from_thread(self._preview_loaded, segment, frame, email)

    def _preview_failed(self, exc: Exception) -> None:
        info = describe_error(exc)
        status = self.query_one("#source-status", Static)
        status.update(f"[b]{info.title}[/b]: {info.message}\nWhat to do: {info.hint}")
        status.add_class("error-text")

    def _preview_loaded(self, segment: Segment, frame: Any, email: str | None) -> None:
        self.frame, self.loaded_segment = frame, segment
        status = self.query_one("#source-status", Static)
        status.remove_class("error-text")
        found = f"email column: {email}" if email else "no email column found: pick it"
        status.update(f"{len(frame.columns)} columns ({found}). Next: the Columns tab.")
        mapping = self.existing.mapping if self.existing and not self.frame_changed() else None
        self.query_one(ColumnsPane).load(frame, email, mapping)
        self._schedule_count()

    def frame_changed(self) -> bool:
        if not self.existing or not self.loaded_segment:
            return True
        app: KlaviyoApp = self.app  # type: ignore[assignment]
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
        from klaviyo_tui.segments import count_matching

        try:
            n = count_matching(segment)
            text = f"{n:,} rows match." if segment.filter else f"{n:,} rows (no filter)."
        except Exception as exc:
            info = describe_error(exc)
            # a source that cannot be read is already reported above the filter
            text = (
                ""
                if type(exc).__name__ == "SourceError"
                else f"[b]{info.title}[/b]: {info.message}"
            )
        self.app.call_from_thread(self.query_one("#count", Static).update, text)

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
        from klaviyo_tui.mapping import validation_preview

        try:
            text = render_report(validation_preview(self.frame, mapping, region), len(self.frame))
        except Exception as exc:
            info = describe_error(exc)
            text = f"[b]{info.title}[/b]: {info.message}"
        self.app.call_from_thread(self.query_one("#checks", Static).update, text)

    @on(Input.Changed, "#schedule")
    def _schedule_changed(self, event: Input.Changed) -> None:
        from klaviyo_tui.schedule import next_run, validate_schedule

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
    def _export_name(self) -> str:
        return (
            slugify(self.query_one("#name", Input).value.strip(), set())
            if self.query_one("#name", Input).value.strip()
            else ""
        )

    def build(self) -> tuple[Export, Segment] | str:
        """The export and its segment, or the first thing that is missing (with where to fix it)."""
        from klaviyo_tui.schedule import validate_schedule

        app: KlaviyoApp = self.app  # type: ignore[assignment]
        name = self.existing.name if self.existing else self._export_name()
        if not name:
            return "Give the export a name (List tab)."
        if not self.existing and name in app.config.exports:
            return f"An export named {name!r} exists already; choose another name."
        if not self.list_id:
            return "Choose the Klaviyo list (List tab)."
        segment = self.segment()
        if isinstance(segment, str):
            return segment
        if self.frame is None:
            return "Load the source's columns (Source tab › Load columns)."
        mapping = self.query_one(ColumnsPane).mapping()
        if isinstance(mapping, str):
            return mapping
        schedule = self.query_one("#schedule", Input).value.strip() or None
        if schedule and (problem := validate_schedule(schedule)):
            return f"Schedule: {problem}"
        segment = Segment(name, segment.source, query=segment.query, filter=segment.filter)
        export = Export(
            name=name,
            connection=str(self.query_one("#connection", Select).value),
            list_id=self.list_id,
            list_name=self.list_name,
            segments=(name,),
            mapping=mapping,
            default_region=self.query_one("#region", Input).value.strip().upper() or "US",
            schedule=schedule,
        )
        return export, segment

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        built = self.build()
        error = self.query_one("#save-error", Static)
        if isinstance(built, str):
            error.update(built)
            self.notify(built, title="Not saved yet", severity="warning")
            return
        error.update("")
        self._save(*built)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def _save(self, export: Export, segment: Segment) -> None:
        app: KlaviyoApp = self.app  # type: ignore[assignment]

        def edit(store: Any) -> None:
            store.put_segment(segment)
            store.put_export(export)

        await app.save_config(edit)
        self.notify(
            f"Saved “{export.name}”. It has not run: press r on Home to run it.",
            title="Export saved",
            timeout=6,
        )
        self.dismiss(export)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
