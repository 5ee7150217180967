"""What the headless CLI prints: progress on stderr, results on stdout, errors as one message and
a hint (or one JSON object), never a traceback. Every string that came from data, config, files
or Klaviyo and is printed as text passes through `safe_text` (keys masked, control characters made
visible). JSON carries the exact values instead: `emit_json` escapes every control and non-ASCII
character, so its output cannot drive a terminal either."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shutil
import sys
import textwrap
import time
from datetime import date, datetime
from datetime import time as time_of_day
from typing import NoReturn

import click

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.events import (
    JobConfirmed,
    JobsPlanned,
    JobSubmitted,
    ProgressEvent,
    RowState,
    RunSummary,
    Waiting,
)
from klaviyo_tui.redaction import redact, safe_text
from klaviyo_tui.run.progress import RunProgress, describe_verification, plural
from klaviyo_tui.store import crashlog


def say(text: str, *, err: bool = False, prose: bool = False) -> None:
    """One line of output, safe to show on a terminal. Messages on stderr, and `prose` on stdout
    (a run's summary; not tables), are cut to a terminal's width."""
    text = safe_text(text, keep_layout=True)
    fit = (err and sys.stderr.isatty()) or (prose and sys.stdout.isatty())
    click.echo(wrapped(text) if fit else text, err=err)


def wrapped(text: str) -> str:
    """Each line over the terminal's width cut at spaces, the rest indented: the terminal would
    cut it mid-word. For a terminal only: pipes and logs keep one line per message."""
    width = max(shutil.get_terminal_size((80, 24)).columns, 20)

    def fit(line: str) -> str:
        indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
        return textwrap.fill(
            line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
        )

    return "\n".join(fit(line) if len(line) > width else line for line in text.split("\n"))


def _json_default(value: object) -> object:
    """What json cannot encode itself, as orjson wrote it before: times as ISO 8601, enums as
    their value, anything else as str()."""
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


def emit_json(data: object) -> None:
    """One JSON document on stdout, with the exact values (never `safe_text`: a script reads
    them). ensure_ascii escapes every control and non-ASCII character (ESC is `\\u001b`), so
    the output is plain ASCII and inert on a terminal."""
    click.echo(json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=_json_default))


def error_json(error: AppError) -> dict[str, object]:
    """The JSON shape of a user-facing error (keys masked, as everywhere)."""
    return {
        "error": redact(error.message),
        "hint": redact(error.hint),
        "kind": type(error).__name__,
        "exit_code": int(error.exit_code),
    }


def fail(error: AppError, *, as_json: bool = False) -> NoReturn:
    """Report a user-facing error (message, then what to do) and exit with its code."""
    say(f"klaviyo-tui: {error.message}", err=True)
    if error.hint:
        say(f"what to do: {error.hint}", err=True)
    if as_json:
        emit_json(error_json(error))
    sys.exit(int(error.exit_code))


def crash(error: BaseException, *, as_json: bool = False) -> NoReturn:
    """A bug: one short line, the traceback in the log file, exit code 70."""
    message = crashlog.internal_message(error, crashlog.record(error))
    say(f"klaviyo-tui: {message}", err=True)
    if as_json:
        emit_json({"error": message, "kind": "internal", "exit_code": 70})
    sys.exit(int(ExitCode.INTERNAL))


def output_closed() -> NoReturn:
    """Whoever read our output went away (`klaviyo-tui segments list | head -1`): stop quietly.

    Python ignores SIGPIPE, so the write raised BrokenPipeError instead of ending the process as
    it ends coreutils. This follows the Python docs' note on SIGPIPE: point stdout and stderr at
    /dev/null, so the interpreter's last flush cannot raise again, and exit. The code is the one a
    shell reports for a command SIGPIPE ended (128 + 13 = 141, so `set -o pipefail` scripts see the
    same as with `seq`), not 1, which `run` uses for a partial run.
    """
    with contextlib.suppress(OSError, ValueError):  # no real descriptors (tests' CliRunner)
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())
    sys.exit(ExitCode.OUTPUT_CLOSED)


def format_summary(summary: RunSummary) -> str:
    c = summary.counts
    head = f"export {summary.export}"
    if summary.dry_run:
        plan = summary.plan
        jobs = int(str(plan.get("jobs", 0)))
        text = (
            f"{head} (dry run): {c.get(RowState.INVALID.value, 0):,} invalid, "
            f"{c.get(RowState.DUPLICATE.value, 0):,} duplicates, "
            f"{plural(int(str(plan.get('profiles', 0))), 'profile')} to send in "
            f"{plural(jobs, 'job')}, about {plan.get('estimated_seconds', 0)}s at Klaviyo's rate "
            "limits"
        )
        return text + format_sync(summary.sync, dry_run=True) + _stopped(summary)
    if summary.error and not summary.total_rows:  # stopped before reading: no counts to give
        run = f" (run {summary.run_id})" if summary.run_id is not None else ""
        return f"{head}: nothing was sent{run}{_stopped(summary)}"
    parts = [
        f"{c.get(RowState.IMPORTED.value, 0):,} imported",
        f"{c.get(RowState.IMPORTED_WITH_WARNINGS.value, 0):,} imported with warnings",
        f"{c.get(RowState.INVALID.value, 0):,} invalid",
        f"{c.get(RowState.REJECTED.value, 0):,} rejected by Klaviyo",
        f"{c.get(RowState.DUPLICATE.value, 0):,} duplicates",
        f"{c.get(RowState.NOT_SENT.value, 0):,} not sent",
    ]
    for state in (RowState.UNCONFIRMED, RowState.NOT_IN_LIST):
        if c.get(state.value):  # shown when they happen, so the usual line stays short
            parts.append(f"{c[state.value]:,} {state.label}")
    if c.get(RowState.UNCHANGED.value):
        parts.append(f"{c[RowState.UNCHANGED.value]:,} unchanged (skipped)")
    if c.get(RowState.SUBSCRIPTION_UNCONFIRMED.value):
        parts.append(f"{c[RowState.SUBSCRIPTION_UNCONFIRMED.value]:,} subscription unconfirmed")
    text = f"{head}: {', '.join(parts)} in {summary.duration_s:.1f}s"
    if summary.verification:
        text += f"; {describe_verification(summary.verification)}"
    if summary.run_id is not None:
        text += f" (run {summary.run_id}"
        if summary.rejects_path:
            text += f"; rejects: {summary.rejects_path}"
        text += ")"
    return text + format_sync(summary.sync, dry_run=False) + _stopped(summary)


def _stopped(summary: RunSummary) -> str:
    """Why a run stopped short, on the summary line too: a log that keeps only stdout (cron)
    must not read a failed run as an empty one."""
    if summary.exit_code in (ExitCode.OK, ExitCode.PARTIAL) or not summary.error:
        return ""
    if summary.error == summary.sync.get("refused"):  # said just above, on its "refused:" line
        return f"; stopped (exit code {int(summary.exit_code)})"
    return f"; stopped (exit code {int(summary.exit_code)}): {summary.error}"


def _n(figures: dict[str, object], key: str) -> int:
    value = figures.get(key, 0)
    return value if isinstance(value, int) else 0


def format_sync(figures: dict[str, object], *, dry_run: bool) -> str:
    """The sync part of a summary: nothing for a plain upsert run that is not incremental."""
    plain = figures.get("mode") == "upsert" and not figures.get("incremental")
    if not figures or (plain and not figures.get("retry_of")):
        return ""
    verb = "to add" if dry_run else "added"
    parts = [
        f"{_n(figures, 'added'):,} {verb}",
        f"{_n(figures, 'updated'):,} {'to update' if dry_run else 'updated'}",
        f"{_n(figures, 'unchanged'):,} unchanged",
    ]
    if figures.get("mode") == "mirror":
        if dry_run:
            parts.append(
                f"{_n(figures, 'removals'):,} at most to remove (about "
                f"{figures.get('removal_seconds', 0)}s)"
            )
        else:
            parts.append(f"{_n(figures, 'removed'):,} removed (left the segment)")
    if "subscriptions" in figures:
        parts.append(
            f"{_n(figures, 'subscriptions'):,} to subscribe (about "
            f"{figures.get('subscribe_seconds', 0)}s)"
        )
    elif "subscribed" in figures:
        parts.append(f"{_n(figures, 'subscribed'):,} subscribed")
    retry = figures.get("retry_of")
    what = f"{figures.get('mode')}" + (f" (a retry of run {retry})" if retry else "")
    text = f"\n  {what}: {', '.join(parts)}"
    if figures.get("full_reason"):
        text += f"\n  every row sent once: {figures['full_reason']}"
    if figures.get("refused"):
        text += f"\n  refused: {figures['refused']}"
    return text


def summary_json(summary: RunSummary) -> dict[str, object]:
    return {
        "run_id": summary.run_id,
        "export": summary.export,
        "counts": summary.counts,
        "duration_s": round(summary.duration_s, 3),
        "exit_code": int(summary.exit_code),
        "jobs": summary.jobs,
        "dry_run": summary.dry_run,
        "rejects_path": str(summary.rejects_path) if summary.rejects_path else None,
        "error": redact(summary.error) if summary.error else None,
        **({"hint": redact(summary.hint)} if summary.hint else {}),
        **({"plan": summary.plan} if summary.dry_run else {}),
        **({"verification": summary.verification} if summary.verification else {}),
        **({"sync": summary.sync} if summary.sync else {}),
    }


PACING_NEWS_S = 2.0


def bar_text(p: RunProgress, rate: float, width: int = 20) -> str:
    """A terminal's one-line bar (under 80 columns): like the TUI's, rows settled out of the
    rows the first pass counted, so it fills from the start and never moves back."""
    if not p.rows_total:
        return f"read {plural(p.read, 'row')}, {p.confirmed:,} confirmed"
    share = min(p.rows_settled / p.rows_total, 1.0)
    filled = int(width * share)
    bar = "█" * filled + "░" * (width - filled)
    percent = f"{int(share * 100)}%"  # rounded down, as the bar: 100% once all are settled
    rows = f"of {p.rows_total:,} rows · {p.confirmed:,} confirmed · {rate:,.0f}/s"
    return f"{bar} {percent:>4} {rows}"


class ProgressPrinter:
    """Reads the core's fold (RunProgress): a one-line bar on a terminal, plain timestamped lines
    otherwise (cron, pipes, CI)."""

    def __init__(self, export: str) -> None:
        self.progress = RunProgress(export)
        self.export = export
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self._last_bar = 0.0

    def event(self, event: ProgressEvent) -> None:
        line = self.progress.apply(event)
        match event:
            case JobsPlanned(jobs=jobs, profiles=profiles, total=total):
                rows = plural(total or self.progress.read, "row")
                self._line(
                    f"read {rows}: {plural(profiles, 'profile')} to send in {plural(jobs, 'job')}"
                )
            case JobSubmitted() | JobConfirmed():
                if not self.tty and line:
                    self._line(line)
                self._bar()
            case Waiting(seconds=seconds, reason=reason):
                # Short waits for the rate limit are the normal rhythm of a run, not news; long
                # waits and Klaviyo's own Retry-After are worth a line.
                if seconds >= PACING_NEWS_S or "asked" in reason:
                    self._line(f"waiting {seconds:.1f}s: {reason}")
            case RunSummary():
                pass
            case _:
                if line:
                    self._line(line)
                self._bar()

    def _line(self, text: str) -> None:
        text = safe_text(text)
        if self.tty:
            click.echo("\r\033[K" + wrapped(text), err=True)
            self._bar(force=True)
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{stamp} {safe_text(self.export)}: {text}", err=True)

    def _bar(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last_bar < 0.1:
            return
        self._last_bar = now
        rate = self.progress.confirmed / max(now - self.started, 1e-6)
        click.echo("\r\033[K" + bar_text(self.progress, rate), err=True, nl=False)

    def close(self) -> None:
        if self.tty:
            click.echo("\r\033[K", err=True, nl=False)
