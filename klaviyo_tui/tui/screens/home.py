"""Home: connections, exports and each export's last run at a glance, with keys to act on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Footer, Header, Label, Static

from klaviyo_tui.store.config import Config
from klaviyo_tui.tui.runs import imported_total
from klaviyo_tui.tui.screens.base import HELP_KEYS, BaseScreen
from klaviyo_tui.tui.widgets.banner import DemoBanner
from klaviyo_tui.tui.widgets.tables import Column, fill_table

if TYPE_CHECKING:
    from klaviyo_tui.tui.runs import RunHandle

EMPTY = Content.from_markup(
    "No connections yet. Press [b]c[/b] to add one: a Klaviyo account, its private API key and "
    "your data privacy acknowledgement."
)
NO_EXPORTS = Content.from_markup(
    "No exports yet. Press [b]n[/b] to build one: a source file or query, a list, columns."
)
EXPORT_COLUMNS = (
    Column("Export", shrink=8),
    Column("List", shrink=8),
    Column("Source", shrink=8),
    Column("Last run"),
    Column("Status", shrink=13),  # "dry run 12:03" stays whole
    Column("Imported", right=True),
)
TABLE_ROWS = 9  # app.tcss: `#home DataTable { max-height: 10 }`, one line for the header
CONNECTION_COLUMNS = (
    Column("Connection", shrink=10),
    Column("Base URL", shrink=12),
    Column("Privacy accepted"),
)


@dataclass(frozen=True, slots=True)
class LastRuns:
    """Per export: its latest real run, and a dry run newer than that (if any)."""

    real: dict[str, Any]
    dry: dict[str, Any]
    stamp: tuple[object, ...] = ()  # services.history.written_stamp() before they were read


#: How often Home looks whether the history was written by another process (a cron run, the CLI).
HISTORY_POLL_S = 2.0


def load_last_runs() -> LastRuns:
    """Both from history, read-only. Blocks (SQLite): use a thread."""
    from klaviyo_tui.services.history import last_runs, runs, written_stamp

    stamp = written_stamp()  # before reading: a write meanwhile is seen by the next look
    real = last_runs()
    dry: dict[str, Any] = {}
    for record in runs(limit=200):  # newest first
        if record.dry_run and record.export not in dry:
            newer = record.export not in real or record.id > real[record.export].id
            if newer:
                dry[record.export] = record
    return LastRuns(real, dry, stamp)


def _time(record: Any) -> str:
    return str(getattr(record, "started_at", "") or "")[11:16]


def last_run_text(real: Any, dry: Any = None) -> tuple[str, str, str]:
    """(when, status, imported) of the latest real run; a newer dry run is named as such."""
    when, status, imported = "never", "", ""
    if real is not None:
        when = str(getattr(real, "started_at", "") or "")[5:16].replace("T", " ")
        status = str(getattr(real, "status", "") or "")
        imported = f"{imported_total(getattr(real, 'counts', {}) or {}):,}"
    if dry is not None:  # on a second line: the column stays narrow enough for 80 columns
        note = f"dry run {_time(dry)}"
        status = f"{status}\n{note}" if status else note
    return when, status, imported


class HomeScreen(BaseScreen[None]):
    """The start screen. Acts on the highlighted row of the focused table."""

    BINDINGS = [
        *HELP_KEYS,
        Binding("c", "new_connection", "Connection", tooltip="Add a Klaviyo account"),
        Binding("n", "new_export", "Export", tooltip="Build an export to a list"),
        Binding("r", "run", "Run"),
        Binding("d", "dry_run", "Dry run", show=False),  # the footer has no room: help lists it
        Binding("e,enter", "edit", "Edit"),
        Binding("x,delete", "remove", "Remove"),
        Binding("h", "history", "History"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.last_runs: dict[str, Any] = {}
        self.dry_runs: dict[str, Any] = {}
        self._had_exports = False
        self._stamp: tuple[object, ...] | None = None  # the history as last read

    def compose(self) -> ComposeResult:
        app = self.app
        yield Header()
        if app.demo:
            yield DemoBanner(app.demo)
        with Vertical(id="home"):
            yield Label("Exports", classes="section-title")
            yield Static(NO_EXPORTS, id="no-exports", classes="help")
            yield DataTable(id="exports", cursor_type="row")
            yield Label("Connections", classes="section-title")
            yield Static(EMPTY, id="no-connections", classes="help")
            yield DataTable(id="connections", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        app = self.app
        self.watch(app, "config", self._show_config, init=False)
        self.watch_runs(self._run_updated)
        self.set_interval(HISTORY_POLL_S, self._poll_history)
        self._show_config(app.config)

    def on_screen_resume(self) -> None:
        self._load_last_runs()

    def on_resize(self, event: events.Resize) -> None:
        self._show_config(self.app.config)

    def _run_updated(self, handle: RunHandle) -> None:
        if self.hidden:  # under the run view, say: on_screen_resume redraws
            return
        if handle.progress.finished:
            self._load_last_runs()
        else:
            self._show_config(self.app.config)

    def _show_config(self, config: Config) -> None:
        app = self.app
        width = self.query_one("#home").content_size.width or self.size.width - 2
        exports = self.query_one("#exports", DataTable)
        keep = exports.cursor_row
        rows: list[tuple[str, tuple[str, ...]]] = []
        for name, export in sorted(config.exports.items()):
            sources = ", ".join(
                _short(config.segments[s].source) for s in export.segments if s in config.segments
            )
            when, status, imported = last_run_text(
                self.last_runs.get(name), self.dry_runs.get(name)
            )
            handle = app.runs.get(name)
            if handle and handle.active:
                p = handle.progress
                pct = f" {100 * p.done_rows // p.total}%" if p.total else ""
                when, status, imported = "now", f"running{pct}", f"{p.confirmed:,}"
            list_label = export.list_name or export.list_id
            rows.append((name, (name, list_label, sources, when, status, imported)))
        fill_table(exports, EXPORT_COLUMNS, rows, width=width, visible_rows=TABLE_ROWS)
        if exports.row_count:
            exports.move_cursor(row=min(keep, exports.row_count - 1))
        conns = self.query_one("#connections", DataTable)
        conn_rows = [
            (
                name,
                (
                    conn.display_name,
                    conn.base_url,
                    (conn.consent_accepted_at or "no")[:16].replace("T", " "),
                ),
            )
            for name, conn in sorted(config.connections.items())
        ]
        fill_table(conns, CONNECTION_COLUMNS, conn_rows, width=width, visible_rows=TABLE_ROWS)
        self.query_one("#no-exports").display = not config.exports
        exports.display = bool(config.exports)
        self.query_one("#no-connections").display = not config.connections
        conns.display = bool(config.connections)
        first_export = bool(config.exports) and not self._had_exports
        self._had_exports = bool(config.exports)
        on_connections = self.focused is not None and self.focused.id == "connections"
        if config.exports and (first_export or not on_connections):
            exports.focus()
        elif config.connections and not config.exports:
            conns.focus()

    @work(thread=True, exclusive=True, group="last-runs", exit_on_error=False)
    def _load_last_runs(self) -> None:
        self.app.call_from_thread(self._last_runs_loaded, load_last_runs())

    def _poll_history(self) -> None:
        """Runs made elsewhere (cron, the CLI in another terminal) show here too. Not while
        covered (on_screen_resume reads it) or while a run of this app updates the screen."""
        ours = any(handle.active for handle in self.app.runs.values())
        if self._stamp is not None and not self.hidden and not ours:
            self._look_at_history(self._stamp)

    @work(thread=True, exclusive=True, group="history-poll", exit_on_error=False)
    def _look_at_history(self, seen: tuple[object, ...]) -> None:
        from klaviyo_tui.services.history import written_stamp

        if written_stamp() != seen:
            self.app.call_from_thread(self._load_last_runs)

    def _last_runs_loaded(self, last: LastRuns) -> None:
        self._stamp = last.stamp
        self.last_runs, self.dry_runs = last.real, last.dry
        self.app.last_runs = last.real  # the palette offers resume/retry
        self._show_config(self.app.config)

    # ---- selection -------------------------------------------------------------------------------
    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if not table.row_count or not table.display:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(key.value)

    def _focused_table(self) -> str:
        focused = self.focused
        return focused.id if focused is not None and focused.id == "connections" else "exports"

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_edit()

    def action_new_connection(self) -> None:
        self.app.connection_wizard()

    def action_new_export(self) -> None:
        self.app.edit_export(None)

    def action_run(self, dry_run: bool = False) -> None:
        name = self._selected("exports")
        if name is None:
            self.notify("Build an export first (n).", severity="warning")
            return
        self.app.start_run(name, dry_run=dry_run)

    def action_dry_run(self) -> None:
        """What a run would send, update and remove, without sending anything."""
        self.action_run(dry_run=True)

    def action_history(self) -> None:
        self.app.action_history(self._selected("exports"))

    def action_edit(self) -> None:
        app = self.app
        if self._focused_table() == "connections":
            name = self._selected("connections")
            if name and name in app.config.connections:
                app.connection_wizard(app.config.connections[name])
            return
        export = self._selected("exports")
        if export:
            app.edit_export(export)

    def action_remove(self) -> None:
        app = self.app
        table = self._focused_table()
        name = self._selected(table)
        if name is None:
            return
        if table == "connections":
            app.remove_connection(name)
        else:
            app.remove_export(name)


def _short(source: str, width: int = 24) -> str:
    tail = source.replace("\\", "/").rsplit("/", 1)[-1]
    return tail if len(tail) <= width else "…" + tail[-(width - 1) :]
