"""Checked filter nodes -> a boolean row mask, with vectorised pyarrow compute kernels.

Types follow the literal, because delimited text arrives as strings (leading zeros kept):
- a number literal compares the column as numbers (64-bit floats: ids longer than 15 digits are
  better compared as text); cells that are not numbers (nor 'inf'/'nan') are NULL;
- a 'text' literal compares as text, except on a date/time column, where an ISO text is a date;
- DATE '…' compares by day, TIMESTAMP '…' to the microsecond; text cells are read as ISO dates
  (zone offsets are converted to UTC) and cells that are not dates are NULL.
Empty cells are NULL. Logic is SQL's three-valued logic: a comparison with NULL is unknown, NOT
unknown is unknown, and only rows whose condition is true are kept.
Each column's views (text, numbers, dates) are built at most once per chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.input.filters.nodes import (
    And,
    Between,
    Compare,
    Const,
    FilterError,
    InList,
    IsBool,
    IsNull,
    Like,
    Node,
    Not,
    Or,
    Truth,
    Value,
    clip,
    quoted,
    to_timestamp,
)

_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_US = pa.timestamp("us")
_OPS: dict[str, Callable[..., Any]] = {
    "=": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_NULL_BOOL = pa.scalar(None, pa.bool_())


def mask(node: Node, df: pd.DataFrame) -> np.ndarray:
    """True for the rows of `df` where the condition is true (unknown counts as false)."""
    result = _Chunk(df).condition(node)
    if isinstance(result, bool):
        return np.full(len(df), result)
    return np.asarray(pc.fill_null(result, False).to_numpy(zero_copy_only=False), dtype=bool)


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_temporal(t: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(t) or pa.types.is_date(t))


def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _cell_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _Chunk:
    """One chunk's columns as Arrow arrays, with each derived view computed once."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.memo: dict[tuple[str, str], pa.Array] = {}

    def view(self, kind: str, column: str, build: Callable[[str], pa.Array]) -> pa.Array:
        key = (kind, column)
        if key not in self.memo:
            self.memo[key] = build(column)
        return self.memo[key]

    # ---- views of a column ---------------------------------------------------------------------

    def raw(self, column: str) -> pa.Array:
        return self.view("raw", column, self._raw)

    def _raw(self, column: str) -> pa.Array:
        series = self.df[column]
        try:
            arr = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arr = pa.array([_cell_text(v) for v in series], pa.string())  # mixed objects
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if pa.types.is_null(arr.type):
            arr = pa.nulls(len(arr), pa.string())
        if _is_text(arr.type):  # an empty cell is a missing value
            empty = pc.equal(pc.binary_length(arr), 0)
            if pc.any(empty).as_py():  # checked first: the copy costs more than the check
                arr = pc.if_else(empty, pa.scalar(None, arr.type), arr)
        elif pa.types.is_floating(arr.type):
            arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
        return arr

    def text(self, column: str) -> pa.Array:
        return self.view("text", column, self._text)

    def _text(self, column: str) -> pa.Array:
        arr = self.raw(column)
        if _is_text(arr.type):
            return arr
        try:
            return pc.cast(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.array([_cell_text(v) for v in arr.to_pylist()], pa.string())

    def numbers(self, column: str) -> pa.Array:
        return self.view("numbers", column, self._numbers)

    def _numbers(self, column: str) -> pa.Array:
        arr = self.raw(column)
        if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            return arr
        if pa.types.is_decimal(arr.type) or pa.types.is_boolean(arr.type):
            return pc.cast(arr, pa.float64())
        if _is_temporal(arr.type):
            raise FilterError(
                f"Column {quoted(column)} holds dates, not numbers; compare it with a date, "
                f"e.g. {clip(column)} >= DATE '2024-01-31'"
            )
        arr = self.text(column)
        try:
            numbers = _parse_numbers(arr)
        except pa.ArrowInvalid:  # e.g. non-ASCII digits: every cell goes through the pattern
            numbers = _pattern_numbers(arr)
        # 'inf', 'nan' and overflowing exponents are not numbers either
        return pc.if_else(pc.is_finite(numbers), numbers, pa.scalar(None, pa.float64()))

    def dates(self, column: str) -> pa.Array:
        """The column as naive UTC timestamps (microseconds)."""
        return self.view("dates", column, self._dates)

    def _dates(self, column: str) -> pa.Array:
        arr = self.raw(column)
        if pa.types.is_timestamp(arr.type):
            return pc.cast(arr, pa.timestamp(arr.type.unit)).cast(_US, safe=False)
        if pa.types.is_date(arr.type):
            return pc.cast(arr, _US)
        if _is_number(arr.type) or pa.types.is_boolean(arr.type):
            raise FilterError(
                f"Column {quoted(column)} holds numbers, not dates; compare it with a number"
            )
        arr = self.text(column)
        try:
            return pc.cast(arr, _US)
        except pa.ArrowInvalid:  # zone offsets or cells that are not dates
            parsed = pd.to_datetime(
                pd.Series(arr.to_pandas()), format="ISO8601", errors="coerce", utc=True
            )
            return pa.array(parsed.dt.tz_localize(None), type=_US, from_pandas=True)

    def days(self, column: str) -> pa.Array:
        return self.view("days", column, lambda c: pc.cast(self.dates(c), pa.date32()))

    def bools(self, column: str) -> pa.Array:
        return self.view("bools", column, self._bools)

    def _bools(self, column: str) -> pa.Array:
        arr = self.raw(column)
        if pa.types.is_boolean(arr.type):
            return arr
        if _is_number(arr.type):
            return pc.not_equal(arr, 0)
        if _is_temporal(arr.type):
            raise FilterError(f"Column {quoted(column)} holds dates, not true/false")
        words = pc.utf8_lower(pc.utf8_trim_whitespace(self.text(column)))
        true, false = pc.is_in(words, pa.array(_TRUE)), pc.is_in(words, pa.array(_FALSE))
        other = pc.and_(pc.is_valid(words), pc.invert(pc.or_(true, false)))
        if pc.any(other).as_py():
            bad = str(self.text(column).filter(other)[0].as_py())
            raise FilterError(
                f"Column {quoted(column)} is not a condition: it holds {quoted(bad)}, "
                f"not true/false; compare it instead, e.g. {clip(column)} = {quoted(bad)}"
            )
        return pc.if_else(pc.is_valid(words), true, _NULL_BOOL)

    # ---- conditions ----------------------------------------------------------------------------

    def condition(self, node: Node) -> pa.Array | bool:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, And | Or):
            left, right = self.condition(node.left), self.condition(node.right)
            kleene = pc.and_kleene if isinstance(node, And) else pc.or_kleene
            return kleene(*(_array(x, len(self.df)) for x in (left, right)))
        if isinstance(node, Not):
            inner = self.condition(node.operand)
            return (not inner) if isinstance(inner, bool) else pc.invert(inner)
        if isinstance(node, Truth):
            return self.bools(node.column)
        if isinstance(node, IsNull):
            return pc.is_null(self.raw(node.column))
        if isinstance(node, IsBool):
            return pc.fill_null(pc.equal(self.bools(node.column), node.value), False)
        if isinstance(node, Like):
            return pc.match_like(self.text(node.column), node.pattern, ignore_case=node.ignore_case)
        if isinstance(node, Compare):
            return self.compare(node.column, node.op, node.value)
        if isinstance(node, Between):
            low = self.compare(node.column, ">=", node.low)
            return pc.and_kleene(low, self.compare(node.column, "<=", node.high))
        return self.in_list(node)

    def operands(self, column: str, value: Value) -> tuple[pa.Array, Any]:
        """The column's view and the literal as a matching scalar."""
        if value.kind == "text" and _is_temporal(self.raw(column).type):
            value = self.text_as_date(column, str(value.value))
        kind = value.kind
        if kind == "number":
            return self.numbers(column), value.value
        if kind == "bool":
            return self.bools(column), value.value
        if kind == "date":
            return self.days(column), pa.scalar(value.value, pa.date32())
        if kind == "timestamp":
            return self.dates(column), pa.scalar(value.value, _US)
        return self.text(column), value.value

    def text_as_date(self, column: str, text: str) -> Value:
        """An ISO text compared with a date column: a day, or a timestamp if it has a time."""
        try:
            return Value("date", dt.date.fromisoformat(text.strip()))
        except ValueError:
            stamp = to_timestamp(text)
            if stamp is None:
                raise FilterError(
                    f"Column {quoted(column)} holds dates and {quoted(text)} is not one; "
                    f"write {clip(column)} >= DATE '2024-01-31'"
                ) from None
            return Value("timestamp", stamp)

    def compare(self, column: str, op: str, value: Value) -> pa.Array:
        arr, scalar = self.operands(column, value)
        return _OPS[op](arr, scalar)

    def in_list(self, node: InList) -> pa.Array:
        column = node.column
        numbers = [v.value for v in node.values if v.kind == "number"]
        texts = [v.value for v in node.values if v.kind == "text"]
        if _is_temporal(self.raw(column).type):
            texts = []  # on a date column an ISO text is a date: compared one by one below
        parts: list[pa.Array] = []
        if numbers:
            arr = pc.cast(self.numbers(column), pa.float64())
            hit = pc.is_in(arr, value_set=pa.array(numbers, pa.float64()))
            parts.append(pc.if_else(pc.is_valid(arr), hit, _NULL_BOOL))
        if texts:
            arr = self.text(column)
            hit = pc.is_in(arr, value_set=pa.array(texts, arr.type))
            parts.append(pc.if_else(pc.is_valid(arr), hit, _NULL_BOOL))
        for value in node.values:
            if value.kind not in ("number", "text") or (value.kind == "text" and not texts):
                parts.append(self.compare(column, "=", value))
        result = parts[0]
        for part in parts[1:]:
            result = pc.or_kleene(result, part)
        return result


def _parse_numbers(arr: pa.Array) -> pa.Array:
    """Text to float64, NULL where a cell is not a number. Most cells of a number column are
    plain digits, so only the others go through the (slower) pattern."""
    odd = pc.fill_null(pc.invert(pc.utf8_is_decimal(arr)), False)
    n_odd = pc.sum(odd).as_py() or 0
    if n_odd == 0:
        return pc.cast(arr, pa.float64())
    if n_odd * 4 < len(arr):
        digits = pc.cast(pc.if_else(odd, pa.scalar(None, arr.type), arr), pa.float64())
        return pc.replace_with_mask(digits, odd, _pattern_numbers(arr.filter(odd)))
    try:
        return pc.cast(arr, pa.float64())
    except pa.ArrowInvalid:
        return _pattern_numbers(arr)


def _pattern_numbers(arr: pa.Array) -> pa.Array:
    ok = pc.match_substring_regex(arr, _NUMBER)
    clean = pc.if_else(ok, pc.utf8_trim_whitespace(arr), pa.scalar(None, arr.type))
    return pc.cast(clean, pa.float64())


def _array(value: pa.Array | bool, n: int) -> pa.Array:
    return pa.array(np.full(n, value)) if isinstance(value, bool) else value
