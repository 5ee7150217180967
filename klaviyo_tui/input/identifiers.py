"""One identifier, one email: a phone or external_id shared by different customers is sent with
none of them.

Klaviyo matches profiles by email, phone_number and external_id. Two different emails sent with
the same phone in one export (a household, a shared business line, a placeholder such as the
shop's own number) would merge two customers into one profile, or be refused as a merge. So within
one run, **a phone number (after E.164 normalisation) or an external_id that goes with more than
one different email is sent with none of them**: each of those rows is sent without it, with a
warning (state `imported_with_warnings`, reason "phone number is shared with another customer's
email in this export; sent without it"). The email is the matching key, so every customer still
reaches the list.

Why none rather than the first: the export cannot tell whose number it is, and attaching it to
one customer (whichever came first) would send that customer's texts, and phone-based matching,
to the others who use it, a placeholder to an arbitrary customer. And the outcome depends only on
the set of customers, not on row or segment order: reordering a file never moves a number from one
profile to another between runs, which Klaviyo would refuse as a merge the second time.

Who counts: each email's winning row (the email de-duplication's last row wins, so the same email
on several rows is one customer, not "different emails"), whenever its email is valid and the
identifier itself is usable; a row later rejected for another field still makes its identifier
ambiguous. Memory stays bounded: the first pass spills 16-byte (hash, position) pairs per
identifier to partition files, like the email de-duplication, and after it only the positions of
shared values stay in memory. Two different values share a 64-bit hash with probability ~n²/2⁶⁵
(then both are sent without it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from klaviyo_tui.input.scratch import scratch_dir

IDENTIFIERS = ("phone_number", "external_id")
_PARTS = 64
_PAIR = np.dtype([("h", "<u8"), ("p", "<u8")])


def hash_keys(keys: pa.Array, hash_key: str | None = None) -> np.ndarray:
    """64-bit hashes of a string array without nulls, from the values' UTF-8 bytes; SipHash
    with pandas' fixed key, or with `hash_key` (16 ASCII characters) for keyed hashes.

    pandas hashes a `bytes` object as it is and a `str` after encoding it to UTF-8, so the hashes
    are those of the strings; reading the values as `bytes` (a binary view of the same buffers)
    skips making a `str` per value and encoding it back: measured per 1M emails and phones,
    0.45 -> 0.15 s CPU with the partitioning below."""
    binary = pa.large_binary() if pa.types.is_large_string(keys.type) else pa.binary()
    values = keys.cast(binary).to_numpy(zero_copy_only=False)
    if hash_key is None:
        hashes: np.ndarray = pd.util.hash_array(values, categorize=False)
    else:
        hashes = pd.util.hash_array(values, hash_key=hash_key, categorize=False)
    return hashes


@dataclass(frozen=True)
class SpillBatch:
    """One chunk's (hash, position) pairs grouped by partition, worked out in the first pass's
    worker threads so that writing them (`PairSpill.write`) is all the reading thread does."""

    pairs: np.ndarray  # _PAIR records, partition by partition, in chunk order within each
    bounds: np.ndarray  # partition i is pairs[bounds[i] : bounds[i + 1]]


def spill_batch(positions: np.ndarray, keys: pa.Array) -> SpillBatch | None:
    """The non-null keys' pairs, or None when every key is null."""
    if keys.null_count == len(keys):
        return None
    present = keys.is_valid()
    pairs = np.empty(len(keys) - keys.null_count, _PAIR)
    pairs["h"] = hash_keys(keys.filter(present) if keys.null_count else keys)
    pairs["p"] = positions[present.to_numpy(zero_copy_only=False)] if keys.null_count else positions
    return _partitioned(pairs)


def spill_hashes(positions: np.ndarray, hashes: np.ndarray) -> SpillBatch | None:
    """`spill_batch` for keys already hashed: 0 = no key (run/sync/phonememo.py)."""
    present = hashes != 0
    if not present.any():
        return None
    pairs = np.empty(int(present.sum()), _PAIR)
    pairs["h"], pairs["p"] = hashes[present], positions[present]
    return _partitioned(pairs)


