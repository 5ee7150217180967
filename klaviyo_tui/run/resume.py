"""What `run --resume` takes over from the interrupted start of a run, and what a new run says
when it leaves such a run behind (only the latest run of an export can be resumed)."""

from __future__ import annotations

from klaviyo_tui.events import RowState
from klaviyo_tui.store.history import BatchRecord, HistoryStore
from klaviyo_tui.store.history_records import RunRecord

#: Failures the resumed run finds again as it re-reads the source (and the rows of batches it
#: asks Klaviyo about again); the others belong to batches that are settled and not sent again.
REDONE_ON_RESUME = (
    RowState.INVALID,
    RowState.DUPLICATE,
    RowState.UNCONFIRMED,
    RowState.NOT_IN_LIST,
    RowState.NOT_SENT,  # a retry's rows no longer in the source: found again as it re-reads
)


def reopen(
    store: HistoryStore, run_id: int, *, verify: bool
) -> tuple[dict[int, BatchRecord], dict[tuple[str, int], str]]:
    """Reopen the run and forget what the re-read decides again; its journal of batches and,
    for a read-back (`verify`), the state of each row it recorded. Blocks: call it in a thread."""
    store.reopen_run(run_id)
    store.clear_failures(run_id, REDONE_ON_RESUME)
    # the pipeline's own warnings are written again as the input is re-read; Klaviyo's (a field
    # it refused) belong to finished batches, which are not sent again
    store.clear_local_warnings(run_id)
    journal = dict(store.journal(run_id))
    known = {(f.segment, f.row): f.state.value for f in store.failures(run_id)} if verify else {}
    return journal, known


def left_behind(store: HistoryStore, export: str) -> str | None:
    """What a new run of `export` says when the export's latest run could still be resumed:
    after the new one starts, `--resume` no longer reaches it. Blocks: call it in a thread."""
    previous: RunRecord | None = store.resumable_run(export)
    if previous is None:
        return None
    return (
        f"run {previous.id} ({previous.status}) could still be resumed; this run starts afresh "
        f"instead, and after it `klaviyo-tui run {export} --resume` no longer reaches run "
        f"{previous.id}"
    )


def resumed_retry(run_id: int) -> str:
    """What a resumed run says when it is a retry: its settings (a mirror's removals) do not
    apply, and it sends no row but those."""
    return (
        f"resuming a retry of run {run_id}: only the rows Klaviyo rejected in that run are sent, "
        "and no one is removed from the list"
    )
