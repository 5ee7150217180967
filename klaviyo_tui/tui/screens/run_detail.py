"""One run's detail: what happened to every row, why rows were not imported, and what to do next.

Reasons come from Klaviyo and from the data, so every one is shown as text (keys masked, control
characters visible). The table cuts long reasons to fit; the highlighted one is shown in full,
wrapped, under it. A sync run adds its figures (added, updated, unchanged, removed, subscribed),
a verified run its read-back, and a mirror run the profiles it removed and why, in a table of
their own.
"""

from __future__ import annotations

import asyncio
import os
from functools import partial
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static

from klaviyo_tui.events import RowState, state_label
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.run.progress import format_duration, plural
from klaviyo_tui.tui.screens.base import HELP_KEYS, BaseScreen
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.sync_text import (
    full_reason,
    has_sync,
    planned_removals,
    sync_line,
    verification_line,
)
from klaviyo_tui.tui.text import facts
from klaviyo_tui.tui.widgets.tables import Column, fill_table

STATES = [s.value for s in RowState]
REASON_COLUMNS = (Column("Rows", right=True), Column("State"), Column("Reason", shrink=12))
REMOVAL_COLUMNS = (Column("Profile"), Column("State"), Column("Why", shrink=8))
REMOVALS_SHOWN = 7  # rows visible before the table scrolls (max-height 8 with its header)


def sync_facts(detail: Any) -> list[tuple[str, str]]:
    """The run's sync figures and read-back as `key  value` lines (none for a plain run)."""
    rows: list[tuple[str, str]] = []
    figures: dict[str, object] = detail.sync
    dry = bool(detail.record.dry_run)
    if has_sync(figures):
        rows.append(("Sync", sync_line(figures, dry_run=dry)))
        extras = (planned_removals(figures, dry_run=dry), full_reason(figures))
        rows += [("", extra) for extra in extras if extra]
        refused = figures.get("refused")
        if isinstance(refused, str) and refused:
            rows.append(("Refused", refused))
    verified = detail.verification
    if verified is not None:
        members = f" · {verified.members:,} members read" if verified.members is not None else ""
        at = f" · {when(verified.verified_at)}" if verified.verified_at else ""
        rows.append(("Verify", f"{verification_line(verified.as_dict())}{members}{at}"))
    return rows


def when(text: str | None, *, year: bool = True) -> str:
    return (text or "")[0 if year else 5 : 16].replace("T", " ")


def default_csv_path(run_id: int, cwd: Path | None = None) -> Path:
    """Where "Rejects → CSV" suggests writing: the current folder, or home when it is read-only."""
    folder = cwd or Path.cwd()
    if not os.access(folder, os.W_OK):
        folder = Path.home()
    return folder / f"run-{run_id}-rejects.csv"


def list_label(app_config: Any, record: Any) -> str:
    """The list's name beside its id, when the export still sends to that list."""
    export = app_config.exports.get(record.export)
    name = export.list_name if export is not None and export.list_id == record.list_id else None
    return f"{name} ({record.list_id})" if name else str(record.list_id)


