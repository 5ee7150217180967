"""The phones an incremental export has seen, so its first pass normalises only new ones.

The first pass normalises every row's phone to find the numbers that different customers share
(input/identifiers.py), though an incremental run then sends only the rows that changed: at 1M
rows that is the largest piece of its work. The memo keeps, per export, a keyed hash of each
raw phone value and a keyed hash of its E.164 form (0: unusable), from the export's last run. A
value found there is not normalised again: its hash goes to the shared-identifier spill as is,
and the key tape hands the value as read to the full pass (`input/identifiers.DEFERRED`), which
normalises only the rows it validates. Values not found are normalised as before and spilled by
the same keyed hash of their E.164 form, so the groups are exactly those of E.164 values.

The raw hash's key names what normalising depends on (the export's default region, the versions
of phonenumbers and of this tool, MEMO_FORMAT): when any of them changes nothing is found and the
memo is rebuilt. A hit is wrong only if two raw values share a 64-bit hash (~n²/2⁶⁵). Runs of an
incremental export fill the memo (after the first pass, not in dry runs); only runs that skip
unchanged rows by their source values (run/sync/runner.py `by_source`) use it.
"""

from __future__ import annotations

import numpy as np
import phonenumbers
import pyarrow as pa

from klaviyo_tui import __version__
from klaviyo_tui.input.identifiers import hash_keys
from klaviyo_tui.run.sync.hashing import siphash_key
from klaviyo_tui.run.sync.lookup import SortedHashes
from klaviyo_tui.store.config import Export
from klaviyo_tui.store.history import HistoryStore

#: Bump when phone normalisation changes what a raw value becomes.
MEMO_FORMAT = 1
_NORMALISED_LABEL = "klaviyo-tui sync: phone memo, normalised"


class PhoneMemo:
    """One run's use of an export's memo (input/pipeline.PhoneKeys); the first pass's worker
    threads call it, each on its own chunk."""

    def __init__(
        self, raw_key: str, normalised_key: str, memo: tuple[bytes, bytes], deferring: bool
    ) -> None:
        self._raw_key, self._normalised_key = raw_key, normalised_key
        self._known = SortedHashes.of(np.frombuffer(memo[0], np.uint64))
        self._normalised = np.frombuffer(memo[1], np.uint64)
        self._used = np.zeros(len(self._normalised), bool)  # found this run: kept by `save`
        self.deferring = deferring  # found values are left to the full pass
        self._learned: list[tuple[np.ndarray, np.ndarray]] = []

    @classmethod
    def of(cls, store: HistoryStore, export: Export, *, deferring: bool) -> PhoneMemo | None:
        """An incremental export's memo, if it sends phones; None otherwise."""
        if not export.sync.incremental or "phone_number" not in export.mapping.fields():
            return None
        return cls.open(store, export.name, export.default_region, deferring=deferring)

    @classmethod
    def open(cls, store: HistoryStore, export: str, region: str, *, deferring: bool) -> PhoneMemo:
        context = f"{region}|phonenumbers {phonenumbers.__version__}|{__version__}|{MEMO_FORMAT}"
        raw_key = siphash_key(store.keyed_hash(f"klaviyo-tui sync: phone memo, raw|{context}"))
        normalised_key = siphash_key(store.keyed_hash(_NORMALISED_LABEL))
        memo = store.phone_memo(export) if deferring else (b"", b"")
        return cls(raw_key, normalised_key, memo, deferring)

    def raw_hashes(self, raw: pa.Array) -> np.ndarray:
        """The keyed hash of each raw value (0 where null)."""
        return self._hashes(raw, self._raw_key)

    def normalised_hashes(self, normalised: pa.Array) -> np.ndarray:
        """The keyed hash of each E.164 value (0 where null: unusable or empty)."""
        return self._hashes(normalised, self._normalised_key)

    def lookup(self, raw_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, their normalised hashes) for each raw hash (0 = null: never found)."""
        n = len(self._normalised)
        if n == 0 or len(raw_hashes) == 0:
            return np.zeros(len(raw_hashes), bool), np.zeros(len(raw_hashes), np.uint64)
        idx = np.minimum(self._known.left(raw_hashes), n - 1)
        found = (self._known.values[idx] == raw_hashes) & (raw_hashes != 0)
        self._used[idx[found]] = True
        return found, np.where(found, self._normalised[idx], np.uint64(0))

    def learn(self, raw_hashes: np.ndarray, normalised_hashes: np.ndarray) -> None:
        """Remember the values a chunk normalised (null raw values are left out)."""
        present = raw_hashes != 0
        self._learned.append((raw_hashes[present], normalised_hashes[present]))

    def save(self, store: HistoryStore, export: str) -> None:
        """Keep the values this run found or learned, and only those (left alone when that is
        what is stored)."""
        learned = self._learned or [(np.zeros(0, np.uint64), np.zeros(0, np.uint64))]
        self._learned = []
        new, first = np.unique(np.concatenate([r for r, _ in learned]), return_index=True)
        if not len(new) and len(self._used) and self._used.all():
            return
        raw = np.concatenate([self._known.values[self._used], new])
        normalised = np.concatenate(
            [self._normalised[self._used], np.concatenate([n for _, n in learned])[first]]
        )
        order = np.argsort(raw, kind="stable")  # two sorted runs: merged in linear time
        store.save_phone_memo(export, raw[order].tobytes(), normalised[order].tobytes())

    @staticmethod
    def _hashes(values: pa.Array, key: str) -> np.ndarray:
        out = np.zeros(len(values), np.uint64)
        present = values.is_valid()
        if values.null_count < len(values):
            at = np.flatnonzero(present.to_numpy(zero_copy_only=False))
            hashed = hash_keys(values.filter(present) if values.null_count else values, key)
            out[at] = np.where(hashed == 0, np.uint64(1), hashed)  # 0 means "none"
        return out
