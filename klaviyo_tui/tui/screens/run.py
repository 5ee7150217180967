"""The live run view. It only reads the App's RunHandle, so leaving it never stops the run."""

from __future__ import annotations

import time
from textwrap import wrap
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Header, Label, Log, ProgressBar, Sparkline, Static

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RowState, RunSummary, state_label
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.run.progress import RunProgress, describe_exit, format_duration, plural
from klaviyo_tui.store.config import Export
from klaviyo_tui.tui.screens.base import HELP_KEYS, BaseScreen
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.sync_text import (
    WHAT_TO_DO_REFUSED,
    full_reason,
    has_sync,
    planned_removals,
    refusal,
    settings_line,
    sync_line,
    verification_line,
)
from klaviyo_tui.tui.text import facts

if TYPE_CHECKING:
    from klaviyo_tui.tui.runs import RunHandle

#: The run view redraws at most this often while a run streams events.
SHOW_EVERY_S = 0.1


def stats_lines(p: RunProgress) -> tuple[Content, Content]:
    counts = p.summary.counts if p.summary is not None else {}
    unconfirmed = counts.get(RowState.UNCONFIRMED.value, p.unconfirmed)
    rows = Content.from_markup(
        "Rows     read [b]$read[/b] · valid [b]$valid[/b] · sent [b]$sent[/b]\n"
        "Klaviyo  confirmed [b]$confirmed[/b] · rejected [b]$rejected[/b]",
        read=f"{p.read:,}",
        valid=f"{p.valid:,}",
        sent=f"{p.sent:,}",
        confirmed=f"{p.confirmed:,}",
        rejected=f"{p.rejected:,}",
    )
    # shown when they happen, so the usual line stays short
    for label, n in (
        ("done before", p.settled_before),  # a resumed run: batches its first start settled
        ("unconfirmed", unconfirmed),
        ("not in list", counts.get(RowState.NOT_IN_LIST.value, 0)),
        ("subscription unconfirmed", counts.get(RowState.SUBSCRIPTION_UNCONFIRMED.value, 0)),
    ):
        if n:
            rows += Content.from_markup(" · $label [b]$n[/b]", label=label, n=f"{n:,}")
    jobs = Content(
        f"Jobs     queued {p.jobs_queued} · in flight {p.jobs_in_flight} · "
        f"done {p.jobs_confirmed} · waits {p.waits} ({p.waited_s:.0f}s) · retries {p.retries}"
    )
    return rows, jobs


def sync_lines(p: RunProgress, export: Export | None) -> list[tuple[str, str]]:
    """Sync and verification: the export's settings while it runs, the figures once it ends."""
    s = p.summary
    lines: list[tuple[str, str]] = []
    if s is not None and has_sync(s.sync):
        lines.append(("Sync", sync_line(s.sync, dry_run=s.dry_run)))
        extras = (planned_removals(s.sync, dry_run=s.dry_run), full_reason(s.sync))
        lines += [("", extra) for extra in extras if extra]
    elif s is None and export is not None and (settings := settings_line(export)):
        lines.append(("Sync", settings))
    if s is not None and s.verification:
        lines.append(("Verify", verification_line(s.verification)))
    return lines


def dry_run_text(s: RunSummary) -> Content:
    """What a dry run found: what a run would send, and how long at Klaviyo's limits."""
    plan = s.plan
    profiles, jobs = int(str(plan.get("profiles", 0))), int(str(plan.get("jobs", 0)))
    seconds = format_duration(float(str(plan.get("estimated_seconds", 0))))
    return Content.from_markup(
        "[b]Dry run: nothing was sent.[/b] A run would send $what, about $seconds at Klaviyo's "
        "limits.",
        what=f"{plural(profiles, 'profile')} in {plural(jobs, 'job')}",
        seconds=seconds,
    )


FIXES = {
    ExitCode.USAGE: "Edit the export (e on Home), fix what the message says, then run it again.",
    ExitCode.INPUT: "Check the source file and the column mapping (e on Home), then run again.",
    ExitCode.AUTH: (
        "Edit the connection (select it on Home, press Enter) with a valid private key "
        "that has the needed scopes, then resume from History."
    ),
    ExitCode.UNAVAILABLE: "Wait a few minutes, then resume from History: no row is sent twice.",
}


