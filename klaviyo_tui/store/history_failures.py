"""Per-row failures and warnings of a run: what the rejects file and the run's details show.

Each entry keeps the offending value, the reason, the matching email and the row's mapped source
values (so a rejects file can be fixed and imported again). Reasons often quote Klaviyo's text,
which a hostile or buggy server could fill with the request's own API key: every text is redacted
before it reaches the file.

Mixed into `HistoryStore` (history.py), which provides the connection and transactions.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.redaction import redact
from klaviyo_tui.store.history_journal import FINISH_BATCH
from klaviyo_tui.store.history_records import (
    DUPLICATE_REASON,
    values_json,
    values_of,
)


class FailurePlan(NamedTuple):
    """A run's failures as the rejects file needs them before its first line."""

    order: list[int]  # failure ids by (segment, row), recording order within a row
    refused: set[tuple[str, int]]  # rows Klaviyo refused
    source_values: list[str]  # the non-empty source-values JSON texts, in recording order


class FailureRow(NamedTuple):
    """One failure as stored (texts already redacted), without building a `Reject`."""

    row: int
    segment: str
    column: str
    value: str
    reason: str
    state: str
    email: str
    source_values: str | None


class FailuresMixin:
    """Failure methods of HistoryStore."""

    version: int  # the file's schema version (a reader may hold an older file)
    #: Writes that changed the failures table through this store, counted inside their
    #: transaction (under the store's lock, before the commit): a rejects file written early
    #: (run/rejects.py, `draft`) is exact while the count is the same.
    failure_changes = 0

    def _counted(self, cursor: sqlite3.Cursor) -> None:
        if cursor.rowcount:  # -1 (not known) counts too
            self.failure_changes += 1

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError  # pragma: no cover (HistoryStore provides it)

    def add_failures(self, run_id: int, rejects: Iterable[Reject]) -> None:
        """Reasons often quote Klaviyo's text, which a hostile or buggy server could fill with
        the request's own API key: every text is redacted before it reaches the file."""
        with self._tx() as db:
            self._insert_failures(db, run_id, rejects)

    def add_refused(self, run_id: int, rejects: list[Reject]) -> None:
        """Rows Klaviyo refused before accepting their batch's job, in place of what an earlier
        start of the run recorded for them: a run stopped before the batch was accepted sends
        it again when resumed, and Klaviyo refuses the same rows again."""
        with self._tx() as db:
            for at in range(0, len(rejects), 5_000):  # one pass over the run's rejects a part
                part = rejects[at : at + 5_000]
                pairs = ", ".join(["(?, ?)"] * len(part))
                db.execute(
                    "DELETE FROM failures WHERE run_id = ? AND state = ? "
                    f"AND (segment, row) IN (VALUES {pairs})",
                    (
                        run_id,
                        str(RowState.REJECTED),
                        *(v for r in part for v in (r.segment, r.row)),
                    ),
                )
            self._insert_failures(db, run_id, rejects)

    def add_batch_failures(
        self, run_id: int, rejects: Iterable[Reject], batch_no: int, counts: tuple[int, int, int]
    ) -> None:
        """A confirmed batch's failures and its end (`counts`: imported, failed, warned, as
        `batch_finished` takes them) in one transaction: a run stopped between the two would ask
        Klaviyo about the batch again when resumed, and record its failures twice."""
        imported, failed, warned = counts
        with self._tx() as db:
            self._insert_failures(db, run_id, rejects)
            db.execute(FINISH_BATCH, (imported, failed, warned, run_id, batch_no))

    def _insert_failures(
        self, db: sqlite3.Connection, run_id: int, rejects: Iterable[Reject]
    ) -> None:
        inserted = db.executemany(
            "INSERT INTO failures (run_id, row, segment, column_name, value, reason, state, "
            "email, source_values) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    run_id,
                    r.row,
                    r.segment,
                    redact(r.column),
                    redact(str(r.value)),
                    redact(r.reason),
                    str(r.state),
                    redact(r.email),
                    values_json(r.source_values),
                )
                for r in rejects
            ),
        )
        self._counted(inserted)

    def _columns_sql(self) -> str:
        extra = "email, source_values" if self.version >= 3 else "'', NULL"
        return f"id, row, segment, column_name, value, reason, state, {extra}"

    @staticmethod
    def _reject(r: sqlite3.Row) -> Reject:
        return Reject(r[1], r[2], r[3], r[4], r[5], RowState(r[6]), r[7], values_of(r[8]))

    def failures(self, run_id: int, limit: int | None = None) -> list[Reject]:
        """The run's failures and warnings in the order they were recorded."""
        rows = self._query(
            f"SELECT {self._columns_sql()} FROM failures WHERE run_id = ? ORDER BY id LIMIT ?",
            (run_id, -1 if limit is None else limit),
        )
        return [self._reject(r) for r in rows]

    def failure_plan(self, run_id: int) -> FailurePlan:
        """What the rejects file must know before its first line, in three short queries that
        SQLite answers in C (38k failures at 1M rows): the ids in file order, the rows Klaviyo
        refused, and the source-values texts in recording order (only their keys are needed)."""
        order = [
            int(r[0])
            for r in self._query(
                "SELECT id FROM failures WHERE run_id = ? ORDER BY segment, row, id", (run_id,)
            )
        ]
        refused = {
            (r[0], int(r[1]))
            for r in self._query(
                "SELECT DISTINCT segment, row FROM failures WHERE run_id = ? AND state = ?",
                (run_id, RowState.REJECTED.value),
            )
        }
        texts: list[str] = []
        if self.version >= 3 and order:
            texts = [
                r[0]
                for r in self._query(
                    "SELECT source_values FROM failures WHERE run_id = ? "
                    "AND source_values IS NOT NULL ORDER BY id",
                    (run_id,),
                )
            ]
        return FailurePlan(order, refused, texts)

    def failure_rows(self, ids: list[int]) -> list[FailureRow]:
        """These failures as plain tuples, in the order of `ids` (at most a page: one query)."""
        marks = ", ".join("?" * len(ids))
        rows = self._query(
            f"SELECT {self._columns_sql()} FROM failures WHERE id IN ({marks})", tuple(ids)
        )
        found = {int(r[0]): FailureRow(*r[1:]) for r in rows}
        return [found[i] for i in ids]

    def failures_by_id(self, ids: list[int]) -> list[Reject]:
        """These failures, in the order of `ids` (at most a page: one query)."""
        marks = ", ".join("?" * len(ids))
        rows = self._query(
            f"SELECT {self._columns_sql()} FROM failures WHERE id IN ({marks})", tuple(ids)
        )
        found = {int(r[0]): self._reject(r) for r in rows}
        return [found[i] for i in ids]

    def failure_reasons(self, run_id: int) -> list[tuple[str, str, int]]:
        """(reason, state, count), most frequent first. Duplicates count as one reason (each
        names its own winning row, which would make every one a group of its own)."""
        rows = self._query(
            "SELECT CASE WHEN state = ? THEN ? ELSE reason END AS why, state, COUNT(*) AS n "
            "FROM failures WHERE run_id = ? GROUP BY why, state ORDER BY n DESC, why",
            (RowState.DUPLICATE.value, DUPLICATE_REASON, run_id),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def refused_without_values(self, run_id: int) -> dict[tuple[str, int], tuple[int, str]]:
        """(segment, row) -> (failure id, email) of the rows Klaviyo refused in the run whose
        source values are not recorded (run/refused_values.py)."""
        rows = self._query(
            "SELECT segment, row, id, email FROM failures WHERE run_id = ? AND state = ? "
            "AND row > 0 AND source_values IS NULL",
            (run_id, RowState.REJECTED.value),
        )
        return {(str(r[0]), int(r[1])): (int(r[2]), str(r[3] or "")) for r in rows}

    def set_failure_values(self, values: Iterable[tuple[int, str]]) -> None:
        """Record source values (as `values_json` stores them) for these failure ids."""
        with self._tx() as db:
            updated = db.executemany(
                "UPDATE failures SET source_values = ? WHERE id = ?",
                ((text, failure) for failure, text in values),
            )
            self._counted(updated)

    def drop_failures(
        self, run_id: int, state: RowState | str, rows: Iterable[tuple[str, int]]
    ) -> None:
        """Forget the entries in `state` of these (segment, row)s: their state changed."""
        with self._tx() as db:
            dropped = db.executemany(
                "DELETE FROM failures WHERE run_id = ? AND state = ? AND segment = ? AND row = ?",
                ((run_id, str(state), segment, row) for segment, row in rows),
            )
            self._counted(dropped)

    def clear_failures(self, run_id: int, states: Iterable[RowState | str]) -> None:
        wanted = [str(s) for s in states]
        if not wanted:
            return
        marks = ", ".join("?" * len(wanted))
        with self._tx() as db:
            cleared = db.execute(
                f"DELETE FROM failures WHERE run_id = ? AND state IN ({marks})", (run_id, *wanted)
            )
            self._counted(cleared)

    def clear_local_warnings(self, run_id: int) -> None:
        """Forget the warnings the pipeline wrote while reading (fields it dropped); Klaviyo's
        own warnings (reasons starting "Klaviyo:") stay: their batches are not confirmed again."""
        with self._tx() as db:
            cleared = db.execute(
                "DELETE FROM failures WHERE run_id = ? AND state = ? AND reason NOT LIKE ?",
                (run_id, RowState.IMPORTED_WITH_WARNINGS.value, "Klaviyo:%"),
            )
            self._counted(cleared)