class RunDetailScreen(BaseScreen[None]):
    """Counts per state, Klaviyo's reasons, rejects to CSV, retry failed rows, resume."""

    BINDINGS = [
        *HELP_KEYS,
        Binding("escape", "back", "Back"),
        Binding("w", "choose_csv", "Rejects → CSV"),
        Binding("t", "retry", "Retry failed"),
        Binding("u", "resume", "Resume"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.record: Any = None
        self.resumable = False
        self.reasons: list[tuple[str, str, int]] = []
        self.removals: list[tuple[str, str, str]] = []  # (profile id, state, why)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body", can_focus=False):
            yield Label(f"Run {self.run_id}", id="detail-title", classes="step-title")
            yield Static("Loading…", id="detail-summary")
            yield Static("", id="detail-sync")
            yield Label(
                "Rows not imported, or sent without a field",
                id="reasons-title",
                classes="section-title",
            )
            yield DataTable(id="reasons", cursor_type="row")
            yield Static("", id="reason-full", classes="help")
            with Horizontal(classes="row", id="csv-row"):
                yield Input(str(default_csv_path(self.run_id)), id="csv-path", compact=True)
                yield Button("Write CSV", id="write", compact=True)
            yield Static(
                "Rejects → CSV: choose the file, then Enter or Write CSV.",
                id="csv-help",
                classes="help",
            )
            yield Label("Removed from the list", id="removals-title", classes="section-title")
            yield DataTable(id="removals", cursor_type="row")
            with Horizontal(classes="row"):
                yield Button("Retry failed rows", id="retry", variant="warning", compact=True)
                yield Button("Resume run", id="resume", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def on_resize(self, event: events.Resize) -> None:
        self._fill_reasons()

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def load(self) -> None:
        from klaviyo_tui.services.history import run_detail

        detail = run_detail(self.run_id)
        self.app.call_from_thread(self._show, detail)

    def _show(self, detail: Any) -> None:
        record = detail.record if detail else None
        reasons: list[tuple[str, str, int]] = detail.reasons if detail else []
        resumable: bool = detail.resumable if detail else False
        self.record = record
        summary = self.query_one("#detail-summary", Static)
        sync = sync_facts(detail) if detail else []
        self.query_one("#detail-sync", Static).update(facts(sync))
        self.query_one("#detail-sync").display = bool(sync)
        self.removals = detail.removals if detail else []
        for selector in ("#removals-title", "#removals"):
            self.query_one(selector).display = bool(self.removals)
        if record is None:
            summary.update(f"There is no run {self.run_id}.")
            return
        self.resumable = resumable
        title = f"Run {record.id} · {record.export} → list {list_label(self.app.config, record)}"
        self.query_one("#detail-title", Label).update(Content(safe_text(title)))
        summary.update(self._summary(record))
        self.reasons = reasons
        self._fill_reasons()
        # again once laid out: a page taller than the screen grows a scrollbar, and the tables
        # must fit the width that leaves
        self.call_after_refresh(self._fill_reasons)
        # only rows Klaviyo refused are sent again (the engine's retry); the other states are
        # settled (invalid, warnings, unchanged) or belong to resume (unconfirmed, not sent)
        failed = sum(n for _, s, n in reasons if s == RowState.REJECTED)
        self.query_one("#retry", Button).display = failed > 0
        self.query_one("#resume", Button).display = self.resumable
        has_rejects = bool(reasons)
        for selector in ("#reasons-title", "#reasons", "#reason-full", "#csv-row", "#csv-help"):
            self.query_one(selector).display = has_rejects
        if has_rejects:
            self.query_one("#reasons", DataTable).focus()
        elif self.removals:
            self.query_one("#removals", DataTable).focus()  # the arrows scroll it
        self.refresh_bindings()

    def _summary(self, record: Any) -> Content:
        dry = " · dry run" if record.dry_run else ""
        lines = [
            Content(
                f"{when(record.started_at)} → {when(record.ended_at) or '…'} · {record.status}"
                f"{dry} · {format_duration(record.duration_s)} · {plural(record.jobs, 'job')}"
            ),
            Content(
                " · ".join(
                    f"{state_label(s)} {record.counts.get(s, 0):,}"
                    for s in STATES
                    if record.counts.get(s, 0) or s == RowState.IMPORTED  # zeros are noise
                )
            ),
        ]
        if record.rejects_path:
            lines.append(Content(f"Rejects file: {safe_text(record.rejects_path)}"))
        if record.error and record.status != "interrupted":  # that case has its own line
            error = safe_text(record.error, keep_layout=True)
            lines.append(Content.from_markup("[b]Error:[/b] $error", error=error))
        if self.resumable:
            lines.append(
                Content.from_markup(
                    "This run was interrupted: press [b]u[/b] to resume where it stopped."
                )
            )
        return Content("\n").join(lines)

    def _fill_removals(self, width: int) -> None:
        if not self.removals:
            return
        table = self.query_one("#removals", DataTable)
        done = sum(1 for _, state, _ in self.removals if state == "done")
        title = f"Removed from the list: {done:,} of {plural(len(self.removals), 'profile')} done"
        self.query_one("#removals-title", Label).update(Content(title))
        rows = [(str(i), row) for i, row in enumerate(self.removals)]
        fill_table(table, REMOVAL_COLUMNS, rows, width=width, visible_rows=REMOVALS_SHOWN)

    def _fill_reasons(self) -> None:
        if self.record is None:
            return
        table = self.query_one("#reasons", DataTable)
        body = self.query_one("#detail-body")
        width = body.scrollable_content_region.width or self.size.width - 2  # less a scrollbar
        self._fill_removals(width)
        rows = [
            (str(i), (f"{count:,}", state_label(str(state)), reason))
            for i, (reason, state, count) in enumerate(self.reasons)
        ]
        keep = table.cursor_row
        fill_table(table, REASON_COLUMNS, rows, width=width, visible_rows=9)  # max-height 10
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self._show_reason(table.cursor_row)

    @on(DataTable.RowHighlighted, "#reasons")
    def _reason_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_reason(event.cursor_row)

    def _show_reason(self, row: int) -> None:
        """The whole reason of the highlighted row: the table cuts long ones to fit."""
        text = ""
        if 0 <= row < len(self.reasons):
            reason, state, count = self.reasons[row]
            text = f"{count:,} {state_label(str(state))}: {safe_text(reason, keep_layout=True)}"
        self.query_one("#reason-full", Static).update(Content(text))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return bool(self.query_one("#retry", Button).display)
        if action == "resume":
            return self.resumable
        if action == "choose_csv":
            return bool(self.reasons)
        return True

    def action_choose_csv(self) -> None:
        """Show where the CSV goes and let the user change it; Enter writes."""
        path = self.query_one("#csv-path", Input)
        path.focus()
        path.cursor_position = len(path.value)

    @on(Input.Submitted, "#csv-path")
    @on(Button.Pressed, "#write")
    def _write_pressed(self) -> None:
        value = self.query_one("#csv-path", Input).value.strip()
        if not value:
            self.notify("Type the path of the CSV file to write.", severity="warning")
            return
        path = Path(value).expanduser().absolute()
        if os.path.lexists(path):
            self.app.keys.expect()  # a question is coming: a `y` typed at once is its answer
        self._write(path)

    @work(exclusive=True, group="csv", exit_on_error=False)
    async def _write(self, path: Path) -> None:
        """Write the CSV; a file already at `path` is replaced only after an explicit yes."""
        from klaviyo_tui.services.history import RejectsFileExists, write_rejects

        shown_path = safe_text(str(path))
        try:
            try:
                written = await asyncio.to_thread(write_rejects, self.run_id, path)
            except RejectsFileExists:
                question = (
                    f"{shown_path} already exists. Replace it with the rejects of run "
                    f"{self.run_id}? What it holds now is lost."
                )
                modal = ConfirmModal("Replace the file?", question, yes="Replace", no="Keep it")
                if not await self.app.push_screen_wait(modal):
                    self.notify(
                        f"{shown_path} was left as it was.", title="Not written", markup=False
                    )
                    return
                replace = partial(write_rejects, self.run_id, path, overwrite=True)
                written = await asyncio.to_thread(replace)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.notify(
                f"{shown_path}: {reason}. Choose another path.",
                title="Not written",
                severity="error",
                markup=False,
            )
            return
        if written is None:
            self.notify("This run has no rejected rows.")
        else:
            where = safe_text(str(written))
            self.notify(f"Rejects written to {where}", title="CSV written", timeout=8, markup=False)

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
