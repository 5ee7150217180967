"""History: every run (sortable, filterable by export), and one run's detail with its next steps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from klaviyo_tui.events import RowState, state_label
from klaviyo_tui.run.progress import format_duration
from klaviyo_tui.tui.screens.base import BaseScreen

if TYPE_CHECKING:
    pass

SORTS = (("started", "newest first"), ("export", "export"), ("status", "status"))
STATES = [s.value for s in RowState]


def _load_runs(export: str | None) -> list[Any]:
    from klaviyo_tui.services.history import runs

    return runs(export)


def _when(text: str | None, *, year: bool = True) -> str:
    return (text or "")[0 if year else 5 : 16].replace("T", " ")


class HistoryScreen(BaseScreen[None]):
    """A DataTable of runs. Enter opens a run; `s` changes the sort; the Select filters."""

    BINDINGS = [
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
        options = [(name, name) for name in sorted(app.config.exports)]
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
            table: DataTable[str] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            table.add_columns(
                "Run",
                "Export",
                "Started",
                "Status",
                "Imported",
                "Invalid",
                "Rejected",
                "Took",
            )
            yield table
            yield Static("", id="empty", classes="help")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs", DataTable).focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

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
        table.clear()
        for r in ordered:
            c = r.counts
            table.add_row(
                str(r.id),
                r.export,
                _when(r.started_at, year=False),
                r.status,
                f"{c.get('imported', 0) + c.get('imported_with_warnings', 0):,}",
                f"{c.get('invalid', 0):,}",
                f"{c.get('rejected_by_klaviyo', 0):,}",
                format_duration(r.duration_s),
                key=str(r.id),
            )
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
        self.app.push_screen(RunDetailScreen(int(str(key.value))))

    def action_back(self) -> None:
        self.dismiss(None)


def _sort_key(value: Any) -> Any:
    text = str(value).replace(",", "")
    return (0, float(text)) if text.replace(".", "", 1).isdigit() else (1, text)


class RunDetailScreen(BaseScreen[None]):
    """Counts per state, Klaviyo's reasons, rejects to CSV, retry failed rows, resume."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("w", "write_csv", "Rejects → CSV"),
        Binding("t", "retry", "Retry failed"),
        Binding("u", "resume", "Resume"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.record: Any = None
        self.resumable = False
        self.reasons: list[tuple[str, str, int]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body"):
            yield Label(f"Run {self.run_id}", id="detail-title", classes="step-title")
            yield Static("Loading…", id="detail-summary")
            counts: DataTable[str] = DataTable(id="counts", cursor_type="none")
            counts.add_columns("State", "Rows")
            yield counts
            yield Label("Why rows were not imported", classes="section-title")
            reasons: DataTable[str] = DataTable(id="reasons", cursor_type="row")
            reasons.add_columns("Rows", "State", "Reason")
            yield reasons
            yield Static("", id="reason-full", classes="help")
            yield Label("Write the rejects to a CSV file:", classes="field-label")
            with Horizontal(classes="row"):
                yield Input(
                    str(Path.cwd() / f"run-{self.run_id}-rejects.csv"), id="csv-path", compact=True
                )
                yield Button("Write CSV", id="write", compact=True)
            with Horizontal(classes="row"):
                yield Button("Retry failed rows", id="retry", variant="warning", compact=True)
                yield Button("Resume run", id="resume", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def load(self) -> None:
        from klaviyo_tui.services.history import run_detail

        detail = run_detail(self.run_id)
        record = detail.record if detail else None
        reasons = detail.reasons if detail else []
        resumable = detail.resumable if detail else False
        self.app.call_from_thread(self._show, record, reasons, resumable)

    def _show(self, record: Any, reasons: list[tuple[str, str, int]], resumable: bool) -> None:
        self.record = record
        summary = self.query_one("#detail-summary", Static)
        if record is None:
            summary.update(f"There is no run {self.run_id}.")
            return
        self.resumable = resumable
        self.query_one("#detail-title", Label).update(
            f"Run {record.id} · {record.export} → list {record.list_id}"
        )
        lines = [
            f"{_when(record.started_at)} → {_when(record.ended_at) or '…'} · {record.status} · "
            f"{format_duration(record.duration_s)} · {record.jobs} job"
            + ("" if record.jobs == 1 else "s")
        ]
        if record.error and record.status != "interrupted":  # that case has its own line
            lines.append(f"[b]Error:[/b] {escape(record.error)}")
        if self.resumable:
            lines.append("This run was interrupted: press [b]u[/b] to resume where it stopped.")
        summary.update("\n".join(lines))
        counts = self.query_one("#counts", DataTable)
        counts.clear()
        for state in STATES:
            counts.add_row(state_label(state), f"{record.counts.get(state, 0):,}")
        table = self.query_one("#reasons", DataTable)
        table.clear()
        self.reasons = reasons
        for reason, state, count in reasons:
            table.add_row(f"{count:,}", state_label(str(state)), reason)
        self._show_reason(0)
        failed = sum(
            n for _, s, n in reasons if s not in (RowState.INVALID, RowState.IMPORTED_WITH_WARNINGS)
        )
        self.query_one("#retry", Button).disabled = failed == 0
        self.query_one("#resume", Button).disabled = not self.resumable
        self.query_one("#write", Button).disabled = not reasons
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#reasons")
    def _reason_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_reason(event.cursor_row)

    def _show_reason(self, row: int) -> None:
        """The whole reason of the highlighted row: the table cuts long ones at 80 columns."""
        text = ""
        if 0 <= row < len(self.reasons):
            reason, state, count = self.reasons[row]
            text = f"{count:,} {state_label(str(state))}: {reason}"
        self.query_one("#reason-full", Static).update(Content(text))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return not self.query_one("#retry", Button).disabled
        if action == "resume":
            return self.resumable
        if action == "write_csv":
            return not self.query_one("#write", Button).disabled
        return True

    @on(Input.Submitted, "#csv-path")
    @on(Button.Pressed, "#write")
    def action_write_csv(self) -> None:
        self._write(Path(self.query_one("#csv-path", Input).value).expanduser())

    @work(thread=True, exclusive=True, group="csv", exit_on_error=False)
    def _write(self, path: Path) -> None:
        from klaviyo_tui.services.history import write_rejects

        try:
            written = write_rejects(self.run_id, path)
        except OSError as exc:
            self.notify(
                f"{exc}. Choose another path.", title="Not written", severity="error", markup=False
            )
            return
        if written is None:
            self.notify("This run has no rejected rows.")
        else:
            self.notify(f"Rejects written to {written}", title="CSV written")

    @on(Button.Pressed, "#retry")
    def action_retry(self) -> None:
        if self.record is not None:
            self.app.start_run(self.record.export, retry_failed_of=self.run_id)

    @on(Button.Pressed, "#resume")
    def action_resume(self) -> None:
        if self.record is not None:
            self.app.start_run(self.record.export, resume=True)

    def action_back(self) -> None:
        self.dismiss(None)
