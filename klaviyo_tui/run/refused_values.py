"""The source values of the rows Klaviyo refused, for the rejects file.

A sent row's values are not kept while it travels (at 1M rows that would be every row's), so a row
Klaviyo refused reached the history with its email and Klaviyo's reason only. At the end of a run
that had any, the source is read once more (the mapped columns) and each such row's values are
recorded with its failure: the rejects file can then be fixed and imported again like the rows
this machine refused. A row is filled only while it still holds the email Klaviyo refused (the
source may have changed since the run read it); a source that cannot be read now leaves the
values empty, and the run's outcome as it was.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC

from klaviyo_tui.errors import AppError
from klaviyo_tui.input.chunks import email_keys
from klaviyo_tui.input.fields import source_values
from klaviyo_tui.input.sources import read_chunks
from klaviyo_tui.store.config import Export, Segment
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.history_records import values_json

CHUNK_ROWS = 50_000


def fill(
    store: HistoryStore, run_id: int, export: Export, segments: MappingABC[str, Segment]
) -> int:
    """Record the values of the run's refused rows that have none; returns how many were filled.
    Blocks (reads the source, writes SQLite): call it in a thread."""
    wanted = store.refused_without_values(run_id)  # (segment, row) -> (failure id, email)
    if not wanted:
        return 0
    columns = export.mapping.columns()
    found: list[tuple[int, str]] = []
    try:
        for name in dict.fromkeys(export.segments):
            rows = {row for segment, row in wanted if segment == name}
            if rows and name in segments:
                found += _values_of(segments[name], rows, columns, wanted, export.mapping.email)
    except (AppError, OSError, ValueError):  # gone, changed shape, unreadable: values stay empty
        return 0
    store.set_failure_values(found)
    return len(found)


def _values_of(
    segment: Segment,
    rows: set[int],
    columns: list[str],
    wanted: dict[tuple[str, int], tuple[int, str]],
    email_column: str,
) -> list[tuple[int, str]]:
    """(failure id, values as stored) of `rows` of one segment, where the email still matches."""
    out: list[tuple[int, str]] = []
    for df in read_chunks(segment, columns, CHUNK_ROWS):
        hit = df[df.index.isin(rows)]
        if hit.empty:
            continue
        emails = email_keys(hit[email_column]).to_pylist()
        values = source_values(hit, list(range(len(hit))), columns)
        for pos, row in enumerate(hit.index.tolist()):
            failure, refused_email = wanted[(segment.name, int(row))]
            stored = values_json(values[pos])
            if stored is not None and refused_email in ("", emails[pos]):
                out.append((failure, stored))
    return out
