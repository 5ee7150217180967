"""The exact bytes sent to Klaviyo, and the rejects and warnings, pinned for a fixed input.

The second pass (validation, JSON assembly, packing) is tuned for speed; this pins its output so a
faster way of building the same bodies cannot send different bytes: sample customers with
escapes, non-ASCII text, empty cells, shared phones, an oversized property and bad rows, through
`validate_chunk` and `BatchPacker` under both field policies. The digests were taken from the
code before the second pass was reworked (main 105a3a6).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from klaviyo_tui.demo.sample_data import customers_table
from klaviyo_tui.input.batching import BatchPacker
from klaviyo_tui.input.mapping import validate_chunk
from klaviyo_tui.store.config import Mapping

_MAPPING = Mapping(
    email="email",
    phone_number="phone",
    first_name="first_name",
    last_name="last_name",
    location={"city": "city", "country": "country", "zip": "zip"},
    properties=("lifetime_value", "orders", "signup_date", "vip", "notes", "mixed"),
)

_PINNED = {
    "drop_field": (
        "e096169474b98120bd672382853cd07ef421b16c33f72cf961bb73a87827e9a4",
        "987349eae333878d16b4941b69a4dc740438d7b154989f6471b0c996fd62509c",
    ),
    "reject_row": (
        "1759fee4409dc1e0e4850406c50c6e652d7047886927472daac5a6ac46e09049",
        "81722ba2ff52f9b673ecea8a0d71c54bef46441ec1b775795e22c7620f8d7435",
    ),
}


def _frame(rows: int) -> pd.DataFrame:
    """Sample customers plus the awkward cells the fast paths must treat exactly as before."""
    df = customers_table(rows, invalid_rate=0.03, shared_phone_rate=0.02, seed=7).to_pandas()
    df.index = pd.RangeIndex(1, rows + 1)
    rng = np.random.default_rng(7)
    df.loc[rng.choice(df.index, 40, replace=False), "first_name"] = 'Zoë "Q" \\ née\n'
    df.loc[rng.choice(df.index, 60, replace=False), "city"] = None
    df.loc[rng.choice(df.index, 30, replace=False), "last_name"] = "   "
    df["notes"] = None
    df.loc[rng.choice(df.index, 3, replace=False), "notes"] = "x" * 120_000
    df.loc[rng.choice(df.index, 50, replace=False), "notes"] = "tab\there, ünïcode"
    df["mixed"] = [str(i) if i % 7 else f"id-{i}" for i in range(rows)]
    return df


def fingerprint_of(body: bytes) -> str:
    """What `Batch.fingerprint` is (the journal keys resumed batches by it)."""
    return hashlib.sha256(body).hexdigest()[:32]


def _digests(policy: str) -> tuple[str, str]:
    df = _frame(3000)
    packer = BatchPacker("LIST1", max_profiles=700, max_bytes=400_000)
    bodies, records = hashlib.sha256(), hashlib.sha256()
    rng = np.random.default_rng(3)
    for start in range(0, len(df), 1200):
        part = df.iloc[start : start + 1200]
        shared = {"phone_number": rng.random(len(part)) < 0.02}
        chunk = validate_chunk(
            part,
            _MAPPING,
            default_region="US",
            segment="seg",
            on_invalid_field=policy,
            shared=shared,
        )
        for batch in packer.add_arrays(
            chunk.payload_array, chunk.row_array, chunk.email_array, "seg", chunk.warned_array
        ):
            bodies.update(batch.body)
            assert batch.fingerprint == fingerprint_of(batch.body)
        for item in [*chunk.rejects, *chunk.warnings]:
            records.update(repr(item).encode())
        records.update(repr(chunk.warned_array.tolist()).encode())
    last = packer.flush()
    assert last is not None
    bodies.update(last.body)
    assert last.fingerprint == fingerprint_of(last.body)
    return bodies.hexdigest(), records.hexdigest()


@pytest.mark.parametrize("policy", ["drop_field", "reject_row"])
def test_bodies_rejects_and_warnings_are_pinned(policy: str) -> None:
    assert _digests(policy) == _PINNED[policy]
