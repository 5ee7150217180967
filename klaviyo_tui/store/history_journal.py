"""The resume journal (one row per batch) and the verification read-back of a run.

A batch goes `submitting` -> `accepted` (Klaviyo gave it a job id) -> `finished` (every row has a
confirmed state) or `unconfirmed` (Klaviyo never confirmed the job: a status outside the spec, or
no progress before the deadline). A resumed run polls the job of every `accepted` or
`unconfirmed` batch again instead of sending it, so the job id is always kept.

What a resumed run cannot learn again without resending is kept with the batch in `resend_log`:
the rows a 400 refused and the fields removed from rows before Klaviyo accepted the rest. It is
small (positions, grouped by field and reason), and read one batch at a time.

Mixed into `HistoryStore` (history.py), which provides the connection and transactions.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from klaviyo_tui.store.history_records import BatchRecord

#: A batch's end: imported, failed, warned, run_id, batch_no (also written with its failures,
#: in one transaction: history_failures.add_batch_failures).
FINISH_BATCH = (
    "UPDATE batches SET imported = ?, failed = ?, warned = ?, state = 'finished' "
    "WHERE run_id = ? AND batch_no = ?"
)


@dataclass
class ResendLog:
    """Before Klaviyo accepted a batch: the positions (in the batch as packed) of rows a 400
    refused, and the fields removed from rows, as position -> [(field, Klaviyo's reason)]."""

    refused: list[int] = field(default_factory=list)
    fixes: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.refused or self.fixes)

    def dumps(self) -> str:
        grouped: dict[str, dict[str, list[int]]] = {}
        for position, removed in sorted(self.fixes.items()):
            for name, reason in removed:
                grouped.setdefault(name, {}).setdefault(reason, []).append(position)
        return orjson.dumps({"refused": sorted(self.refused), "fixes": grouped}).decode()

    @classmethod
    def loads(cls, text: str | None) -> ResendLog:
        log = cls()
        if not text:
            return log
        data = orjson.loads(text)
        log.refused = [int(p) for p in data.get("refused", [])]
        for name, reasons in (data.get("fixes") or {}).items():
            for reason, positions in reasons.items():
                for position in positions:
                    log.fixes.setdefault(int(position), []).append((str(name), str(reason)))
        return log


@dataclass(frozen=True, slots=True)
class Verification:
    """The read-back after a run: `checked` confirmed rows looked up, `missing` not in the list.
    `members` is how many members a full read saw (None for a sample)."""

    mode: str  # "full" | "sample:N"
    checked: int
    in_list: int
    missing: int
    members: int | None = None
    verified_at: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "checked": self.checked,
            "in_list": self.in_list,
            "missing": self.missing,
            "members": self.members,
            "verified_at": self.verified_at,
        }


class JournalMixin:
    """Batch journal and verification methods of HistoryStore."""

    version: int  # the file's schema version (HistoryStore sets it)

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def batch_submitting(self, run_id: int, batch_no: int, fingerprint: str, profiles: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (run_id, batch_no, fingerprint, profiles, state) "
                "VALUES (?, ?, ?, ?, 'submitting') ON CONFLICT (run_id, batch_no) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, profiles = excluded.profiles, "
                "job_id = NULL, state = 'submitting', imported = 0, failed = 0, rejected = 0, "
                "warned = 0, resend_log = NULL",
                (run_id, batch_no, fingerprint, profiles),
            )

    def _batch(self, sql: str, args: tuple[object, ...]) -> None:
        with self._tx() as db:
            db.execute(f"UPDATE batches SET {sql} WHERE run_id = ? AND batch_no = ?", args)

    def batch_accepted(
        self, run_id: int, batch_no: int, job_id: str, log: ResendLog | None = None
    ) -> None:
        """Klaviyo gave the batch a job; `log` is what was refused or removed before that."""
        text = log.dumps() if log else None
        self._batch(
            "job_id = ?, state = 'accepted', resend_log = ?", (job_id, text, run_id, batch_no)
        )

    def batch_finished(
        self, run_id: int, batch_no: int, imported: int, failed: int, warned: int = 0
    ) -> None:
        """Every row of the batch is confirmed: `imported` plainly, `warned` imported without a
        field Klaviyo refused, `failed` rejected in the job's import errors."""
        with self._tx() as db:
            db.execute(FINISH_BATCH, (imported, failed, warned, run_id, batch_no))

    def batch_unconfirmed(self, run_id: int, batch_no: int) -> None:
        """Klaviyo never confirmed the batch's job; the job id stays for `--resume`."""
        self._batch("state = 'unconfirmed'", (run_id, batch_no))

    def batch_rejected_rows(self, run_id: int, batch_no: int, count: int) -> None:
        self._batch("rejected = rejected + ?", (count, run_id, batch_no))

    def batch_log(self, run_id: int, batch_no: int) -> ResendLog:
        rows = self._query(
            "SELECT resend_log FROM batches WHERE run_id = ? AND batch_no = ?", (run_id, batch_no)
        )
        return ResendLog.loads(rows[0][0] if rows else None)

    def journal(self, run_id: int) -> dict[int, BatchRecord]:
        warned = "warned" if self.version >= 2 else "0"  # a reader leaves a schema-1 file as it is
        rows = self._query(
            "SELECT batch_no, fingerprint, profiles, job_id, state, imported, failed, rejected, "
            f"{warned} FROM batches WHERE run_id = ? ORDER BY batch_no",
            (run_id,),
        )
        return {row["batch_no"]: BatchRecord(*row) for row in rows}

    def unconfirmed_batches(self, run_id: int) -> int:
        rows = self._query(
            "SELECT count(*) FROM batches WHERE run_id = ? AND state = 'unconfirmed'", (run_id,)
        )
        return int(rows[0][0]) if rows else 0

    # ---- verification ----------------------------------------------------------------------

    def record_verification(self, run_id: int, result: Verification) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO verifications (run_id, mode, checked, in_list, missing, members, "
                "verified_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "mode = excluded.mode, checked = excluded.checked, in_list = excluded.in_list, "
                "missing = excluded.missing, members = excluded.members, "
                "verified_at = excluded.verified_at",
                (
                    run_id,
                    result.mode,
                    result.checked,
                    result.in_list,
                    result.missing,
                    result.members,
                    result.verified_at or datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )

    def verification(self, run_id: int) -> Verification | None:
        """The run's read-back, if it had one. A reader may hold a schema-1 file open
        read-only (it cannot be upgraded): no table means no verification."""
        if not self._query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'verifications'"
        ):
            return None
        rows = self._query(
            "SELECT mode, checked, in_list, missing, members, verified_at FROM verifications "
            "WHERE run_id = ?",
            (run_id,),
        )
        return Verification(*rows[0]) if rows else None
