"""The reading side of a run, in its own worker thread: read, validate, de-duplicate, pack.

All the CPU work of an export (pandas, pyarrow, orjson, hashing) happens here, one step per
validated chunk, so the event loop that talks to Klaviyo never stalls.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

from klaviyo_tui.events import Reject
from klaviyo_tui.input.batching import Batch, BatchPacker
from klaviyo_tui.input.pipeline import PipelineStats, iter_validated
from klaviyo_tui.run.sync.runner import SyncRun
from klaviyo_tui.store.config import Config, Export


@dataclass
class Step:
    """Cumulative counts after one chunk, its rejects, and the batches it filled.

    `warnings` are fields that valid rows go without (state imported_with_warnings, for the
    history and the rejects file, not counted: a row is counted when Klaviyo confirms it)."""

    read: int
    valid: int
    total: int | None
    rejects: list[Reject]
    batches: list[Batch]
    warnings: list[Reject] = field(default_factory=list)
    unchanged: int = 0  # valid rows an incremental run skips (run/sync)


def produce(
    export: Export,
    config: Config,
    only_rows: set[tuple[str, int]] | None,
    sync: SyncRun | None = None,
) -> Generator[Step, None, None]:
    """Runs in a worker thread: read, validate, de-duplicate and pack (all CPU work).

    `sync` (run/sync) skips unchanged rows, refuses rows without consent, checks a mirror's
    removals once the segment is known and journals the hashes of each packed batch."""
    import numpy as np  # only this function needs them; keeps the engine's imports light
    import pyarrow as pa

    segments = {name: config.segments[name] for name in export.segments}
    packer = BatchPacker(export.list_id)
    read = valid = 0
    total: int | None = None
    if sync is not None:  # sync hook: the consent pass
        sync.before_reading([segments[n] for n in dict.fromkeys(export.segments)])
    on_keys = sync.on_keys if sync is not None and sync.mirror else None
    for item in iter_validated(export, segments, on_keys=on_keys):
        if sync is not None:  # sync hook: the first pass is done, the segment is known
            sync.presence_ready()
        if isinstance(item, PipelineStats):
            total = item.total
            continue
        rejects, warnings = item.rejects, item.warnings
        if only_rows is not None:
            rejects = [r for r in rejects if (r.segment, r.row) in only_rows]
            warnings = [r for r in warnings if (r.segment, r.row) in only_rows]
        read += item.read if only_rows is None else len(rejects)
        payloads, rows, emails = item.payload_array, item.row_array, item.email_array
        warned = item.warned_array
        if only_rows is not None:
            wanted = np.array([(item.segment, r) in only_rows for r in rows.tolist()], dtype=bool)
            payloads, rows, emails = payloads.filter(wanted), rows[wanted], emails.filter(wanted)
            warned = warned[wanted]
            read += len(rows)
        unchanged = 0
        if sync is not None:  # sync hook: skip unchanged rows, refuse rows without consent
            keep, refused, unchanged = sync.filter(item.segment, payloads, rows, emails)
            if not keep.all():
                payloads, emails = payloads.filter(pa.array(keep)), emails.filter(pa.array(keep))
                rows, warned = rows[keep], warned[keep]
                sent = set(rows.tolist())
                warnings = [w for w in warnings if w.row in sent]  # a skipped row warns of nothing
            rejects = sorted([*rejects, *refused], key=lambda r: r.row) if refused else rejects
        valid += len(rows) + unchanged
        batches: list[Batch] = packer.add_arrays(payloads, rows, emails, item.segment, warned)
        if sync is not None:  # sync hook: journal each batch's hashes
            sync.packed(batches)
        yield Step(read, valid, total, rejects, batches, warnings, unchanged)
    last = packer.flush()
    if sync is not None and last is not None:
        sync.packed([last])
    yield Step(read=read, valid=valid, total=total, rejects=[], batches=[last] if last else [])
