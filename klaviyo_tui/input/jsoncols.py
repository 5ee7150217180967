"""Column-at-a-time text and JSON helpers on pyarrow arrays (no Python object per row).

A profile's JSON is assembled by concatenating, in one join per chunk, constant pieces such as
`,"city":"` with the column values (`profiles`). Two pyarrow details shape the code:
`binary_join_element_wise` is ~20x slower with scalar arguments than with arrays (so constants
are repeated into arrays), and its `null_handling="skip"` drops all-null rows in pyarrow 26 (so
a missing value is replaced by "" and its key is left out by a per-row choice of the pieces).
Byte-level checks on a column's data buffer (numpy) decide in one sweep whether a column needs
JSON escaping or Unicode-aware lower-casing, which is almost never.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_ESCAPE = np.zeros(256, dtype=bool)
_ESCAPE[:0x20] = True
_ESCAPE[[ord('"'), ord("\\")]] = True


def data_bytes(arr: pa.Array) -> np.ndarray:
    """The bytes of a pa.string array's values (a view, no copy)."""
    buffers = arr.buffers()
    if len(arr) == 0 or buffers[2] is None:
        return np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(buffers[1], dtype=np.int32)
    start, end = offsets[arr.offset], offsets[arr.offset + len(arr)]
    return np.frombuffer(buffers[2], dtype=np.uint8)[start:end]


def only_bytes(arr: pa.Array, allowed: bytes) -> bool:
    """True when every byte of every value is in `allowed` (a cheap pre-check before a regex)."""
    table = np.zeros(256, dtype=bool)
    table[list(allowed)] = True
    return bool(table[data_bytes(arr)].all())


def drop_bytes(arr: pa.Array, chars: bytes) -> pa.Array:
    """A string array with every byte in `chars` (ASCII only) removed: one numpy sweep, no regex."""
    table = np.zeros(256, dtype=bool)
    table[list(chars)] = True
    data = data_bytes(arr)
    drop = table[data]
    if not drop.any():
        return arr
    if arr.offset:
        arr = pa.concat_arrays([arr])  # rebase, so every buffer starts at the first value
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[: len(arr) + 1]
    starts = offsets - offsets[0]
    new_offsets = (starts - np.searchsorted(np.flatnonzero(drop), starts)).astype(np.int32)
    return pa.StringArray.from_buffers(
        len(arr),
        pa.py_buffer(new_offsets),
        pa.py_buffer(data[~drop]),
        arr.buffers()[0],
        arr.null_count,
    )


def lower(arr: pa.Array) -> pa.Array:
    """Lower-case; the ASCII kernel (20x faster) when the column is pure ASCII."""
    data = data_bytes(arr)
    if len(data) == 0 or data.max() < 0x80:
        return pc.ascii_lower(arr)
    return pc.utf8_lower(arr)


