"""The hashes of the rows a sync run hands to the packer, until each packed batch takes its share
(run/sync/runner.py journals them with the batch)."""

from __future__ import annotations

import numpy as np

#: (keys, payload hashes, source hashes, known, consent) and the phones, aligned.
_Part = tuple[tuple[np.ndarray, ...], list[str | None]]


class HashQueue:
    """Hashes of rows handed to the packer, in order: each packed batch takes its share."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []

    def put(self, arrays: tuple[np.ndarray, ...], phones: list[str | None]) -> None:
        if len(arrays[0]):
            self.parts.append((arrays, phones))

    def take(self, n: int) -> _Part:
        got: list[_Part] = []
        while n:
            arrays, phones = self.parts[0]
            k = min(n, len(arrays[0]))
            got.append((tuple(a[:k] for a in arrays), phones[:k]))
            if k == len(arrays[0]):
                self.parts.pop(0)
            else:
                self.parts[0] = (tuple(a[k:] for a in arrays), phones[k:])
            n -= k
        columns = zip(*(g[0] for g in got), strict=True)
        return tuple(np.concatenate(c) for c in columns), [p for g in got for p in g[1]]
