"""Segment filters: a pandas `DataFrame.query` expression applied chunk by chunk.

Sources read text columns as strings (leading zeros survive), so a numeric comparison such as
`orders > 5` would compare text with a number. When that fails, the filter is retried with the
columns it names converted to numbers where every non-empty value is one. Errors become
`FilterError` naming the problem and the columns available.
"""

from __future__ import annotations

import io
import tokenize

import pandas as pd

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.input.sources import columns_of, read_chunks
from klaviyo_tui.store.config import Segment


class FilterError(AppError):
    """A segment filter that cannot be evaluated; the message says why and lists the columns."""

    title = "The filter is not valid"
    default_hint = "Fix the filter, e.g. country = 'US' AND orders > 3."
    exit_code = ExitCode.INPUT


def filter_columns(expr: str | None, available: list[str]) -> list[str]:
    """The columns a filter expression refers to (plain names and `backtick quoted` ones)."""
    if not expr:
        return []
    names: list[str] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expr).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string in available:
            names.append(tok.string)
    for i, part in enumerate(expr.split("`")):
        if i % 2 == 1 and part in available:
            names.append(part)
    return list(dict.fromkeys(names))


def _numeric_view(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = df.copy(deep=False)
    for column in columns:
        series = df[column]
        if not (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object):
            continue
        present = series.notna() & (series.astype("str").str.strip() != "")
        numbers = pd.to_numeric(series.where(present), errors="coerce")
        if numbers[present].notna().all():
            out[column] = numbers
    return out


def apply_filter(df: pd.DataFrame, expr: str | None) -> pd.DataFrame:
    """Rows of `df` matching `expr` (the index, i.e. the source row numbers, is kept)."""
    if not expr or not expr.strip():
        return df
    columns = [str(c) for c in df.columns]
    try:
        try:
            mask = df.eval(expr)
        except TypeError:
            mask = _numeric_view(df, filter_columns(expr, columns)).eval(expr)
    except Exception as exc:  # pandas raises many types for a bad expression
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FilterError(
            f"Filter {expr!r} cannot be evaluated: {message}. "
            f"Columns available: {', '.join(columns)}."
        ) from None
    if not isinstance(mask, pd.Series) or not pd.api.types.is_bool_dtype(mask.dtype):
        raise FilterError(
            f"Filter {expr!r} is not a condition (it must give true/false for each row), "
            f"e.g. country == 'US'. Columns available: {', '.join(columns)}."
        )
    return df[mask]


def count_matching(segment: Segment) -> int:
    """How many rows of the segment pass its filter (reads only the filter's columns)."""
    available = columns_of(segment)
    columns = filter_columns(segment.filter, available) or available[:1]
    return sum(len(apply_filter(df, segment.filter)) for df in read_chunks(segment, columns))
