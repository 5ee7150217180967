"""History rows as Python values, and whether a run marked "running" is still alive.

A run is only alive while its export's lock (see `run.locking`) is held by the process that
started it; a row left "running" by a killed process reads as "interrupted".
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime

import orjson

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.redaction import redact
from klaviyo_tui.run.locking import lock_holder

RUN_COLUMNS = (
    "id, export, connection, list_id, started_at, ended_at, status, counts, duration_s, "
    "exit_code, error, rejects_path, jobs, dry_run, pid"
)
STATUS_BY_EXIT = {
    ExitCode.OK: "ok",
    ExitCode.PARTIAL: "partial",
    ExitCode.INTERRUPTED: "interrupted",
}
#: Failed runs that `--resume` continues: Klaviyo refused the key (fixed since) or was unavailable.
RESUMABLE_FAILURES = (int(ExitCode.AUTH), int(ExitCode.UNAVAILABLE))


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    export: str
    connection: str
    list_id: str
    started_at: str  # ISO 8601, UTC
    ended_at: str | None
    status: str  # running | ok | partial | failed | interrupted
    counts: dict[str, int]
    duration_s: float | None
    exit_code: int | None
    error: str | None
    rejects_path: str | None
    jobs: int
    dry_run: bool

    @property
    def started(self) -> datetime:
        return datetime.fromisoformat(self.started_at)


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch_no: int
    fingerprint: str
    profiles: int
    job_id: str | None
    state: str  # submitting | accepted | finished | unconfirmed
    imported: int = 0  # confirmed imported (without warnings)
    failed: int = 0  # rejected in the job's import errors
    rejected: int = 0  # rows Klaviyo refused before accepting the job (400 pointers)
    warned: int = 0  # confirmed imported without a field Klaviyo refused


DUPLICATE_REASON = "duplicate email: a later row with the same email is sent instead"


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def _status(row: sqlite3.Row) -> str:
    """A "running" row whose process no longer holds the export's lock was killed."""
    if row["status"] != "running":
        return str(row["status"])
    try:
        locked, holder = lock_holder(row["export"])
    except OSError:  # a read-only data folder: the lock can't be probed, the pid can
        return "running" if _alive(row["pid"]) else "interrupted"
    alive = locked and (holder is None or row["pid"] is None or holder == row["pid"])
    return "running" if alive else "interrupted"


def record_of(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        export=row["export"],
        connection=row["connection"],
        list_id=row["list_id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=_status(row),
        counts=json.loads(row["counts"] or "{}"),
        duration_s=row["duration_s"],
        exit_code=row["exit_code"],
        error=row["error"],
        rejects_path=row["rejects_path"],
        jobs=row["jobs"],
        dry_run=bool(row["dry_run"]),
    )


def values_json(values: tuple[tuple[str, str], ...]) -> str | None:
    """A row's source values as a JSON object (column order kept), each value redacted.

    Per failure row (38k at 1M rows): one "pk_" test over all the values and orjson, instead
    of a redact() and json's encoder per value; the json module where orjson refuses (text that
    is not valid Unicode), so what is stored is what it always was, give or take spaces."""
    if not values:
        return None
    data = dict(values)
    try:
        if "pk_" not in "\0".join(data.values()):
            return orjson.dumps(data).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    return json.dumps({column: redact(value) for column, value in values}, ensure_ascii=False)


def values_of(text: str | None) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(data, dict):
        return ()
    return tuple((str(k), "" if v is None else str(v)) for k, v in data.items())