def title_text(p: RunProgress, kind: str) -> str:
    """The run view's title: the export, what kind of run (a resumed retry is a retry), the
    phase. `kind` is how it was started (RunHandle.kind)."""
    how = {
        "resume": " (resumed)",
        "retry": " (retrying failed rows)",
        "dry": " (dry run)",
        "allow": " (removals allowed)",
    }.get(kind, "")
    if p.retry_of is not None:
        again = ", resumed" if kind == "resume" else ""
        how = f" (retrying the failed rows of run {p.retry_of}{again})"
    return f"Run · {safe_text(p.export)}{how} · {phase_text(p)}"


def phase_text(p: RunProgress) -> str:
    """What the run is doing now; once it has ended, how it ended."""
    if p.error:
        return "stopped by an error"
    if p.summary is not None:
        return "interrupted (resumable)" if p.interrupted else "finished"
    if p.interrupted:
        return "cancelled (resumable)"
    return p.phase + (f" · {p.phase_detail}" if p.phase_detail else "")


def rate_text(p: RunProgress) -> str:
    """Profiles a second; nothing at all for a run that sent nothing (say, a resumed one)."""
    if p.finished:
        if not p.confirmed:
            if p.summary is None:
                return ""
            return "no profile confirmed" if p.sent else "nothing sent in this run"
        return f"{p.average_rate:,.0f} profiles/s average" if p.average_rate is not None else ""
    return f"{p.rate:,.0f} profiles/s · ETA {format_duration(p.eta_s)}"


def summary_text(p: RunProgress) -> Content:
    """The box under the counters once the run has ended: what happened and what to do next."""
    if p.error:
        return Content.from_markup(
            "[b]The run stopped.[/b] $error", error=safe_text(p.error, keep_layout=True)
        )
    s = p.summary
    if s is None:
        return Content.from_markup(
            "[b]Cancelled.[/b] The run is resumable: press [b]u[/b] here or use History."
        )
    counts = " · ".join(f"{state_label(k)} {v:,}" for k, v in s.counts.items() if v)
    not_imported = sum(v for k, v in s.counts.items() if k not in ("imported", "unchanged"))
    tail = "Press [b]o[/b] for the details, [b]h[/b] for history."
    if not_imported:
        tail = "Press [b]o[/b] for the rejects and why, [b]h[/b] for history."
    if s.exit_code == ExitCode.INTERRUPTED:
        tail = "Press [b]u[/b] to resume, [b]o[/b] for details."
    refused = refusal(s)
    verb = "Stopped after" if s.exit_code in FIXES else "Finished in"
    why = "the removals exceed the export's limits" if refused else describe_exit(s.exit_code)
    head = f"{verb} {format_duration(s.duration_s)}: {why}."
    parts = [dry_run_text(s) if s.dry_run else Content.from_markup("[b]$head[/b]", head=head)]
    if refused:
        parts.append(Content.from_markup("[b]Refused:[/b] $why", why=refused))
        parts.append(Content(f"What to do: {WHAT_TO_DO_REFUSED}"))
    elif s.error:
        parts.append(Content(safe_text(s.error, keep_layout=True)))
    if s.exit_code in FIXES and not refused:
        parts.append(Content(f"What to do: {FIXES[ExitCode(s.exit_code)]}"))
    parts.append(Content(counts or "no rows"))
    if s.rejects_path is not None and not_imported:
        parts.append(Content(f"Rejects file: {safe_text(str(s.rejects_path))}"))
    parts.append(Content.from_markup(tail))
    return Content("\n").join(parts)


