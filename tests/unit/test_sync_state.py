"""The sync state's arrays (run/sync/state.py): merging, both stored formats of the hashes,
and source-hash lookups."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from klaviyo_tui.run.sync.lookup import MOST_PER_BUCKET, SortedHashes
from klaviyo_tui.run.sync.sources import source_context
from klaviyo_tui.run.sync.state import SyncState, pair_bytes, pairs_from, sort_keys
from klaviyo_tui.store.config_read import load_config


def _state(pairs: list[tuple[int, int, int]]) -> SyncState:
    """From (first half, second half, hash) triples, the last of equal keys winning."""
    latest = {(a, b): h for a, b, h in pairs}
    keys = sort_keys(np.array(list(latest) or np.zeros((0, 2)), np.uint64).reshape(-1, 2))
    hashes = np.array([latest[(int(a), int(b))] for a, b in keys], np.uint64)
    return SyncState(keys, hashes, hashes + np.uint64(1))


small = st.tuples(st.integers(0, 6), st.integers(0, 3), st.integers(0, 2**40))


@given(st.lists(small, max_size=30), st.lists(small, max_size=30))
def test_merged_is_the_last_of_equal_keys_sorted(
    old: list[tuple[int, int, int]], new: list[tuple[int, int, int]]
) -> None:
    """Small first halves force shared first halves (the slow path) as well as the fast one."""
    base = _state(old)
    keys = np.array([(a, b) for a, b, _ in new], np.uint64).reshape(-1, 2)
    hashes = np.array([h for *_, h in new], np.uint64)
    got = base.merged(keys, hashes, hashes + np.uint64(1))
    want = _state([*old, *new])
    assert got.keys.tolist() == want.keys.tolist()
    assert got.hashes.tolist() == want.hashes.tolist()
    assert got.sources.tolist() == want.sources.tolist()
    assert got.first.tolist() == want.keys[:, 0].tolist()


def test_merged_fast_path_at_scale() -> None:
    rng = np.random.default_rng(7)
    keys = rng.integers(1, 2**63, (5000, 2), dtype=np.uint64)
    state = SyncState.empty().merged(keys, keys[:, 1], keys[:, 0])
    new = np.concatenate([keys[:100], rng.integers(1, 2**63, (100, 2), dtype=np.uint64)])
    merged = state.merged(new, np.zeros(200, np.uint64), np.zeros(200, np.uint64))
    assert len(merged) == 5100
    order = np.lexsort((merged.keys[:, 1], merged.keys[:, 0]))
    assert (order == np.arange(len(merged))).all()
    found, at = merged.find(new)
    assert found.all() and not merged.hashes[at].any()
    found, at = merged.find(keys[100:])
    assert found.all() and (merged.sources[at] == keys[100:, 0]).all()


def test_both_stored_formats_of_the_hashes() -> None:
    keys = sort_keys(np.array([[1, 2], [3, 4]], np.uint64))
    hashes = np.array([10, 20], np.uint64)
    old = SyncState.of(keys.tobytes(), hashes.tobytes())  # 8 bytes an entry: no source hashes
    assert old.hashes.tolist() == [10, 20] and old.sources.tolist() == [0, 0]
    sources = np.array([11, 21], np.uint64)
    new = SyncState.of(keys.tobytes(), pair_bytes(hashes, sources))
    assert new.hashes.tolist() == [10, 20] and new.sources.tolist() == [11, 21]
    assert SyncState.of(new.key_bytes(), new.hash_bytes()).sources.tolist() == [11, 21]
    assert [a.tolist() for a in pairs_from(b"", 0)] == [[], []]


def test_same_source_needs_the_key_and_a_nonzero_equal_source_hash() -> None:
    keys = sort_keys(np.array([[1, 2], [3, 4], [5, 6]], np.uint64))
    state = SyncState(keys, np.zeros(3, np.uint64), np.array([7, 0, 9], np.uint64))
    asked = np.array([[1, 2], [3, 4], [5, 6], [8, 8]], np.uint64)
    same = state.same_source(asked, np.array([7, 0, 1, 7], np.uint64))
    assert same.tolist() == [True, False, False, False]


def test_the_source_context_covers_what_shapes_a_payload(tmp_path: Path) -> None:
    """Each of these changes a payload without changing a source value: each changes the key
    of the source hashes, so no stored one matches."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[exports.e]\nconnection = "c"\nlist_id = "L"\nsegments = ["s"]\n'
        '[exports.e.mapping]\nemail = "email"\nproperties = ["orders"]\n'
    )
    export = load_config(path).exports["e"]
    base = source_context(export, {"orders": "number"})
    variants = [
        source_context(export, {"orders": "string"}),
        source_context(dataclasses.replace(export, on_invalid_field="reject_row"), {}),
        source_context(dataclasses.replace(export, default_region="GB"), {"orders": "number"}),
    ]
    assert len({base, *variants}) == 4
    assert source_context(export, {"orders": "number"}) == base


