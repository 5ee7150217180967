"""Past runs: the list, one run's detail, and its rejects file, read without blocking writers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from klaviyo_tui.run import rejects
from klaviyo_tui.run.rejects import RejectsFileExists
from klaviyo_tui.run.sync.options import REMOVAL_REASON
from klaviyo_tui.store import paths
from klaviyo_tui.store.history import HistoryStore, RunRecord, Verification

__all__ = [
    "RejectsFileExists",
    "RunDetail",
    "RunRecord",
    "last_runs",
    "run_detail",
    "runs",
    "runs_sync",
    "write_rejects",
]


@dataclass(frozen=True, slots=True)
class RunDetail:
    record: RunRecord
    reasons: list[tuple[str, str, int]]  # (reason, state, count), most frequent first
    resumable: bool  # the export's latest real run, interrupted or with unconfirmed rows
    verification: Verification | None = None  # the read-back after the run (--verify)
    sync: dict[str, object] = field(default_factory=dict)  # added, updated, unchanged, ...
    removals: list[tuple[str, str, str]] = field(default_factory=list)  # (profile id, state, why)


def runs(export: str | None = None, limit: int = 200) -> list[RunRecord]:
    """Newest first. Blocks (SQLite): use a thread."""
    with HistoryStore.open_for_reading() as store:
        return store.runs(export, limit=limit)


def runs_sync(run_ids: list[int]) -> dict[int, dict[str, object]]:
    """Each run's sync figures (added, updated, unchanged, removed, subscribed), if it has
    any. Blocks (SQLite): use a thread."""
    with HistoryStore.open_for_reading() as store:
        return store.runs_sync(run_ids)


def written_stamp() -> tuple[tuple[int, int] | None, ...]:
    """(modified ns, size) of the history file and its write-ahead log: it differs once anything
    was written, by this process or another (a cron run, the CLI). Two `stat`s, no SQLite."""
    path = paths.history_path()
    stamps: list[tuple[int, int] | None] = []
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            info = file.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def last_runs(limit: int = 500) -> dict[str, RunRecord]:
    """Each export's latest real (not dry) run, for Home and the palette."""
    out: dict[str, RunRecord] = {}
    with HistoryStore.open_for_reading() as store:
        for record in store.runs(limit=limit):
            if not record.dry_run:
                out.setdefault(record.export, record)
    return out


def run_detail(run_id: int) -> RunDetail | None:
    """The run and its reasons, or None when there is no such run."""
    with HistoryStore.open_for_reading() as store:
        record = store.run(run_id)
        if record is None:
            return None
        latest = store.resumable_run(record.export)
        removals = [
            (profile_id, batch.state, REMOVAL_REASON)
            for batch in store.removals(run_id)
            for profile_id in batch.profile_ids
        ]
        return RunDetail(
            record,
            store.failure_reasons(run_id),
            latest is not None and latest.id == run_id,
            store.verification(run_id),
            store.run_sync(run_id),
            removals,
        )


def write_rejects(run_id: int, path: Path, *, overwrite: bool = False) -> Path | None:
    """Write the run's rejects CSV to `path`; None when the run has no rejects. Something
    already at `path` raises `RejectsFileExists` and is left as it was, unless `overwrite`."""
    with HistoryStore.open_for_reading() as store:
        return rejects.write(store, run_id, path, overwrite=overwrite)
