"""The rejects file's line-at-a-time cell check gives the same cells as `_cell` one by one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.run.rejects import _cell, _cells, _columns

_TRICKY = st.sampled_from(
    ["=", "+", "-", "@", " ", "\u00a0", "\t", "\r", "\n", "\0", "\x1f", "\x1b", "\x85", "pk_",
     "1", "(", ")", ".", "a", "é", "|", "%", "\x7f"]
)  # fmt: skip
_TEXT = st.one_of(
    st.text(max_size=12),
    st.lists(_TRICKY, max_size=8).map("".join),
    st.from_regex(r"[+-][0-9][0-9 ().-]{0,8}", fullmatch=True),
    st.just("pk_" + "a" * 34),
)


@given(st.lists(_TEXT, min_size=1, max_size=8))
@settings(max_examples=600)
def test_cells_match_cell_by_cell(cells: list[str]) -> None:
    assert _cells(list(cells)) == [_cell(c) for c in cells]


def test_cells_spot_cases() -> None:
    assert _cells(["+1 415 555 0100", "-12.5", "ok"]) == ["+1 415 555 0100", "-12.5", "ok"]
    assert _cells(["a", "=1+2"]) == ["a", "'=1+2"]
    assert _cells(["a\x1fb", "c"]) == [_cell("a\x1fb"), "c"]
    assert _cells(["+1\n", "x"]) == [_cell("+1\n"), "x"]
    assert _cells(["x", None, 3]) == ["x", "", "3"]  # a hand-edited history file


def test_columns_first_seen_order() -> None:
    texts = ['{"b": "1", "a": "2"}', '{"b": "1", "a": "2"}', '{"c": "3", "a": "4"}', "[1]", "{"]
    assert _columns(texts) == ["b", "a", "c"]
