"""What one run of an export does about sync: its settings, the CLI's overrides, its basis."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.store.config import Connection, Export
from klaviyo_tui.store.sync_config import MODES

#: Why a mirror run removes a profile from the list (shown by `history show`).
REMOVAL_REASON = "left the segment"
#: How long a run waits for Klaviyo to show its subscriptions (live: 15-40 s after the call).
SUBSCRIBE_WAIT_S = 120.0


class MassRemoval(RunError):
    """A mirror run would remove more of the list than the export allows."""

    title = "Too many removals"
    default_hint = (
        "Check the segment's source and filter first: an empty or broken source must never empty "
        "a list. If the removals are meant, run again with --allow-mass-removal, or raise "
        "max_removal_ratio / max_removals for the export."
    )
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """One run's overrides (CLI: --full, --mode, --allow-mass-removal)."""

    full: bool = False  # send every row once, whatever was confirmed before
    mode: str | None = None  # "upsert" | "mirror": instead of the export's mode, for this run
    allow_mass_removal: bool = False
    subscribe_wait_s: float = SUBSCRIBE_WAIT_S
    # --verify (full) checks the rows this run confirmed against the whole list: an incremental
    # export then sends every row once, so that unchanged rows are checked (and put back) too
    verify_all: bool = False
    retry_of: int | None = None  # run --retry-failed RUN: the rows Klaviyo rejected, no removals

    @property
    def forced(self) -> str | None:
        """Why this run sends every row whatever the export says (None: it need not)."""
        if self.full:
            return "--full was given"
        if self.verify_all:
            return "--verify reads the whole list back, so every row is sent to be checked"
        return None

    @staticmethod
    def full_before(figures: dict[str, object]) -> str | None:
        """Why the run being resumed sent every row when it started (None: it did not)."""
        reason = figures.get("full_reason")
        return f"resuming a run that sent every row ({reason})" if isinstance(reason, str) else None

    def retrying(self, run_id: int) -> SyncOptions:
        """This run's options when it sends again the rows Klaviyo rejected in RUN: it adds and
        updates them, whatever the export's mode, and removes no one."""
        if self.mode == "mirror":
            raise RunError(
                "--retry-failed sends only the rows Klaviyo rejected and removes no one, so "
                "--mode mirror does not go with it",
                hint="Retry first, then run the export with --mode mirror.",
                exit_code=ExitCode.USAGE,
            )
        return replace(self, mode="upsert", retry_of=run_id)

    @property
    def retried(self) -> dict[str, object]:
        """For the run's sync figures: the run it retries, which `retry_before` reads back."""
        return {} if self.retry_of is None else {"retry_of": self.retry_of}

    @staticmethod
    def retry_before(figures: dict[str, object]) -> int | None:
        """The run that the run being resumed retried (None: it retried none)."""
        run = figures.get("retry_of")
        return run if isinstance(run, int) and not isinstance(run, bool) else None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise RunError(f"mode {self.mode!r} is not a mode", hint='Use "upsert" or "mirror".')


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def basis_of(export: Export, connection: Connection) -> dict[str, object]:
    """What the confirmed rows of a run are valid for: a change to any of these makes the next
    incremental run send every row again (and a change of list or account forgets them)."""
    m = export.mapping
    mapping = {
        "fields": m.fields(),
        "location": dict(sorted(m.location.items())),
        "properties": list(m.properties),
        "region": export.default_region,
    }
    sub = export.sync.subscribe
    subscribe = _digest([sub.channel, sub.consented_at_column, sub.historical]) if sub else None
    return {
        "connection": connection.name,
        "base_url": connection.base_url,
        "list_id": export.list_id,
        "mapping": _digest(mapping),
        "subscribe": subscribe,
    }


def same_place(a: dict[str, object], b: dict[str, object]) -> bool:
    """The same list in the same account: what was added there is still known."""
    return all(a.get(k) == b.get(k) for k in ("connection", "base_url", "list_id"))


def why_full(stored: dict[str, object] | None, now: dict[str, object], empty: bool) -> str | None:
    """Why the confirmed rows can't be used for this run (None: they can)."""
    if stored is None:
        return "no earlier run of this export has confirmed rows yet"
    if stored.get("list_id") != now.get("list_id"):
        return f"the list changed since the last confirmed run (was {stored.get('list_id')})"
    if not same_place(stored, now):
        return "the connection changed since the last confirmed run"
    if empty:
        return "no earlier run of this export has confirmed rows yet"
    if stored.get("mapping") != now.get("mapping"):
        return "the mapping changed since the last confirmed run"
    if stored.get("subscribe") != now.get("subscribe"):
        return "the subscribe settings changed since the last confirmed run"
    return None
