"""`column_texts` (the rejects and warnings files' source values) gives exactly the text pandas'
`tolist` and `str()` gave, on every dtype a source can produce, and cuts long values."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.input.fields import column_texts


def _oracle(series: pd.Series, where: list[int], limit: int | None) -> list[str]:
    return [
        "" if v is None or (isinstance(v, float) and v != v) else str(v)[:limit]
        for v in series.iloc[where].tolist()
    ]


_TEXT = st.one_of(st.none(), st.text(max_size=12))


@settings(max_examples=200, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=30), st.data(), st.sampled_from([None, 3, 100]))
def test_str_columns_match_pandas(
    values: list[str | None], data: st.DataObject, limit: int | None
) -> None:
    where = data.draw(st.lists(st.integers(0, len(values) - 1), max_size=20))
    for dtype in ("str", "string", object):
        series = pd.Series(values, dtype=dtype)
        sliced = series[1:] if len(series) > 1 else series  # not starting at the first value
        at = [min(p, len(sliced) - 1) for p in where]
        got = column_texts(sliced, np.asarray(at, dtype=np.int64), limit)
        assert got == _oracle(sliced, at, limit)


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1.5, np.nan, 3.0]),
        pd.Series([1, 2, 3]),
        pd.Series([True, False, True]),
        pd.Series([dt.datetime(2024, 1, 2, 3, 4), None, dt.datetime(2025, 1, 1)]),
        pd.Series(["a", 1, None], dtype=object),
    ],
)
def test_other_dtypes_match_pandas(series: pd.Series) -> None:
    where = [2, 0, 1]
    assert column_texts(series, np.asarray(where), 100) == _oracle(series, where, 100)


def test_long_values_are_cut_by_characters() -> None:
    series = pd.Series(["é" * 10, "ab", None], dtype="str")
    assert column_texts(series, np.asarray([0, 1, 2]), 4) == ["éééé", "ab", ""]
