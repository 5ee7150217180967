"""The confirmed rows of an export as sorted numpy arrays, and the vectorised joins on them.

Keys are (n, 2) uint64 arrays (the two halves of the 128-bit key hash), kept sorted by
(first half, second half); each has an 8-byte row hash. Looking rows up is a `searchsorted` on
the first half and a comparison of the second: no Python object per row. Two keys that share a
first half (probability ~n²/2⁶⁵) are told apart by the second; a lookup that lands on the other
one reads as "not found", which only ever causes a row to be sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from klaviyo_tui.store.export_state import HASH_BYTES, KEY_BYTES


def _sorted(keys: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    return keys[order], hashes[order]


def keys_from(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint64).reshape(-1, 2).copy()


def hashes_from(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint64).copy()


@dataclass
class SyncState:
    keys: np.ndarray  # (n, 2) uint64, sorted
    hashes: np.ndarray  # (n,) uint64

    @classmethod
    def empty(cls) -> SyncState:
        return cls(np.zeros((0, 2), np.uint64), np.zeros(0, np.uint64))

    @classmethod
    def of(cls, keys: bytes, hashes: bytes) -> SyncState:
        """From stored bytes (already sorted)."""
        assert len(keys) // KEY_BYTES == len(hashes) // HASH_BYTES, "state arrays disagree"
        return cls(keys_from(keys), hashes_from(hashes))

    def __len__(self) -> int:
        return len(self.hashes)

    def key_bytes(self) -> bytes:
        return np.ascontiguousarray(self.keys).tobytes()

    def hash_bytes(self) -> bytes:
        return np.ascontiguousarray(self.hashes).tobytes()

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, index into this state) for each key."""
        n = len(self)
        if n == 0 or len(keys) == 0:
            return np.zeros(len(keys), bool), np.zeros(len(keys), np.int64)
        idx = np.minimum(np.searchsorted(self.keys[:, 0], keys[:, 0]), n - 1)
        found = (self.keys[idx, 0] == keys[:, 0]) & (self.keys[idx, 1] == keys[:, 1])
        return found, idx

    def classify(self, keys: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(known: the key was confirmed before, unchanged: ... with this very row hash)."""
        found, idx = self.find(keys)
        unchanged = found & (self.hashes[idx] == hashes) if len(self) else found
        return found, unchanged

    def merged(self, keys: np.ndarray, hashes: np.ndarray) -> SyncState:
        """This state with (keys, hashes) added; a key already here takes the new hash."""
        if len(keys) == 0:
            return self
        all_keys = np.concatenate([self.keys, keys])
        all_hashes = np.concatenate([self.hashes, hashes])
        newer = np.concatenate([np.zeros(len(self), np.int8), np.ones(len(keys), np.int8)])
        # the newest of equal keys sorts last; keep the last of each run of equal keys
        order = np.lexsort((np.arange(len(all_keys)), newer, all_keys[:, 1], all_keys[:, 0]))
        k, h = all_keys[order], all_hashes[order]
        last = np.ones(len(k), bool)
        last[:-1] = (k[1:, 0] != k[:-1, 0]) | (k[1:, 1] != k[:-1, 1])
        return SyncState(k[last], h[last])

    def without(self, keys: np.ndarray) -> SyncState:
        if len(keys) == 0 or len(self) == 0:
            return self
        gone = SyncState(*_sorted(keys, np.zeros(len(keys), np.uint64)))
        found, _ = gone.find(self.keys)
        return SyncState(self.keys[~found], self.hashes[~found])

    def absent(self, present_first: np.ndarray) -> np.ndarray:
        """Mask of entries whose key's first half is not in `present_first` (sorted, unique).
        Comparing the first half only errs towards "present": a collision keeps a row."""
        if len(self) == 0:
            return np.zeros(0, bool)
        if len(present_first) == 0:
            return np.ones(len(self), bool)
        idx = np.minimum(np.searchsorted(present_first, self.keys[:, 0]), len(present_first) - 1)
        absent: np.ndarray = present_first[idx] != self.keys[:, 0]
        return absent


def sort_keys(keys: np.ndarray) -> np.ndarray:
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    return keys[order]
