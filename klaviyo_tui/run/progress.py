"""The run view's state: engine events folded into plain numbers (no textual; tests feed it).

The App owns one `RunHandle` per running export; the run screen only reads it. Keeping the fold here
(instead of in widget handlers) lets a snapshot test replay a fixed event sequence and get the same
screen every time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import (
    JobConfirmed,
    JobsPlanned,
    JobSubmitted,
    JobUnconfirmed,
    Notice,
    Phase,
    ProgressEvent,
    Retrying,
    RetryOf,
    RowsRead,
    RowsRejected,
    RunSummary,
    SettledBefore,
    Waiting,
)

RATE_WINDOW = 60  # samples kept for the sparkline (every confirmed job, and twice a second)
RATE_SPAN_S = 5.0  # the shown rate (and the ETA) is over this many seconds


@dataclass
class RunProgress:
    """Cumulative counters of one run, plus a short rate history and an event log."""

    export: str
    phase: str = "starting"
    phase_detail: str = ""
    read: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    unchanged: int = 0  # valid rows an incremental run did not send
    rows_total: int | None = None  # rows the read covers, once the first pass has counted them
    total: int | None = None  # profiles to send, once known
    jobs_planned: int = 0
    jobs_submitted: int = 0
    jobs_confirmed: int = 0
    sent: int = 0
    confirmed: int = 0
    rejected: int = 0
    settled_before: int = 0  # rows of batches a resumed run found settled by the interrupted one
    unconfirmed: int = 0  # rows of batches Klaviyo accepted but never confirmed
    waits: int = 0
    waited_s: float = 0.0
    retries: int = 0
    summary: RunSummary | None = None
    error: str | None = None
    interrupted: bool = False
    retry_of: int | None = None  # the run whose rejected rows this one sends again
    rates: deque[float] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))
    log: list[str] = field(default_factory=list)
    _last_sample: tuple[float, int] | None = None
    #: (time, profiles confirmed) at each sample of the last RATE_SPAN_S, for `rate`
    _recent: deque[tuple[float, int]] = field(default_factory=deque)

    # ---- folding -------------------------------------------------------------------------------
    def apply(self, event: ProgressEvent) -> str | None:
        """Fold one event in; return the log line it produced (if any)."""
        line: str | None = None
        match event:
            case RetryOf(run_id=run_id):
                self.retry_of = run_id
            case Phase(name=name, detail=detail):
                self.phase, self.phase_detail = name, detail
                line = f"{name}: {detail}" if detail else name
            case RowsRead():
                self.read, self.valid = event.read, event.valid
                self.invalid, self.duplicates = event.invalid, event.duplicates
                self.unchanged, self.rows_total = event.unchanged, event.total
            case JobsPlanned():
                self.jobs_planned = event.jobs
                self.total = event.profiles
            case JobSubmitted():
                self.jobs_submitted += 1
                self.sent += event.profiles
                line = f"batch {event.batch + 1} sent: {plural(event.profiles, 'profile')}"
            case JobConfirmed():
                self.jobs_confirmed += 1
                self.confirmed += event.imported
                self.rejected += event.failed
                line = (
                    f"batch {event.batch + 1} confirmed: {event.imported:,} imported, "
                    f"{event.failed:,} failed"
                )
            case SettledBefore(batch=batch, rows=rows, job_id=job_id):
                self.jobs_confirmed += 1
                self.settled_before += rows
                said = f"job {job_id}" if job_id else "every row refused"
                line = f"batch {batch + 1}: confirmed before ({said}), not sent again"
            case JobUnconfirmed():
                self.jobs_confirmed += 1  # settled: nothing more to wait for in this run
                self.unconfirmed += event.rows
                line = (
                    f"warning: batch {event.batch + 1}: {plural(event.rows, 'row')} unconfirmed: "
                    f"{event.reason}"
                )
            case RowsRejected():
                reason = event.reason.removeprefix("Klaviyo: ")
                line = f"{plural(event.count, 'row')} rejected by Klaviyo: {reason}"
            case Waiting():
                self.waits += 1
                self.waited_s += event.seconds
                line = f"waiting {event.seconds:.1f}s: {event.reason}"
            case Retrying():
                self.retries += 1
                line = f"retry {event.attempt}: {event.reason}"
            case Notice():
                line = event.message if event.level == "info" else f"{event.level}: {event.message}"
            case RunSummary():
                self.summary = event
                self.phase = "done"
                self.interrupted = event.exit_code == ExitCode.INTERRUPTED
                line = f"finished: {describe_exit(event.exit_code)}"
        if line is not None:
            self.log.append(line)
        return line

    def sample(self, now: float) -> None:
        """Record profiles confirmed per second since the previous sample.

        Called on a timer and on every confirmed job, so even a run of one job draws a point.
        """
        if self._last_sample is not None:
            then, count = self._last_sample
            if now - then < 0.05 and self.confirmed == count:
                return  # a timer tick right after a job: keep the job's sample
            if now > then:
                self.rates.append(max(0.0, (self.confirmed - count) / (now - then)))
        self._last_sample = (now, self.confirmed)
        recent = self._recent
        recent.append((now, self.confirmed))
        while len(recent) > 2 and recent[1][0] <= now - RATE_SPAN_S:
            recent.popleft()  # keep one sample at or before the span's start

    # ---- derived -------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.summary is not None or self.error is not None or self.interrupted

    @property
    def done_rows(self) -> int:
        return self.confirmed + self.rejected

    @property
    def rows_settled(self) -> int:
        """Rows read whose outcome is known: not to be sent (invalid, duplicate, unchanged) or
        answered by Klaviyo, in this run or in the interrupted run it resumes. Once every row is
        read and answered, `rows_total`."""
        answered = self.done_rows + self.unconfirmed + self.settled_before
        waiting = self.valid - self.unchanged - answered
        return max(0, self.read - max(0, waiting))

    @property
    def rate(self) -> float:
        """Profiles confirmed per second over the last RATE_SPAN_S (0 until a second has
        passed): jobs are confirmed in bursts, and a rate over the gap between two of a burst
        read 500,000 a second."""
        if len(self._recent) < 2:
            return 0.0
        (then, before), (now, count) = self._recent[0], self._recent[-1]
        return (count - before) / (now - then) if now - then >= 1.0 else 0.0

    @property
    def average_rate(self) -> float | None:
        """Profiles confirmed per second over the whole run, once it has finished."""
        if self.summary is None or not self.summary.duration_s:
            return None
        return self.confirmed / self.summary.duration_s

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done_rows) / self.rate)

    @property
    def jobs_in_flight(self) -> int:
        return max(0, self.jobs_submitted - self.jobs_confirmed)

    @property
    def jobs_queued(self) -> int:
        # a resumed run confirms jobs it did not submit (accepted before the interruption)
        if self.finished:
            return 0
        return max(0, self.jobs_planned - max(self.jobs_submitted, self.jobs_confirmed))

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "valid": self.valid,
            "sent": self.sent,
            "confirmed": self.confirmed,
            "rejected": self.rejected,
        }


def describe_exit(code: ExitCode | int) -> str:
    """One short phrase per exit code, for logs and summaries."""
    return {
        ExitCode.OK: "every valid row confirmed",
        ExitCode.PARTIAL: "some rows were not imported (see rejects)",
        ExitCode.USAGE: "configuration problem",
        ExitCode.INPUT: "input data problem",
        ExitCode.AUTH: "authentication or permission problem",
        ExitCode.UNAVAILABLE: "Klaviyo unavailable after retries",
        ExitCode.INTERNAL: "internal error (see the log file)",
        ExitCode.INTERRUPTED: "interrupted (resumable)",
    }.get(ExitCode(int(code)), str(code))


def describe_verification(result: dict[str, object]) -> str:
    """ "verified: 99,998 of 100,000 confirmed rows in the list; 2 missing (…)" from a
    RunSummary's `verification`."""
    mode = str(result.get("mode", ""))
    head = "verified" if mode == "full" else f"verified a sample ({mode})"
    checked, in_list = int(str(result.get("checked", 0))), int(str(result.get("in_list", 0)))
    text = f"{head}: {in_list:,} of {checked:,} confirmed rows in the list"
    missing = int(str(result.get("missing", 0)))
    if missing:
        text += f"; {missing:,} missing (state not_in_list in the rejects file)"
    return text


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 row`, `2 rows`, `1,000 batches`: counts read as people say them."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