class RunScreen(BaseScreen[None]):
    """Progress, counters, rate sparkline, ETA, jobs, waits and an event log for one run."""

    BINDINGS = [
        *HELP_KEYS,
        Binding("escape", "back", "Back"),
        Binding("c", "cancel_run", "Cancel run"),
        Binding("o", "open_rejects", "Rejects"),
        Binding("u", "resume", "Resume"),
        Binding("a", "allow_removals", "Allow removals"),
        Binding("h", "app.history", "History"),
    ]

    def __init__(self, handle: RunHandle) -> None:
        super().__init__()
        self.handle = handle
        self._logged = 0
        self._keys: tuple[bool | None, ...] = ()  # the key states the footer shows
        self._shown_at = 0.0  # monotonic time of the last _show
        self._show_pending = False
        self._texts: dict[str, str] = {}  # what the text widgets show
        self._sync_shown: list[tuple[str, str]] | None = None  # the sync facts shown

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="run-body"):
            yield Label(id="run-title", classes="step-title")
            yield ProgressBar(id="overall", show_eta=False)
            with Vertical(id="stats"):
                yield Static("", id="rows")
                yield Static("", id="jobs")
                yield Static("", id="sync")
            with Horizontal(id="rate-row"):
                yield Static("", id="rate-label")
                yield Sparkline([], id="rate")
            yield Static("", id="summary")
            yield Log(id="log", auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.watch_runs(self._updated)  # on_screen_resume (pushed, or back on top) shows it

    def on_screen_suspend(self) -> None:
        # The bar animates while the total is unknown, and each frame of it would redraw this
        # screen and the one covering it (see watch_runs): it stops while nobody sees it.
        self.query_one("#overall", ProgressBar).display = not self.hidden

    def on_screen_resume(self) -> None:
        self.query_one("#overall", ProgressBar).display = True
        self._show()

    def _updated(self, handle: RunHandle) -> None:
        if handle is not self.handle:
            if handle.export != self.handle.export:
                return
            self.handle, self._logged = handle, 0  # a new run (resume) replaced ours
            self.query_one(Log).clear()
        self._show_soon()  # not while hidden (under the help, say): on_screen_resume shows it

    def _set(self, selector: str, content: Content) -> None:
        """Update a text widget only when its text changed, and lay the screen out again only
        when its length did (a layout pass redraws the whole screen)."""
        text = content.plain
        before = self._texts.get(selector)
        if text == before:
            return
        self._texts[selector] = text
        widget = self.query_one(selector, Static)
        widget.update(content, layout=before is None or len(text) != len(before))

    def _show_soon(self) -> None:
        """A run sends hundreds of events a second at full speed; drawing each one would keep
        the event loop busy (every draw re-renders the counters, sparkline and log). So at most
        SHOW_EVERY_S apart, the last one always shown; an ended run at once."""
        wait = self._shown_at + SHOW_EVERY_S - time.monotonic()
        if wait <= 0 or self.handle.progress.finished:
            self._show()
        elif not self._show_pending:
            self._show_pending = True
            self.set_timer(wait, self._show)

    def _show(self) -> None:
        self._show_pending = False
        if self.hidden:  # a timer set before another screen covered this one
            return
        self._shown_at = time.monotonic()
        p = self.handle.progress
        self._set("#run-title", Content(title_text(p, self.handle.kind)))
        bar = self.query_one("#overall", ProgressBar)
        if p.summary is not None and not p.interrupted:
            bar.update(total=1, progress=1)
        elif p.rows_total:  # rows settled: known from the first pass on, and never moves back
            done = p.read if self.handle.kind == "dry" else p.rows_settled
            bar.update(total=p.rows_total, progress=min(done, p.rows_total))
        elif p.total:
            bar.update(total=p.total, progress=min(p.done_rows, p.total))
        rows, jobs = stats_lines(p)
        self._set("#rows", rows)
        self._set("#jobs", jobs)
        # a retry adds and updates only, whatever the export's mode: its settings would mislead
        retry = self.handle.kind == "retry" or p.retry_of is not None
        export = None if retry else self.app.config.exports.get(p.export)
        sync = sync_lines(p, export)
        if sync != self._sync_shown:  # a table, not text: compared by its rows
            self._sync_shown = sync
            self.query_one("#sync", Static).update(facts(sync))
            self.query_one("#sync", Static).display = bool(sync)
        self._set("#rate-label", Content(rate_text(p)))
        rates = list(p.rates)
        sparkline = self.query_one("#rate", Sparkline)
        if (rates if any(rates) else []) != sparkline.data:
            sparkline.data = rates if any(rates) else []
        log = self.query_one(Log)
        if self._logged < len(p.log):
            # Log does not wrap: a long line would be cut and give the log a sideways scrollbar
            shown = log.scrollable_content_region.width or self.app.size.width - 4  # not laid out
            width = max(20, shown - 1)  # room for the scrollbar
            wrapped = (
                wrap(safe_text(line), width, subsequent_indent="  ")
                for line in p.log[self._logged :]
            )
            log.write_lines(part for parts in wrapped for part in parts or [""])
            self._logged = len(p.log)
        finished = p.finished and not self.handle.active
        if finished and not self.has_class("-finished"):  # the summary box takes the log's room:
            self.call_after_refresh(log.scroll_end, animate=False)  # keep its last lines shown
        self.set_class(finished, "-finished")
        self.set_class(self.handle.kind == "dry", "-dry")
        failed = bool(p.error) or (p.summary is not None and p.summary.exit_code != ExitCode.OK)
        self.set_class(finished and failed, "-failed")
        if finished:
            self.query_one("#summary", Static).update(summary_text(p))
        # Refreshing the bindings rebuilds the footer (new widgets, styles applied): ~20 ms of
        # the event loop, so only when a key's state changes, not on each of a run's events.
        keys = tuple(self.check_action(a, ()) for a in ("cancel_run", "open_rejects", "resume"))
        if keys != self._keys:
            self._keys = keys
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        p = self.handle.progress
        if action == "cancel_run":
            return self.handle.active
        if action == "open_rejects":
            return p.summary is not None and p.summary.run_id is not None
        if action == "allow_removals":
            return not self.handle.active and p.summary is not None and bool(refusal(p.summary))
        if action == "resume":
            return not self.handle.active and (
                p.interrupted
                or (p.summary is not None and p.summary.exit_code == ExitCode.INTERRUPTED)
            )
        return True

    def action_back(self) -> None:
        self.dismiss(None)

    def action_cancel_run(self) -> None:
        self.app.keys.expect()  # `c` then `y` at once: the question gets the `y`
        self._confirm_cancel()

    @work(exclusive=True, group="cancel", exit_on_error=False)
    async def _confirm_cancel(self) -> None:
        app = self.app
        question = (
            "Stop this run? Jobs already sent finish in Klaviyo; the run is kept as "
            "interrupted and can be resumed later without sending rows twice."
        )
        if await app.push_screen_wait(ConfirmModal("Cancel the run?", question, yes="Stop run")):
            app.cancel_run(self.handle.export)

    def action_allow_removals(self) -> None:
        self.app.keys.expect()
        self._confirm_removals()

    @work(exclusive=True, group="allow", exit_on_error=False)
    async def _confirm_removals(self) -> None:
        """One run past the export's removal limits, after an explicit yes."""
        app, summary = self.app, self.handle.progress.summary
        removals = summary.sync.get("removals", summary.sync.get("leavers")) if summary else None
        count = plural(removals, "profile") if isinstance(removals, int) else "the profiles"
        question = (
            f"Run export {safe_text(self.handle.export)} now and remove {count} that left the "
            "segment from the list, past its removal limits? Only profiles this tool added are "
            "removed; their consent stays. This applies to this run only."
        )
        modal = ConfirmModal("Allow the removals?", question, yes="Run and remove")
        if await app.push_screen_wait(modal):
            self.dismiss(None)
            app.start_run(self.handle.export, allow_removals=True)

    def action_open_rejects(self) -> None:
        summary = self.handle.progress.summary
        if summary is not None and summary.run_id is not None:
            self.app.show_run_detail(summary.run_id)

    def action_resume(self) -> None:
        app = self.app
        self.dismiss(None)
        app.start_run(self.handle.export, resume=True)
