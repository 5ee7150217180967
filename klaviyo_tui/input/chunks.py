"""What both passes of the pipeline share: a row's position, the email key, the running stats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.input.fastcheck import email_fast
from klaviyo_tui.input.jsoncols import lower, text
from klaviyo_tui.input.mapping import careful_email

#: A row's position across an export: segment index above ROW_BITS, source row number below.
ROW_BITS = 40


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """Running totals, yielded after every chunk (cumulative across segments)."""

    segment: str
    read: int  # rows read after filters
    valid: int  # includes the rows an incremental run skipped as unchanged (run/sync)
    invalid: int
    duplicates: int
    total: int | None = None  # rows the full pass will read (known after the first pass)
    done: bool = False
    warned: int = 0  # valid rows that go without a field (input/fields.py)


def email_keys(series: pd.Series) -> pa.Array:
    """The de-duplication key: the normalized email, null when missing or invalid."""
    raw = text(series)
    keys = lower(raw)
    fast = email_fast(keys)
    slow = np.flatnonzero(raw.is_valid().to_numpy(zero_copy_only=False) & ~fast)
    keys = pc.if_else(pa.array(fast), keys, pa.scalar(None, pa.string()))
    if len(slow):
        normalized = [careful_email(v)[0] for v in raw.take(pa.array(slow)).to_pylist()]
        mask = np.zeros(len(keys), dtype=bool)
        mask[slow] = True
        keys = pc.replace_with_mask(keys, pa.array(mask), pa.array(normalized, pa.string()))
    return keys


def release() -> None:
    """Hand Arrow's freed pages back to the OS after each chunk. mimalloc otherwise keeps them, and
    they add up across the reader's threads: measured at 1M rows, peak RSS 425 -> 358 MB."""
    pa.default_memory_pool().release_unused()


def positions_of(segment_index: int, rows: pd.Index) -> np.ndarray:
    return (np.uint64(segment_index) << np.uint64(ROW_BITS)) | np.asarray(rows, dtype=np.uint64)
