"""What the headless CLI prints: progress on stderr, the summary on stdout, no tracebacks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import NoReturn

import click

from klaviyo_tui.events import (
    JobConfirmed,
    JobsPlanned,
    JobSubmitted,
    Notice,
    Phase,
    ProgressEvent,
    Retrying,
    RowsRead,
    RowsRejected,
    RowState,
    RunSummary,
    Waiting,
)


def fail(message: str, code: int) -> NoReturn:
    """Print one clear error line on stderr and exit with the documented code."""
    click.echo(f"klaviyo-tui: {message}", err=True)
    sys.exit(int(code))


def redactor(key: str | None) -> Callable[[str], str]:
    """A function that masks the API key wherever it appears in a message."""
    from klaviyo_tui.redaction import redact

    if not key:
        return lambda text: text
    return lambda text: redact(text, key)


def format_summary(summary: RunSummary) -> str:
    c = summary.counts
    parts = [
        f"{c.get(RowState.IMPORTED.value, 0):,} imported",
        f"{c.get(RowState.INVALID.value, 0):,} invalid",
        f"{c.get(RowState.REJECTED.value, 0):,} rejected by Klaviyo",
        f"{c.get(RowState.DUPLICATE.value, 0):,} duplicates",
        f"{c.get(RowState.NOT_SENT.value, 0):,} not sent",
    ]
    head = f"export {summary.export}"
    if summary.dry_run:
        plan = summary.plan
        return (
            f"{head} (dry run): {c.get(RowState.INVALID.value, 0):,} invalid, "
            f"{c.get(RowState.DUPLICATE.value, 0):,} duplicates, {plan.get('profiles', 0):,} "
            f"profiles to send in {plan.get('jobs', 0)} jobs, about "
            f"{plan.get('estimated_seconds', 0)}s at Klaviyo's rate limits"
        )
    text = f"{head}: {', '.join(parts)} in {summary.duration_s:.1f}s"
    if summary.run_id is not None:
        text += f" (run {summary.run_id}"
        if summary.rejects_path:
            text += f"; rejects: {summary.rejects_path}"
        text += ")"
    return text


PACING_NEWS_S = 2.0


class ProgressPrinter:
    """A one-line bar on a terminal, plain timestamped lines otherwise (cron, pipes, CI)."""

    def __init__(self, export: str, *, redact: Callable[[str], str]) -> None:
        self.export = export
        self.redact = redact
        self.tty = sys.stderr.isatty()
        self.total: int | None = None
        self.read = 0
        self.confirmed = 0
        self.rejected = 0
        self.started = time.monotonic()
        self._last_bar = 0.0

    def event(self, event: ProgressEvent) -> None:
        match event:
            case Phase(name=name, detail=detail):
                self._line(f"{name} {detail}".strip())
            case RowsRead(read=read):
                self.read = read
                self._bar()
            case JobsPlanned(jobs=jobs, profiles=profiles, total=total):
                self.total = profiles
                self._line(f"read {total or self.read:,} rows: {profiles:,} to send in {jobs} jobs")
            case JobSubmitted(job_id=job_id, batch=batch, profiles=profiles):
                if not self.tty:
                    self._line(f"batch {batch + 1}: {profiles:,} profiles sent (job {job_id})")
            case JobConfirmed(batch=batch, imported=imported, failed=failed):
                self.confirmed += imported
                self.rejected += failed
                if not self.tty:
                    self._line(f"batch {batch + 1}: {imported:,} confirmed, {failed:,} failed")
                self._bar()
            case RowsRejected(count=count, reason=reason):
                self._line(f"{count:,} rows rejected: {reason}")
            case Waiting(seconds=seconds, reason=reason):
                # Short waits for the rate limit are the normal rhythm of a run, not news; long
                # waits and Klaviyo's own Retry-After are worth a line.
                if seconds >= PACING_NEWS_S or "asked" in reason:
                    self._line(f"waiting {seconds:.1f}s: {reason}")
            case Retrying(attempt=attempt, reason=reason):
                self._line(f"retry {attempt}: {reason}")
            case Notice(message=message, level=level):
                self._line(message if level == "info" else f"{level}: {message}")
            case _:
                pass

    def _line(self, text: str) -> None:
        text = self.redact(text)
        if self.tty:
            click.echo("\r\033[K" + text, err=True)
            self._bar(force=True)
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{stamp} {self.export}: {text}", err=True)

    def _bar(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last_bar < 0.1:
            return
        self._last_bar = now
        total = self.total
        done = self.confirmed + self.rejected
        elapsed = max(now - self.started, 1e-6)
        rate = self.confirmed / elapsed
        if total:
            width = 30
            filled = int(width * min(done / total, 1.0))
            bar = "█" * filled + "░" * (width - filled)
            text = f"{bar} {done:,}/{total:,} confirmed  {rate:,.0f}/s"
        else:
            text = f"read {self.read:,} rows, {self.confirmed:,} confirmed"
        click.echo("\r\033[K" + text, err=True, nl=False)

    def close(self) -> None:
        if self.tty:
            click.echo("\r\033[K", err=True, nl=False)
