"""A sandbox profile as one orjson blob: packing new and changed profiles (store.py keeps
millions of them, so packing avoids copies where it can)."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import orjson


def pack(data: dict[str, Any]) -> bytes:
    """Serialize a profile. The copy matters: orjson's own result keeps a large over-allocated
    buffer, which makes storing millions of them several times slower and bigger."""
    return memoryview(orjson.dumps(data)).tobytes()


def new_profile(attrs: dict[str, Any], stamp: str) -> dict[str, Any]:
    """A new profile's stored attributes: nulls dropped (bulk import ignores them), timestamps."""
    attrs = dict(without_nulls(attrs))
    attrs["created"] = attrs["updated"] = stamp
    return attrs


def without_nulls(attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes without null values (top level, location and properties); `attrs` itself
    when it has none (the common case: no copy)."""
    if None in attrs.values():
        attrs = {k: v for k, v in attrs.items() if v is not None}
    for nested in ("location", "properties"):
        value = attrs.get(nested)
        if value is not None and None in value.values():
            attrs = {**attrs, nested: {k: v for k, v in value.items() if v is not None}}
    return attrs


def stamps(stamp: str) -> bytes:
    """The end of a new profile's blob: its created and updated times."""
    at = orjson.dumps(stamp)
    return b',"created":' + at + b',"updated":' + at + b"}"


def pack_new(attrs: dict[str, Any], stamps: bytes) -> bytes:
    """`pack(new_profile(attrs, stamp))` without copying the attributes: the serialized
    attributes with the stamps spliced in before the closing brace (one exact-size copy). The
    stamps go last, as `_new_profile` puts them; a bulk row always has an identifier, so the
    object is never empty."""
    body = orjson.dumps(without_nulls(attrs))
    if body == b"{}":
        return b"{" + stamps[1:]
    return b"".join((memoryview(body)[:-1], stamps))


class Blobs:
    """Every profile's blob by position. A bulk job's new profiles share one chunk (the
    serialized rows back to back, each without its closing brace, plus the job's stamps as a
    common suffix): no bytes object per row, which cost ~1 µs a row to build and keep. A
    profile packed on its own is a chunk of one with no suffix; replacing a profile's blob
    leaves its old bytes in their chunk (a few hundred bytes, freed with the store)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._suffixes: list[bytes] = []
        self._chunk = array("q")  # position -> chunk
        self._start = array("q")  # position -> offset of its first byte in the chunk
        self._end = array("q")  # position -> offset after its last byte (before the suffix)

    def __len__(self) -> int:
        return len(self._chunk)

    def __getitem__(self, pos: int) -> bytes:
        chunk = self._chunk[pos]
        return self._chunks[chunk][self._start[pos] : self._end[pos]] + self._suffixes[chunk]

    def __iter__(self) -> Iterator[bytes]:
        return map(self.__getitem__, range(len(self)))

    def _add(self, blob: bytes) -> int:
        self._chunks.append(blob)
        self._suffixes.append(b"")
        return len(self._chunks) - 1

    def append(self, blob: bytes) -> None:
        self._chunk.append(self._add(blob))
        self._start.append(0)
        self._end.append(len(blob))

    def __setitem__(self, pos: int, blob: bytes) -> None:
        self._chunk[pos] = self._add(blob)
        self._start[pos] = 0
        self._end[pos] = len(blob)

    def extend_chunk(
        self, data: bytes, starts: array[int], ends: array[int], suffix: bytes
    ) -> None:
        """Add one profile per (start, end) slice of `data`, each followed by `suffix`."""
        assert len(starts) == len(ends)
        self._chunks.append(data)
        self._suffixes.append(suffix)
        self._chunk.extend(array("q", [len(self._chunks) - 1]) * len(starts))
        self._start.extend(starts)
        self._end.extend(ends)
