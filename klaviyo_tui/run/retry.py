"""Which rows `run --retry-failed RUN` sends again: those Klaviyo rejected in RUN, still in the
source with the email Klaviyo rejected.

A failure names its row by (segment, row number) and the email Klaviyo rejected. The source may
have changed since RUN, so a row is found by that email, wherever it now is in its segment: rows
added or removed above it move it, and the row number it had may hold another customer, who is
never sent in its place. A rejected row whose email no valid row holds any more is counted as
gone. (Failures recorded without their email, by older versions, go by row number alone.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klaviyo_tui.errors import RunError
from klaviyo_tui.events import Reject, RowState

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from klaviyo_tui.store.history import HistoryStore


class RetryRows:
    """The rows to send again: (segment, row) in RUN -> the normalised email Klaviyo rejected
    ("" when the history did not record it). A row is found by that email wherever it is now
    in its segment (rows move when rows above them are added or removed); one recorded without
    its email, by its row number alone."""

    def __init__(self, run_id: int, emails: dict[tuple[str, int], str]) -> None:
        self.run_id, self.emails = run_id, emails
        self._by_email: dict[str, dict[str, list[int]]] = {}  # segment -> email -> rows in RUN
        self._by_row: set[tuple[str, int]] = set()
        for (segment, row), email in emails.items():
            if email:
                self._by_email.setdefault(segment, {}).setdefault(email, []).append(row)
            else:
                self._by_row.add((segment, row))

    @classmethod
    def of(cls, store: HistoryStore, run_id: int, export: str) -> RetryRows:
        """Blocks (SQLite): call it in a thread. Raises RunError when RUN cannot be retried by
        this export: no such run, another export's run, a dry run, or nothing Klaviyo rejected."""
        hint = f"`klaviyo-tui history {export}` lists this export's runs and what failed in each."
        record = store.run(run_id)
        if record is None:
            raise RunError(f"there is no run {run_id} in the history", hint=hint)
        if record.export != export:
            raise RunError(
                f"run {run_id} is a run of export {record.export!r}, not {export!r}: its rows "
                "are another export's",
                hint=hint,
            )
        if record.dry_run:
            raise RunError(
                f"run {run_id} was a dry run: it sent nothing, so Klaviyo rejected nothing",
                hint=hint,
            )
        emails = {
            (f.segment, f.row): f.email
            for f in store.failures(run_id)
            if f.state == RowState.REJECTED and f.row > 0
        }
        if not emails:
            unconfirmed = record.counts.get(RowState.UNCONFIRMED.value, 0)
            raise RunError(
                f"Klaviyo rejected no row of run {run_id} that can be sent again: nothing to retry",
                hint=f"Its {unconfirmed:,} unconfirmed row(s) were accepted, not rejected: "
                f"`klaviyo-tui run {export} --resume` asks Klaviyo about them (for the latest run)."
                if unconfirmed
                else "Rows that failed this machine's checks (invalid, duplicate) need a fix in "
                f"the source, then `klaviyo-tui run {export}`.",
            )
        return cls(run_id, emails)

    def __len__(self) -> int:
        return len(self.emails)

    def found(self, segment: str, row: int, email: str) -> list[tuple[str, int]]:
        """The rows of RUN that a source row (`email`: its normalised email, "" if none) is."""
        rows = self._by_email.get(segment, {}).get(email, []) if email else []
        found = [(segment, r) for r in rows]
        return [*found, (segment, row)] if (segment, row) in self._by_row else found

    def wanted(
        self, segment: str, rows: np.ndarray, emails: pa.Array
    ) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Mask of the valid rows to send again, and the rows of RUN they are."""
        import numpy as np  # the engine imports this module: keep its imports light
        import pyarrow as pa
        import pyarrow.compute as pc

        out = np.zeros(len(rows), dtype=bool)
        by_email = self._by_email.get(segment)
        if by_email:
            known = pc.is_in(emails, value_set=pa.array(list(by_email), pa.string()))
            out |= known.to_numpy(zero_copy_only=False).astype(bool)
        if any(seg == segment for seg, _ in self._by_row):
            out |= np.isin(rows, [r for seg, r in self._by_row if seg == segment])
        found: list[tuple[str, int]] = []
        for i in np.flatnonzero(out).tolist():
            email = emails[i].as_py()
            found += self.found(segment, int(rows[i]), email or "")
        return out, found

    def gone(self, found: set[tuple[str, int]]) -> list[Reject]:
        """The rows to retry that the source no longer holds as they were (`found`: those it
        does), each ending not sent, with the email Klaviyo rejected."""
        return [
            Reject(
                row=row,
                segment=segment,
                column="email",
                value=email,
                reason=f"not sent: Klaviyo rejected {email or 'this row'} in run {self.run_id}, "
                "and no valid row of the segment holds it now (its source or filter changed since)",
                state=RowState.NOT_SENT,
                email=email,
            )
            for (segment, row), email in sorted(self.emails.items())
            if (segment, row) not in found
        ]
