"""Parquet, read a batch of rows at a time (only the columns asked for)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from klaviyo_tui.input.sources.common import check_width, rebatch, select
from klaviyo_tui.input.sources.files import OpenSource
from klaviyo_tui.input.sources.watch import PassTracker


def parquet_chunks(
    src: OpenSource, columns: list[str] | None, chunk_rows: int, tracker: PassTracker | None
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    if tracker is not None:
        tracker.hash_file()  # read by seeking, column by column: hash the file as a whole
    pf = pq.ParquetFile(src.reader())
    names = pf.schema_arrow.names
    check_width(len(names), f"{src.path}: the schema")
    if columns is not None:
        select(pd.DataFrame(columns=names), columns, str(src.path))
    yield from rebatch(pf.iter_batches(batch_size=chunk_rows, columns=columns), chunk_rows)
