"""A sandbox profile as one orjson blob: packing new and changed profiles (store.py keeps
millions of them, so packing avoids copies where it can)."""

from __future__ import annotations

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
