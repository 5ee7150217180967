"""Parquet, read a batch of rows at a time (only the columns asked for)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from klaviyo_tui.input.sources.common import check_width, rebatch, select
from klaviyo_tui.input.sources.files import OpenSource


def parquet_chunks(
    src: OpenSource, columns: list[str] | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src.reader())
    names = pf.schema_arrow.names
    check_width(len(names), f"{src.path}: the schema")
    if columns is not None:
        select(pd.DataFrame(columns=names), columns, str(src.path))
    yield from rebatch(pf.iter_batches(batch_size=chunk_rows, columns=columns), chunk_rows)
