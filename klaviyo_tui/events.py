"""Small immutable types shared by the core and both front ends.

Everything here is plain data: no I/O, no textual. The engine yields `ProgressEvent`s and ends with
a `RunSummary`; the CLI prints them and the TUI folds them into reactives.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from klaviyo_tui.errors import ExitCode


class RowState(enum.StrEnum):
    """The one final state every input row ends in."""

    IMPORTED = "imported"
    # confirmed by Klaviyo, sent without a field that was unusable or ambiguous (the warnings
    # file names the field, its value and why)
    IMPORTED_WITH_WARNINGS = "imported_with_warnings"
    INVALID = "invalid"  # failed local validation, never sent
    REJECTED = "rejected_by_klaviyo"  # Klaviyo refused it (400 pointer or import error)
    DUPLICATE = "duplicate"  # an earlier row with the same email, superseded by a later one
    NOT_SENT = "not_sent"  # valid, but the run ended before Klaviyo confirmed it
    UNCONFIRMED = "unconfirmed"  # sent and accepted, but Klaviyo never confirmed the outcome
    NOT_IN_LIST = (
        "not_in_list"  # confirmed, but the read-back (--verify) did not find it in the list
    )
    # Sync modes (run/sync): a valid row confirmed by an earlier run with the same attributes,
    # skipped by an incremental run; an imported row whose subscription Klaviyo did not show.
    UNCHANGED = "unchanged"
    SUBSCRIPTION_UNCONFIRMED = "subscription_unconfirmed"

    @property
    def label(self) -> str:
        """How people read the state: "rejected by Klaviyo", "not sent"."""
        return self.value.replace("_", " ").replace("klaviyo", "Klaviyo")


def state_label(value: str) -> str:
    """The label of a state given by its stored value (unknown values are shown as they are)."""
    try:
        return RowState(value).label
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class Reject:
    """One row that will not reach (or did not make it into) Klaviyo, with the reason; or, with
    state IMPORTED_WITH_WARNINGS, one field a sent row went without.

    `email` is the matching key when known (normalized); `source_values` the row's values of
    every mapped source column, as read, so the rejects file can be fixed and imported again.
    """

    row: int  # 1-based data row number in its source (header excluded)
    segment: str
    column: str
    value: str
    reason: str
    state: RowState = RowState.INVALID
    email: str = ""
    source_values: tuple[tuple[str, str], ...] = ()


# ---- progress events (engine -> front ends) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phase:
    """The run moved to a new phase: reading, validating, uploading, confirming, done."""

    name: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RowsRead:
    """Cumulative counts after local reading and validation of a chunk."""

    read: int
    valid: int  # includes the unchanged rows an incremental run skips
    invalid: int
    duplicates: int
    unchanged: int = 0
    total: int | None = None  # rows the read covers in all, known once the first pass has run


@dataclass(frozen=True, slots=True)
class JobsPlanned:
    """Batches are packed; `total` is known once all input is read (None while streaming)."""

    jobs: int
    profiles: int
    total: int | None = None


@dataclass(frozen=True, slots=True)
class JobSubmitted:
    job_id: str
    batch: int
    profiles: int


@dataclass(frozen=True, slots=True)
class JobConfirmed:
    """Klaviyo finished a job: `imported` rows confirmed, `failed` listed in import errors."""

    job_id: str
    batch: int
    imported: int
    failed: int


@dataclass(frozen=True, slots=True)
class SettledBefore:
    """A resumed run's batch that the interrupted run settled (Klaviyo confirmed it, or refused
    every row): its `rows` are counted, not sent again."""

    batch: int
    rows: int
    job_id: str | None


@dataclass(frozen=True, slots=True)
class JobUnconfirmed:
    """Klaviyo accepted a batch but never confirmed its outcome (an unknown status, or no
    progress before the deadline): its rows are unconfirmed until `--resume` asks again."""

    job_id: str
    batch: int
    rows: int
    reason: str


@dataclass(frozen=True, slots=True)
class RowsRejected:
    """Klaviyo rejected rows (400 pointers or import errors); they are in the rejects file."""

    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class Waiting:
    """The client is waiting: rate-limit pacing, Retry-After, or backoff before a retry."""

    seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class Retrying:
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class RetryOf:
    """The run sends only the rows Klaviyo rejected in run `run_id` (`--retry-failed`, or the
    resume of such a run): the export's mode and removals do not apply."""

    run_id: int


@dataclass(frozen=True, slots=True)
class Notice:
    """A line for the event log."""

    message: str
    level: str = "info"  # info | warning | error


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The end of a run. `counts` maps every RowState value to a number."""

    run_id: int | None
    export: str
    counts: dict[str, int]
    duration_s: float
    exit_code: ExitCode
    rejects_path: Path | None = None
    error: str | None = None
    #: What to do about `error`, in the CLI's words (the TUI says it for its own keys).
    hint: str | None = None
    jobs: int = 0
    dry_run: bool = False
    plan: dict[str, object] = field(default_factory=dict)
    #: The read-back after the run (`--verify`): mode, checked, in_list, missing; None when off.
    verification: dict[str, object] | None = None
    #: Sync figures (run/sync): mode, added, updated, unchanged, removed, subscribed, ...
    sync: dict[str, object] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())


ProgressEvent = (
    Phase
    | RetryOf
    | RowsRead
    | JobsPlanned
    | JobSubmitted
    | JobConfirmed
    | SettledBefore
    | JobUnconfirmed
    | RowsRejected
    | Waiting
    | Retrying
    | Notice
    | RunSummary
)
