"""History: every run (sortable, filterable by export); Enter opens one run's detail."""

from __future__ import annotations

from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Select, Static

from klaviyo_tui.run.progress import format_duration
from klaviyo_tui.tui.runs import imported_total
from klaviyo_tui.tui.screens.base import HELP_KEYS, BaseScreen
from klaviyo_tui.tui.screens.run_detail import RunDetailScreen, when
from klaviyo_tui.tui.text import shown
from klaviyo_tui.tui.widgets.tables import Column, fill_table

__all__ = ["HistoryScreen", "RunDetailScreen"]

SORTS = (("started", "newest first"), ("export", "export"), ("status", "status"))
COLUMNS = (
    Column("Run", right=True),
    Column("Export", shrink=8),
    Column("Started"),
    Column("Status", shrink=7),
    Column("Imported", right=True),
    Column("Invalid", right=True),
    Column("Rejected", right=True),
    Column("Took", right=True),
)


def _load_runs(export: str | None) -> list[Any]:
    from klaviyo_tui.services.history import runs

    return runs(export)


class HistoryScreen(BaseScreen[None]):
    """A DataTable of runs. Enter opens a run; `s` changes the sort; the Select filters."""

    BINDINGS = [
        *HELP_KEYS,
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Details", show=True),
        Binding("s", "sort", "Sort"),
        Binding("f", "focus_filter", "Filter"),
    ]

    def __init__(self, export: str | None = None) -> None:
        super().__init__()
        self.export = export
        self.records: list[Any] = []
        self.sort_index = 0

    def compose(self) -> ComposeResult:
        app = self.app
        options = [(shown(name), name) for name in sorted(app.config.exports)]
        yield Header()
        with Vertical(id="history-body"):
            with Horizontal(id="filter-row"):
                yield Select(
                    options,
                    prompt="All exports",
                    compact=True,
                    id="filter",
                    value=(self.export if self.export in app.config.exports else Select.NULL),
                )
                yield Static("", id="sort-label", classes="help")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="empty", classes="help")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs", DataTable).focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        self._show(self.records)

    @on(Select.Changed, "#filter")
    def _filter(self, event: Select.Changed) -> None:
        self.export = event.value if isinstance(event.value, str) else None
        self.reload()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def reload(self) -> None:
        records = _load_runs(self.export)
        self.app.call_from_thread(self._show, records)

    def _show(self, records: list[Any]) -> None:
        self.records = records
        key, label = SORTS[self.sort_index]
        if key == "started":
            ordered = sorted(records, key=lambda r: r.started_at or "", reverse=True)
        else:
            ordered = sorted(records, key=lambda r: (str(getattr(r, key)), -r.id))
        table = self.query_one("#runs", DataTable)
        keep = table.cursor_row
        rows = [
            (
                str(r.id),
                (
                    str(r.id),
                    r.export,
                    when(r.started_at, year=False),
                    r.status + (" (dry)" if r.dry_run else ""),
                    f"{imported_total(r.counts):,}",
                    f"{r.counts.get('invalid', 0):,}",
                    f"{r.counts.get('rejected_by_klaviyo', 0):,}",
                    format_duration(r.duration_s),
                ),
            )
            for r in ordered
        ]
        width = self.query_one("#history-body").content_size.width or self.size.width - 2
        visible = table.size.height - 1 if table.size.height else None
        fill_table(table, COLUMNS, rows, width=width, visible_rows=visible)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self.query_one("#sort-label", Static).update(f"  sorted by {label} (s)")
        self.query_one("#empty", Static).update(
            "" if records else "No runs yet. Run an export from Home with r."
        )

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self._show(self.records)

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.data_table.sort(event.column_key, key=_sort_key)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Select).focus()

    @on(DataTable.RowSelected, "#runs")
    def action_open(self) -> None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self.app.show_run_detail(int(str(key.value)))

    def action_back(self) -> None:
        self.dismiss(None)


def _sort_key(value: Any) -> Any:
    text = str(value).replace(",", "")
    return (0, float(text)) if text.replace(".", "", 1).isdigit() else (1, text)
