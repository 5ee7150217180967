"""Segment filters in SQL WHERE syntax: data, never code.

A filter comes from config.toml, which people share and copy, so it must not be able to run
anything. Filters used to go to pandas `DataFrame.eval`, where `@pd.io.common.os.system(...)` runs
a shell command. Now the text is parsed with sqlglot (a maintained, pure-Python SQL parser that
only builds a syntax tree), checked against a whitelist of node types (parse.py) and evaluated
by our own code with pyarrow compute kernels (evaluate.py). Nothing in the path can call a
function, import a module, read a file or reach the network: the evaluator only knows
comparisons, IN, LIKE/ILIKE, BETWEEN, IS [NOT] NULL, AND/OR/NOT and literals.

Why not DuckDB: it is a native engine of tens of MB whose SQL includes file, network and
extension functions (to be locked down, and kept locked down across upgrades), it would take
every chunk into its own engine, and its casts (a non-number raises) differ from ours (a
non-number simply does not match), so the tree would have to be rewritten anyway. sqlglot is pure
Python with no dependencies and never executes anything (its optional Python executor is never
imported); the work per chunk is pyarrow's compute kernels, so speed is the same (1M rows, two
conditions on text columns: ~50 ms).

The language: `=` (also `==`), `!=`, `<>`, `<`, `<=`, `>`, `>=`, `IN (...)`, `NOT IN`, `LIKE`
(case-sensitive), `ILIKE`, `IS [NOT] NULL`, `IS [NOT] TRUE/FALSE`, `BETWEEN a AND b`, AND/OR/NOT,
parentheses, 'text', numbers, TRUE/FALSE, DATE '2024-01-31', TIMESTAMP '2024-01-31 10:00'.
Names: bare (case-insensitive when unambiguous), "double quoted" or `backticked`. For configs
written for pandas, a "double quoted" word that is not a column is taken as text, so
`country == "US" and orders > 3` still works; a bare column is a condition when its cells are
true/false/yes/no/1/0 (`NOT vip`). How values are typed: see evaluate.py.

Usage: `compile_filter(expr, columns)` once per segment, then `.apply(df)` per chunk.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from klaviyo_tui.input.filters.evaluate import mask as _mask
from klaviyo_tui.input.filters.nodes import FilterError, Node, columns_text, node_columns, quoted
from klaviyo_tui.input.sources import columns_of, preview, read_chunks
from klaviyo_tui.store.config import Segment

__all__ = [
    "CompiledFilter",
    "FilterError",
    "apply_filter",
    "compile_filter",
    "count_matching",
    "filter_columns",
    "preview_matching",
    "segment_filter",
]


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A parsed, checked filter: apply it to any number of chunks that have its columns."""

    expr: str | None
    columns: tuple[str, ...]
    node: Node | None
    label: str = "The filter"  # who the filter belongs to, for messages
    # The source's columns, for messages: a chunk holds only the columns the filter reads.
    available: tuple[str, ...] = ()

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """One bool per row of `df`: True where the condition holds."""
        if self.node is None:
            return np.ones(len(df), dtype=bool)
        try:
            return _mask(self.node, df)
        except FilterError as exc:
            raise FilterError(f"{self.label}: {exc.message}. {self._columns_text(df)}") from None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise FilterError(
                f"{self.label} cannot compare the values of "
                f"{', '.join(self.columns)} (their type does not support it). "
                f"{self._columns_text(df)}"
            ) from None

    def _columns_text(self, df: pd.DataFrame) -> str:
        return columns_text(self.available or [str(c) for c in df.columns])

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """The matching rows of `df`; the index (source row numbers) is kept."""
        return df if self.node is None else df[self.mask(df)]


def compile_filter(expr: str | None, columns: Sequence[str]) -> CompiledFilter:
    """Parse and check `expr` against the source's `columns` (FilterError if it is not valid)."""
    return _compile(expr, tuple(str(c) for c in columns))


@functools.lru_cache(maxsize=64)
def _compile(expr: str | None, columns: tuple[str, ...]) -> CompiledFilter:
    if expr is None or not expr.strip():
        return CompiledFilter(expr, (), None)
    # sqlglot only when there is a filter to parse: ~0.1 s and ~17 MB that a run without one
    # does not need
    from klaviyo_tui.input.filters.parse import parse

    node = parse(expr, columns)
    return CompiledFilter(expr, tuple(node_columns(node)), node, available=columns)


def segment_filter(segment: Segment) -> CompiledFilter:
    """The segment's compiled filter (its source's columns are looked up only if it has one).

    Messages name the segment: an export can union several, each with its own filter.
    """
    if not segment.filter or not segment.filter.strip():
        return compile_filter(None, ())
    label = f"The filter of segment {quoted(segment.name)}"
    try:
        compiled = compile_filter(segment.filter, columns_of(segment))
    except FilterError as exc:
        raise FilterError(f"{label}: {exc.message}", position=exc.position) from None
    return dataclasses.replace(compiled, label=label)


def filter_columns(expr: str | None, available: list[str]) -> list[str]:
    """The columns a filter reads (FilterError if it is not valid)."""
    return list(compile_filter(expr, available).columns)


def apply_filter(df: pd.DataFrame, expr: str | None) -> pd.DataFrame:
    """Rows of `df` matching `expr` (the index, i.e. the source row numbers, is kept)."""
    return compile_filter(expr, list(df.columns)).apply(df)


def count_matching(segment: Segment) -> int:
    """How many rows of the segment pass its filter (reads only the filter's columns)."""
    compiled = segment_filter(segment)
    columns = list(compiled.columns) or columns_of(segment)[:1]
    return sum(int(compiled.mask(df).sum()) for df in read_chunks(segment, columns))


def preview_matching(segment: Segment, n: int = 20) -> pd.DataFrame:
    """The first `n` matching rows, every column (index = source row number)."""
    compiled = segment_filter(segment)
    if compiled.node is None:
        return preview(segment, n)
    found: list[pd.DataFrame] = []
    have = 0
    for df in read_chunks(segment, None, chunk_rows=max(n, 10_000)):
        hits = compiled.apply(df).head(n - have)
        found.append(hits)
        have += len(hits)
        if have >= n:
            break
    return pd.concat(found) if len(found) > 1 else found[0]
