"""A filter that fails on the data names the source's columns, not only those it reads (the
chunks it sees hold just its own columns)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from klaviyo_tui.input.filters import FilterError, count_matching
from klaviyo_tui.store.config import Segment


@pytest.fixture
def segment(tmp_path: Path) -> Segment:
    path = tmp_path / "c.csv"
    pd.DataFrame({"email": ["a@x.com", "b@x.com"], "name": ["A", "B"], "orders": [5, 2]}).to_csv(
        path, index=False
    )
    return Segment("s", str(path), filter="orders")  # orders holds counts, not true/false


def test_count_lists_every_column_of_the_source(segment: Segment) -> None:
    with pytest.raises(FilterError) as caught:
        count_matching(segment)
    assert "is not a condition" in caught.value.message
    assert caught.value.message.endswith("Columns available: email, name, orders.")


def test_column_names_in_the_list_are_shown_inert(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    pd.DataFrame({"email": ["a@x.com"], "\x1b[31mred": ["x"], "orders": [5]}).to_csv(
        path, index=False
    )
    with pytest.raises(FilterError) as caught:
        count_matching(Segment("s", str(path), filter="orders"))
    assert "\x1b" not in caught.value.message
    assert "Columns available: email, " in caught.value.message
