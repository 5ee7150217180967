"""The phone fast path's one-regex split into international and national forms."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.input.fastcheck import _intl_or_national

_CLEANED = st.lists(
    st.one_of(
        st.text(alphabet="+0123456789", max_size=22),
        st.text(max_size=6),
        st.none(),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_CLEANED)
def test_split_matches_the_two_patterns(values: list[str | None]) -> None:
    """Same masks as the two regexes it replaces (null = neither)."""
    cleaned = pa.array(values, pa.string())
    intl, national = _intl_or_national(cleaned)
    for got, pattern in (
        (intl, r"^\+[1-9][0-9]{2,17}$"),
        (national, r"^[1-9][0-9]{1,16}$"),
    ):
        want = pc.match_substring_regex(cleaned, pattern).fill_null(False)
        assert np.array_equal(got, want.to_numpy(zero_copy_only=False)), pattern


def test_split_edges() -> None:
    values = ["+12", "+123", "+1" + "2" * 17, "+1" + "2" * 18, "12", "1" * 17, "1" * 18, "+0123"]
    intl, national = _intl_or_national(pa.array(values))
    assert intl.tolist() == [False, True, True, False, False, False, False, False]
    assert national.tolist() == [False, False, False, False, True, True, False, False]
