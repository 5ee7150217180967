"""The end of a run in numbers and words: exit code, counts per state, what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from klaviyo_tui.errors import AppError, ExitCode, RunError
from klaviyo_tui.events import RowState, RunSummary
from klaviyo_tui.klaviyo import RateLimitedUntil
from klaviyo_tui.klaviyo.pacing import OPERATIONS, least_seconds_for
from klaviyo_tui.run.confirm import Tally
from klaviyo_tui.run.outcomes import masked
from klaviyo_tui.run.sync.options import MassRemoval
from klaviyo_tui.store.config import ConfigError

#: A rough allowance for the last jobs to finish inside Klaviyo, for dry-run estimates.
JOB_FINISH_S = 5.0
#: Rows in these states keep a run from exit code 0.
NOT_DONE = (
    RowState.REJECTED,
    RowState.NOT_SENT,
    RowState.UNCONFIRMED,
    RowState.NOT_IN_LIST,
    RowState.SUBSCRIPTION_UNCONFIRMED,
)


def exit_code(tally: Tally, *, dry_run: bool) -> ExitCode:
    counts = tally.counts
    if tally.read and not tally.valid:  # a dry run says so too: it is the pre-flight check
        return ExitCode.INPUT
    if any(counts[state] for state in NOT_DONE):
        return ExitCode.PARTIAL
    return ExitCode.OK


def unconfirmed_note(tally: Tally, export: str) -> str | None:
    """What a person needs to know about unconfirmed rows, or None when there are none."""
    rows = tally.counts[RowState.UNCONFIRMED]
    if not rows:
        return None
    return (
        f"{rows:,} row(s) are unconfirmed: Klaviyo accepted them but never confirmed the "
        f"outcome; `klaviyo-tui run {export} --resume` asks Klaviyo about them again"
    )


def ending(
    error: BaseException | None,
    tally: Tally,
    export: str,
    *,
    dry_run: bool,
    refused: str | None = None,
) -> tuple[ExitCode, str | None, str | None]:
    """The exit code, message and what to do (the error's own hint) of a run whose work ended
    with `error` (None: it finished).

    `refused` is a sync refusal (a dry run's mass removal). An error that is neither the user's
    nor Klaviyo's doing (a bug) is raised again: the caller records the run and re-raises it."""
    code, message = _ending(error, tally, export, dry_run=dry_run, refused=refused)
    hint = MassRemoval.default_hint if refused and error is None else None
    if isinstance(error, AppError) and error.hint and error.hint != RunError.default_hint:
        hint = error.hint  # the generic "do what the message says" says nothing more
    return code, message, hint


def _ending(
    error: BaseException | None, tally: Tally, export: str, *, dry_run: bool, refused: str | None
) -> tuple[ExitCode, str | None]:
    if error is None:
        if refused:
            return ExitCode.USAGE, refused
        code = exit_code(tally, dry_run=dry_run)
        if code == ExitCode.INPUT:
            sent = "would be sent" if dry_run else "was sent"
            gone = tally.counts[RowState.NOT_SENT]  # a retry's rows no longer in the source
            if gone == tally.read:
                return code, (
                    f"nothing to retry: none of the {gone:,} rows is in the source any more with "
                    f"the email Klaviyo rejected, so nothing {sent}; the rejects file lists them"
                )
            what = "invalid or duplicates" if not gone else "invalid, duplicates or gone"
            return code, (
                f"no valid rows: all {tally.read:,} rows read are {what}, so nothing {sent}; "
                "the rejects file gives each row's reason"
            )
        return code, unconfirmed_note(tally, export)
    if isinstance(error, RateLimitedUntil):
        return ExitCode.INTERRUPTED, (
            f"{error} Resume with `klaviyo-tui run {export} --resume` after "
            f"{error.retry_at:%H:%M} local time."
        )
    if isinstance(error, ConfigError):
        return ExitCode.INPUT, str(error)
    if isinstance(error, AppError):  # run, Klaviyo, source, filter (a changed file: resumable)
        note = unconfirmed_note(tally, export)
        return error.exit_code, f"{str(error).rstrip('.')}; {note}" if note else str(error)
    if isinstance(error, OSError):
        return ExitCode.INPUT, f"could not write run files: {error.strerror or error}"
    raise error


@dataclass
class SummaryParts:
    """What the engine knows at the end, besides the tally."""

    run_id: int | None
    export: str
    started: float
    ended: float
    dry_run: bool
    planned_jobs: int
    sample_payload: bytes | None
    rejects_path: Path | None
    verification: dict[str, object] | None
    sync: dict[str, object]  # run/sync figures: added, updated, unchanged, removed, subscribed


def make_summary(
    parts: SummaryParts, tally: Tally, code: ExitCode, error: str | None, hint: str | None = None
) -> RunSummary:
    counts = dict(tally.counts)
    settled = sum(counts[s] for s in RowState if s != RowState.NOT_SENT)
    # Every row that Klaviyo did not settle (confirm, reject, leave unconfirmed) and that was
    # not invalid, a duplicate or unchanged is not sent: with those a stopped run never read.
    counts[RowState.NOT_SENT] = max(0, tally.read + tally.unread - settled)
    plan: dict[str, object] = {}
    if parts.dry_run:
        counts[RowState.NOT_SENT] = 0
        plan = _plan(parts, tally)
    path = parts.rejects_path
    return RunSummary(
        run_id=parts.run_id,
        export=parts.export,
        counts={state.value: n for state, n in counts.items()},
        duration_s=parts.ended - parts.started,
        exit_code=code,
        rejects_path=path if path and path.exists() else None,
        error=error,
        hint=hint,
        jobs=tally.jobs if not parts.dry_run else parts.planned_jobs,
        dry_run=parts.dry_run,
        plan=plan,
        verification=parts.verification,
        sync=parts.sync,
    )


def _plan(parts: SummaryParts, tally: Tally) -> dict[str, object]:
    jobs = parts.planned_jobs
    op = OPERATIONS["bulk_import_profiles"]
    return {
        "jobs": jobs,
        "profiles": tally.valid - tally.counts[RowState.UNCHANGED],  # unchanged rows are skipped
        # Klaviyo's rate limit bounds the upload; jobs then take a few seconds to finish.
        "estimated_seconds": round(least_seconds_for(op, jobs) + JOB_FINISH_S, 1) if jobs else 0,
        "rate_tier": f"{op.burst}/s burst, {op.steady}/min steady (bulk import jobs)",
        "sample_payload": masked(parts.sample_payload) if parts.sample_payload else None,
    }
