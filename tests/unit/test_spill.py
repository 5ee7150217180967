"""The first pass's (hash, position) pairs: the same hashes as the strings', every pair once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.input.identifiers import PairSpill, hash_keys, spill_batch

_KEYS = st.lists(st.one_of(st.text(max_size=12), st.none()), max_size=200)


@settings(max_examples=100, deadline=None)
@given(_KEYS)
def test_hashes_are_those_of_the_strings(values: list[str | None]) -> None:
    present = [v for v in values if v is not None]
    strings = np.array(present, dtype=object)
    for array in (pa.array(present, pa.string()), pa.array(present, pa.large_string())):
        want = pd.util.hash_array(strings, categorize=False)
        assert np.array_equal(hash_keys(array), want)


@settings(max_examples=100, deadline=None)
@given(_KEYS)
def test_batch_holds_every_present_key_once_by_partition(values: list[str | None]) -> None:
    positions = np.arange(10, 10 + len(values), dtype=np.uint64)
    batch = spill_batch(positions, pa.array(values, pa.string()))
    present = [i for i, v in enumerate(values) if v is not None]
    if not present:
        assert batch is None
        return
    assert batch is not None
    bounds = batch.bounds.tolist()
    assert bounds[0] == 0 and bounds[-1] == len(present) == len(batch.pairs)
    for part in range(64):
        pairs = batch.pairs[bounds[part] : bounds[part + 1]]
        assert np.all(pairs["h"] >> np.uint64(58) == part)
        assert np.all(np.diff(pairs["p"].astype(np.int64)) > 0)  # chunk order kept
    assert sorted(batch.pairs["p"].tolist()) == [10 + i for i in present]


def test_partitions_drop_positions_before_sorting() -> None:
    spill = PairSpill("klaviyo-tui-test-")
    spill.add(np.array([1, 2, 3, 4], np.uint64), pa.array(["a", "b", "a", None]))
    spill.add(np.array([5, 6], np.uint64), pa.array(["b", "a"]))
    parts = list(spill.partitions(drop=np.array([3, 5], np.uint64)))
    for part in parts:  # each sorted by (hash, position)
        assert part.tolist() == sorted(part.tolist())
    kept = np.concatenate(parts)
    by_hash = dict(zip(hash_keys(pa.array(["a", "b"])).tolist(), "ab", strict=True))
    assert sorted((by_hash[h], p) for h, p in kept.tolist()) == [("a", 1), ("a", 6), ("b", 2)]