def text(series: pd.Series) -> pa.Array:
    """A column as trimmed pa.string values, null where empty (whatever the source dtype)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        arr = pc.cast(pa.array(series, from_pandas=True), pa.string())
    elif pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        finite = np.isfinite(values)
        if finite.any() and np.all(values[finite] == np.round(values[finite])):
            ints = pa.array(np.where(finite, values, 0).astype(np.int64), mask=~finite)
            arr = pc.cast(ints, pa.string())
        else:
            arr = pc.cast(pa.array(values, mask=~finite), pa.string())
    elif pd.api.types.is_datetime64_any_dtype(series.dtype):
        arr = pa.array([None if pd.isna(v) else v.isoformat() for v in series], pa.string())
    elif series.dtype == object:
        arr = pa.array(
            [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in series],
            pa.string(),
        )
    else:
        arr = pa.array(series, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    data = data_bytes(arr)
    if len(data) and data.max() < 0x80:
        arr = pc.ascii_trim_whitespace(arr)
    else:
        arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def escaped(arr: pa.Array) -> pa.Array:
    """Values escaped for use inside a JSON string literal (orjson only for values that need it)."""
    if not _ESCAPE[data_bytes(arr)].any():
        return arr
    bad = pc.match_substring_regex(arr, r'["\\\x00-\x1f]').fill_null(False)
    fixed = [orjson.dumps(v).decode()[1:-1] for v in arr.filter(bad).to_pylist()]
    return pc.replace_with_mask(arr, bad, pa.array(fixed, pa.string()))


def cat(parts: list[pa.Array | str], n: int) -> pa.Array:
    """Row-wise concatenation; str parts are constants. Null if any part is null."""
    arrays = [pa.repeat(p, n) if isinstance(p, str) else p for p in parts]
    if len(arrays) == 1:
        return arrays[0]
    return pc.binary_join_element_wise(*arrays, "")


@dataclass(frozen=True)
class Field:
    """One JSON member to be: `"key":value` where `values` is present, nothing where null.
    Quoted values are escaped already."""

    key: str
    values: pa.Array
    quoted: bool

    def member(self, *, first: bool = False) -> pa.Array:
        """`,"key":value` per row ("" where null): the form `shrink` works on."""
        head = ("" if first else ",") + orjson.dumps(self.key).decode() + ":"
        n = len(self.values)
        parts = [head + '"', self.values, '"'] if self.quoted else [head, self.values]
        return pc.fill_null(cat(parts, n), "")


def json_field(key: str, values: pa.Array, *, quoted: bool) -> Field:
    return Field(key, escaped(values) if quoted else values, quoted)


class _Parts:
    """The pieces of every row's JSON, joined once at the end (one copy of the data)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[pa.Array] = []
        self._repeated: dict[str, pa.Array] = {}

    def const(self, text: str) -> pa.Array:
        arr = self._repeated.get(text)
        if arr is None:
            arr = self._repeated[text] = pa.repeat(text, self.n)
        return arr

    def text(self, text: str, where: pa.Array | None) -> None:
        """`text` on every row, or only where `where` (a boolean array) is true."""
        if where is None:
            self.parts.append(self.const(text))
        else:
            self.parts.append(pc.if_else(where, self.const(text), self.const("")))

    def fields(self, fields: list[Field], *, lead: bool) -> pa.Array | None:
        """Comma-separated members (and a leading comma when `lead`). Returns where any member
        is present: a boolean array, or None when one is on every row."""
        before: bool | pa.Array = False  # some earlier member is present: no, yes, or per row
        for f in fields:
            name = orjson.dumps(f.key).decode() + ":" + ('"' if f.quoted else "")
            present = f.values.is_valid() if f.values.null_count else None
            if lead or before is True:
                head = self.const("," + name)
            elif before is False:
                head = self.const(name)
            else:
                head = pc.if_else(before, self.const("," + name), self.const(name))
            self.parts.append(head if present is None else pc.if_else(present, head, ""))
            self.parts.append(f.values)
            if f.quoted:
                self.text('"', present)
            if present is None or before is True:
                before = True
            elif before is False:
                before = present
            else:
                before = pc.or_(before, present)
        if before is True:
            return None
        if before is False:  # no fields at all
            return pa.array(np.zeros(self.n, dtype=bool))
        return before

    def joined(self) -> pa.Array:
        return pc.binary_join_element_wise(
            *self.parts, "", null_handling="replace", null_replacement=""
        )


def profiles(n: int, top: list[Field], objects: list[tuple[str, list[Field]]]) -> pa.Array:
    """Each row's profile resource JSON: `{"type":"profile","attributes":{...}}` with the `top`
    fields (the first is the email, present on every row that is kept) and one nested object per
    (key, fields) with at least one member present. One join for the whole chunk."""
    parts = _Parts(n)
    parts.text('{"type":"profile","attributes":{', None)
    parts.fields(top, lead=False)
    for key, fields in objects:
        if not fields:
            continue
        opener = len(parts.parts)
        parts.text("", None)  # placeholder for `,"key":{`
        anything = parts.fields(fields, lead=False)
        head = "," + orjson.dumps(key).decode() + ":{"
        if anything is None:
            parts.parts[opener] = parts.const(head)
            parts.text("}", None)
        else:
            parts.parts[opener] = pc.if_else(anything, parts.const(head), parts.const(""))
            parts.parts.append(pc.if_else(anything, parts.const("}"), parts.const("")))
    parts.text("}}", None)
    return parts.joined()