def _partitioned(pairs: np.ndarray) -> SpillBatch:
    part = (pairs["h"] >> np.uint64(58)).astype(np.uint8)
    bounds = np.zeros(_PARTS + 1, dtype=np.int64)
    np.cumsum(np.bincount(part, minlength=_PARTS), out=bounds[1:])
    # stable: a partition keeps its pairs in chunk order (numpy radix-sorts 8-bit keys)
    return SpillBatch(pairs[np.argsort(part, kind="stable")], bounds)


class PairSpill:
    """(hash, position) pairs spilled to 64 partition files by the hash's top bits; each
    partition is read back whole, sorted by (hash, position), one at a time."""

    def __init__(self, kind: str) -> None:
        self._tmp = scratch_dir(kind)
        self._files = [Path(self._tmp.name) / f"{i:02d}.bin" for i in range(_PARTS)]
        self._handles = [open(f, "ab") for f in self._files]  # noqa: SIM115

    def add(self, positions: np.ndarray, keys: pa.Array) -> None:
        """Spill the non-null keys with their positions."""
        self.write(spill_batch(positions, keys))

    def write(self, batch: SpillBatch | None) -> None:
        """Append one chunk's pairs (`spill_batch`) to their partition files."""
        if batch is None:
            return
        pairs, bounds = batch.pairs, batch.bounds.tolist()
        for i in range(_PARTS):
            if bounds[i] < bounds[i + 1]:
                self._handles[i].write(pairs[bounds[i] : bounds[i + 1]].tobytes())

    def partitions(self, drop: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Each partition's pairs sorted by (hash, position), less those at the sorted positions
        `drop`; the files go as they are read.

        Dropped before sorting: the pairs are still in position order then, and a search for
        sorted positions is ~4x cheaper (1M phones, 5k dropped: 0.13 -> 0.08 s with the sort)."""
        for handle in self._handles:
            handle.close()
        try:
            for path in self._files:
                pairs = np.fromfile(path, dtype=_PAIR)
                path.unlink()
                if drop is not None and len(drop):
                    pairs = pairs[~sorted_contains(drop, pairs["p"])]
                if len(pairs):
                    yield pairs[np.lexsort((pairs["p"], pairs["h"]))]
        finally:
            self.close()

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._tmp.cleanup()


#: On the key tape: a phone the first pass left to the full pass (input/pipeline.PhoneKeys),
#: as this prefix and the value the first pass read. Normalising never gives it (E.164 or
#: null), and the full pass normalises what the first pass read, not its own reading: a source
#: whose types vary by chunk (JSON Lines, pandas' inference) can read a cell differently there.
DEFERRED = "\x00"


class KeyTape:
    """The first pass's normalised keys (emails; phones in E.164, or DEFERRED), kept on disk in
    reading order for the second pass, which then normalises nothing again but the DEFERRED
    phones of rows it validates (both passes would otherwise run the same email and phone checks
    over every row).

    Both passes read the same rows in the same order (same sources, same filters), whatever their
    chunk sizes; each slice is checked against the positions it was written with, and on any
    mismatch (a source that changed between passes) the tape stops answering and the second pass
    normalises as it would without it.
    """

    def __init__(self, names: tuple[str, ...] = ("k",)) -> None:
        self._tmp = scratch_dir("keys")
        self._path = Path(self._tmp.name) / "keys.arrow"
        self.names = names
        self._schema = pa.schema([("p", pa.uint64()), *((n, pa.string()) for n in names)])
        self._sink: pa.NativeFile | None = pa.OSFile(str(self._path), "wb")
        self._writer: pa.ipc.RecordBatchStreamWriter | None = pa.ipc.new_stream(
            self._sink, self._schema
        )
        self._reader: pa.ipc.RecordBatchStreamReader | None = None
        self._pending: pa.RecordBatch | None = None
        self.broken = False

    def write(self, positions: np.ndarray, *keys: pa.Array) -> None:
        """One chunk's keys, one array per name, aligned with `positions`."""
        assert self._writer is not None, "the tape is written before it is read"
        self._writer.write_batch(
            pa.record_batch([pa.array(positions, pa.uint64()), *keys], self._schema)
        )

    def _open(self) -> pa.ipc.RecordBatchStreamReader:
        if self._reader is None:
            assert self._writer is not None and self._sink is not None
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None
            # read, not mapped: mapped pages would count in RSS until the whole tape is read
            self._reader = pa.ipc.open_stream(pa.OSFile(str(self._path)))
        return self._reader

    def take(self, positions: np.ndarray) -> pa.Array | None:
        """The (first) keys of the next `len(positions)` rows, or None when the tape cannot
        answer."""
        found = self.take_all(positions)
        return None if found is None else found[self.names[0]]

    def take_all(self, positions: np.ndarray) -> dict[str, pa.Array] | None:
        """Every key column of the next `len(positions)` rows, or None (see `take`)."""
        if self.broken:
            return None
        reader = self._open()
        parts: list[pa.RecordBatch] = []
        need = len(positions)
        while need > 0:
            batch = self._pending
            self._pending = None
            if batch is None:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    self.broken = True
                    return None
            if batch.num_rows > need:
                self._pending = batch.slice(need)
                batch = batch.slice(0, need)
            parts.append(batch)
            need -= batch.num_rows
        table = pa.Table.from_batches(parts, self._schema)
        written = table.column("p").to_numpy()
        if not np.array_equal(written, positions.astype(np.uint64)):
            self.broken = True
            return None
        return {name: table.column(name).combine_chunks() for name in self.names}

    def close(self) -> None:
        if self._writer is not None and self._sink is not None:
            self._writer.close()
            self._sink.close()
        self._tmp.cleanup()


def members_of_shared(hashes: np.ndarray) -> np.ndarray:
    """Mask of sorted hashes that belong to a group of two or more."""
    same_next = np.zeros(len(hashes), dtype=bool)
    same_next[:-1] = hashes[1:] == hashes[:-1]
    same_prev = np.zeros(len(hashes), dtype=bool)
    same_prev[1:] = same_next[:-1]
    return same_next | same_prev


def sorted_contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mask of `values` found in `sorted_values`."""
    if len(sorted_values) == 0:
        return np.zeros(len(values), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    found: np.ndarray = sorted_values[idx] == values
    return found


class SharedIndex:
    """Which positions carry an identifier that another customer's email also has."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self._spills = {f: PairSpill(f) for f in fields}
        self.shared: dict[str, np.ndarray] = {f: np.zeros(0, np.uint64) for f in fields}

    def add(self, field: str, positions: np.ndarray, keys: pa.Array) -> None:
        """Spill one chunk: `keys` are the normalized identifiers (null where unusable or where
        the row's email is not valid), aligned with `positions`."""
        self._spills[field].add(positions, keys)

    def write(self, field: str, batch: SpillBatch | None) -> None:
        """Spill one chunk's pairs, worked out by `spill_batch` from such keys."""
        self._spills[field].write(batch)

    def finish(self, email_losers: np.ndarray) -> None:
        """Keep each email's winning row only, then mark every value held by two or more.

        `email_losers`: sorted positions superseded by a later row with the same email.
        """
        for field, spill in self._spills.items():
            found = []
            for pairs in spill.partitions(drop=email_losers):
                found.append(pairs["p"][members_of_shared(pairs["h"])])
            self.shared[field] = np.sort(np.concatenate(found)) if found else self.shared[field]

    def close(self) -> None:
        for spill in self._spills.values():
            spill.close()

    def lookup(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Per field, a mask of the positions whose value is shared."""
        return {f: sorted_contains(self.shared[f], positions) for f in self.fields}


def shared_in_frame(emails: pa.Array, keys: dict[str, pa.Array]) -> dict[str, np.ndarray]:
    """The same rule on one in-memory frame (the mapping screen's preview; a test oracle):
    per field, a mask of the rows whose identifier is shared by different winning emails."""
    frame = pd.DataFrame({"email": emails.to_pandas()})
    winner = frame["email"].notna() & ~frame["email"].duplicated(keep="last")
    out = {}
    for field, values in keys.items():
        column = values.to_pandas()
        counted = column.where(winner)
        counts = counted.map(counted.value_counts())
        out[field] = (counted.notna() & (counts > 1)).to_numpy(dtype=bool)
    return out
