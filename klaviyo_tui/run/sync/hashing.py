"""Keyed hashes of a row's identity and of its sent profile, computed a whole column at a time.

Both are keyed with this install's secret (the history's `row-hash.secret`), so the stored state
can't be used to test whether an address was exported without that secret. The hash is
SipHash-2-4, a keyed pseudo-random function, run in C over Arrow columns by pandas'
`hash_array`: about 0.1 µs a value, where an HMAC-SHA256 per row costs 1.7 µs (measured, 1M
emails). The key hash is two SipHash values with independent keys (128 bits: two different
emails share one with probability ~n²/2¹²⁹); the row hash is one (64 bits over the exact
payload bytes the import sends: a change is missed with probability 2⁻⁶⁴).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from klaviyo_tui.store.history import HistoryStore

_LABELS = (b"klaviyo-tui sync: key hash 1", b"klaviyo-tui sync: key hash 2", b"row hash")


def _siphash_key(digest: bytes) -> str:
    """pandas takes the 128-bit SipHash key as 16 characters that encode to 16 bytes in UTF-8:
    printable ASCII, 94 symbols each (~105 bits of the secret's entropy)."""
    return "".join(chr(0x21 + b % 94) for b in digest[:16])


class Hasher:
    """Key and row hashes with one install's secret."""

    def __init__(self, secrets: tuple[bytes, bytes, bytes]) -> None:
        self._k1, self._k2, self._row = (_siphash_key(s) for s in secrets)

    @classmethod
    def of(cls, store: HistoryStore) -> Hasher:
        a, b, c = (store.keyed_hash(label.decode()) for label in _LABELS)
        return cls((a, b, c))

    def keys(self, emails: pa.Array | list[str]) -> np.ndarray:
        """(n, 2) uint64: the key hash of each normalised email (no nulls)."""
        values = _objects(emails)
        out = np.empty((len(values), 2), np.uint64)
        if len(values):
            out[:, 0] = pd.util.hash_array(values, hash_key=self._k1, categorize=False)
            out[:, 1] = pd.util.hash_array(values, hash_key=self._k2, categorize=False)
        return out

    def rows(self, payloads: pa.Array) -> np.ndarray:
        """uint64: the hash of each serialized profile's bytes."""
        values = _objects(payloads)
        if not len(values):
            return np.zeros(0, np.uint64)
        return np.asarray(pd.util.hash_array(values, hash_key=self._row, categorize=False))


def _objects(values: pa.Array | list[str]) -> np.ndarray:
    """Arrow strings as `bytes` objects (a zero-copy cast to binary first): pandas hashes the
    UTF-8 bytes of a `str` anyway, so the hashes are the same, without decoding each value into
    a `str` and encoding it back (measured: 0.40 -> 0.26 s per 1M payloads)."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = values.cast(
                pa.large_binary() if pa.types.is_large_string(values.type) else pa.binary()
            )
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(values, dtype=object)