spread = st.integers(0, 2**64 - 1)


@given(st.lists(spread, max_size=200), st.lists(spread, max_size=50))
def test_bucket_lookup_is_searchsorted(values: list[int], wanted: list[int]) -> None:
    """Evenly spread values (the bucket table) and the ends of the range, present or not."""
    hay = np.unique(np.array([0, 2**64 - 1, *values], np.uint64))
    table = SortedHashes.of(hay)
    asked = np.array([*wanted, *values[:10], 0, 2**64 - 1], np.uint64)
    # the table is built unless a bucket is crowded (hypothesis also draws runs like 1..33)
    crowded = np.bincount((hay >> table.shift).astype(np.intp)).max() > MOST_PER_BUCKET
    assert (table.starts is None) == bool(crowded)
    assert table.left(asked).tolist() == np.searchsorted(hay, asked).tolist()


@given(st.lists(st.integers(0, 50), max_size=200), st.lists(st.integers(0, 60), max_size=50))
def test_bucket_lookup_of_uneven_values(values: list[int], wanted: list[int]) -> None:
    """Small values all fall in bucket 0: searched in it while few, by searchsorted after."""
    hay = np.unique(np.array(values, np.uint64))
    table = SortedHashes.of(hay)
    assert (table.starts is None) == (len(hay) > MOST_PER_BUCKET)
    asked = np.array(wanted, np.uint64)
    assert table.left(asked).tolist() == np.searchsorted(hay, asked).tolist()


def test_find_at_scale_is_the_sorted_search() -> None:
    rng = np.random.default_rng(11)
    keys = rng.integers(0, 2**64 - 1, (20_000, 2), dtype=np.uint64, endpoint=True)
    state = SyncState.empty().merged(keys, keys[:, 1], keys[:, 0])
    assert state.index.starts is not None
    asked = np.concatenate([keys[::3], rng.integers(0, 2**64 - 1, (500, 2), dtype=np.uint64)])
    asked[-1] = [keys[0, 0], keys[0, 1] + np.uint64(1)]  # first half known, second not
    found, at = state.find(asked)
    assert found[: len(keys[::3])].all() and not found[len(keys[::3]) :].any()
    assert (state.keys[at[found]] == asked[found]).all()
    assert at.tolist() == np.minimum(np.searchsorted(state.first, asked[:, 0]), 19_999).tolist()


@given(st.lists(small, max_size=30), st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3))))
def test_without_drops_exactly_the_keys_given(
    old: list[tuple[int, int, int]], gone: list[tuple[int, int]]
) -> None:
    """Unknown keys and repeats are ignored; what stays keeps its hashes, in order."""
    base = _state(old)
    keys = np.array(gone, np.uint64).reshape(-1, 2)
    got = base.without(keys)
    kept = [i for i, k in enumerate(base.keys.tolist()) if tuple(k) not in set(gone)]
    assert got.keys.tolist() == base.keys[kept].tolist()
    assert got.hashes.tolist() == base.hashes[kept].tolist()
    assert got.sources.tolist() == base.sources[kept].tolist()


def test_a_run_after_the_list_changed_says_so_not_that_nothing_was_confirmed() -> None:
    from klaviyo_tui.run.sync.options import why_full

    before: dict[str, object] = {"connection": "c", "base_url": "u", "list_id": "A"}
    now: dict[str, object] = {**before, "list_id": "B"}
    # the state of list A is not this list's: it reads as empty, but the reason is the list
    assert (
        why_full(before, now, empty=True) == "the list changed since the last confirmed run (was A)"
    )
    assert why_full(None, now, empty=True) == "no earlier run of this export has confirmed rows yet"
    assert why_full(before, before, empty=True) == (
        "no earlier run of this export has confirmed rows yet"
    )
    assert why_full(before, before, empty=False) is None
