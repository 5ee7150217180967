"""Which rows `run --retry-failed RUN` sends again: those Klaviyo rejected in RUN, still in the
source with the email Klaviyo rejected.

A failure names its row by (segment, row number). The source may have changed since RUN, so a
row is sent again only while it still carries the email that was rejected: a row number that
now holds another customer is left alone and counted as gone, never sent in their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from klaviyo_tui.errors import RunError
from klaviyo_tui.events import Reject, RowState

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from klaviyo_tui.store.history import HistoryStore


@dataclass(frozen=True)
class RetryRows:
    """The rows to send again: (segment, row) -> the normalised email Klaviyo rejected ("" when
    the history did not record it: the row number alone decides)."""

    run_id: int
    emails: dict[tuple[str, int], str]

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
                f"run {run_id} is a run of export {record.export!r}, not {export!r}: its row "
                "numbers are another source's",
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
            raise RunError(
                f"Klaviyo rejected no row of run {run_id} that can be sent again: nothing to retry",
                hint="Rows that failed this machine's checks (invalid, duplicate) need a fix in "
                f"the source, then `klaviyo-tui run {export}`.",
            )
        return cls(run_id, emails)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.emails

    def __len__(self) -> int:
        return len(self.emails)

    def wanted(self, segment: str, rows: np.ndarray, emails: pa.Array) -> np.ndarray:
        """Mask of the valid rows to send again: rejected in RUN, with the same email."""
        import numpy as np  # the engine imports this module: keep its imports light

        out = np.zeros(len(rows), dtype=bool)
        for i, row in enumerate(rows.tolist()):
            rejected = self.emails.get((segment, row))
            out[i] = rejected is not None and rejected in ("", emails[i].as_py())
        return out

    def gone(self, found: set[tuple[str, int]]) -> list[Reject]:
        """The rows to retry that the source no longer holds as they were (`found`: those it
        does), each ending not sent, with the email Klaviyo rejected."""
        return [
            Reject(
                row=row,
                segment=segment,
                column="email",
                value=email,
                reason=f"not sent: in run {self.run_id} this row held {email or 'another email'}, "
                "which Klaviyo rejected; the source has changed since",
                state=RowState.NOT_SENT,
                email=email,
            )
            for (segment, row), email in sorted(self.emails.items())
            if (segment, row) not in found
        ]
