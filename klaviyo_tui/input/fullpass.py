"""The pipeline's second pass (input/pipeline.py): read the mapped columns, report the rows the
first pass found to be duplicates, and validate and serialize the rest.

An incremental run (run/sync) can pass `unchanged`: it sees each chunk's de-duplicated rows
before validation and says which ones it skips (confirmed before from the very same source
values); those are counted valid and never validated, serialized or hashed again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.chunks import ROW_BITS, PipelineStats, email_keys, positions_of, release
from klaviyo_tui.input.fields import source_values
from klaviyo_tui.input.filters import segment_filter
from klaviyo_tui.input.identifiers import DEFERRED
from klaviyo_tui.input.mapping import ValidatedChunk, phones_e164, validate_chunk
from klaviyo_tui.input.sources import SourceWatch, read_chunks
from klaviyo_tui.store.config import Export, Mapping, Segment

if TYPE_CHECKING:
    from klaviyo_tui.input.pipeline import FirstPass

#: Sync hook (run/sync): (the chunk's de-duplicated rows, their normalised emails (null where
#: invalid), their shared-identifier flags, the export's property kinds) -> mask of the rows
#: to skip as unchanged.
Unchanged = Callable[[pd.DataFrame, pa.Array, dict[str, np.ndarray], dict[str, str]], np.ndarray]


def full_pass(
    export: Export,
    segs: list[Segment],
    first: FirstPass,
    chunk_rows: int,
    wanted: dict[str, list[str]],
    watches: dict[str, SourceWatch],
    unchanged: Unchanged | None = None,
) -> Iterator[ValidatedChunk | PipelineStats]:
    mapping = export.mapping
    read = valid = invalid = duplicates = warned = 0
    name = segs[0].name if segs else ""
    for si, seg in enumerate(segs):
        name = seg.name
        compiled = segment_filter(seg)
        for df in read_chunks(seg, wanted[seg.name], chunk_rows, watch=watches[seg.name]):
            df = compiled.apply(df)
            positions = positions_of(si, df.index)
            lost, winner = first.index.lookup(positions)
            dup_rejects = _duplicates(df[lost], winner[lost], segs, mapping, seg.name)
            shared = first.shared.lookup(positions[~lost])
            known = first.keys.take_all(positions) if first.keys is not None else None
            kept = pa.array(~lost)
            phones = known.get("phone_number") if known is not None else None
            emails = known["email"] if known is not None else None
            rest = df[~lost]
            phones = None if phones is None else phones.filter(kept)
            emails = None if emails is None else emails.filter(kept)
            skipped = 0
            if unchanged is not None and emails is not None:  # sync hook: skip unchanged rows
                skip = unchanged(rest, emails, shared, first.kinds)
                skipped = int(skip.sum())
                if skipped:
                    go = ~skip
                    rest, emails = rest[go], emails.filter(pa.array(go))
                    phones = None if phones is None else phones.filter(pa.array(go))
                    shared = {field: mask[go] for field, mask in shared.items()}
            if phones is not None:
                phones = _undeferred(phones, export.default_region)
            chunk = validate_chunk(
                rest,
                mapping,
                default_region=export.default_region,
                segment=seg.name,
                kinds=first.kinds,
                on_invalid_field=export.on_invalid_field,
                shared=shared,
                phones=phones,
                emails=emails,
            )
            if dup_rejects:
                chunk.rejects = sorted([*chunk.rejects, *dup_rejects], key=lambda r: r.row)
            chunk.read = len(df)
            read += len(df)
            valid += chunk.valid + skipped
            warned += int(chunk.warned_array.sum())
            duplicates += len(dup_rejects)
            invalid += len(chunk.rejects) - len(dup_rejects)
            release()
            yield chunk
            yield PipelineStats(
                seg.name, read, valid, invalid, duplicates, first.total, warned=warned
            )
    yield PipelineStats(name, read, valid, invalid, duplicates, first.total, True, warned)


def _undeferred(phones: pa.Array, region: str) -> pa.Array:
    """The tape's phones with those the first pass left DEFERRED (run/sync/phonememo.py)
    normalised now, from the value it read: only rows about to be validated get here."""
    marked = pc.starts_with(phones, DEFERRED).fill_null(False)
    deferred = np.flatnonzero(marked.to_numpy(zero_copy_only=False))
    if not len(deferred):
        return phones
    read = pc.utf8_slice_codeunits(phones.take(pa.array(deferred)), len(DEFERRED))
    done = phones_e164(read, region)[0]
    slot = np.arange(len(phones))
    slot[deferred] = len(phones) + np.arange(len(deferred))
    return pa.concat_arrays([phones, done.cast(phones.type)]).take(pa.array(slot))


def _duplicates(
    df: pd.DataFrame, winners: np.ndarray, segs: list[Segment], mapping: Mapping, segment: str
) -> list[Reject]:
    if len(df) == 0:
        return []
    row_mask = (1 << ROW_BITS) - 1
    column = mapping.email
    values = source_values(df, list(range(len(df))), mapping.columns())
    keys = email_keys(df[column]).to_pylist()
    out = []
    for pos, (row, value, win) in enumerate(
        zip(df.index.tolist(), df[column].tolist(), winners.tolist(), strict=True)
    ):
        out.append(
            Reject(
                row=int(row),
                segment=segment,
                column=column,
                value="" if value is None or value != value else str(value),
                reason=f"duplicate of {segs[win >> ROW_BITS].name} row {win & row_mask}",
                state=RowState.DUPLICATE,
                email=keys[pos] or "",
                source_values=values[pos],
            )
        )
    return out
