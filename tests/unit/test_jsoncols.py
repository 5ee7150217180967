"""jsoncols helpers: the numpy byte sweeps agree with the pyarrow kernels they replace."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.input.jsoncols import drop_bytes

_VALUES = st.lists(
    st.one_of(st.none(), st.text(alphabet=st.sampled_from("+1234 ().-xé\n"), max_size=20)),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_VALUES, st.integers(0, 5))
def test_drop_bytes_matches_regex_replace(values: list[str | None], start: int) -> None:
    arr = pa.array(values, pa.string()).slice(min(start, len(values)))
    expected = pc.replace_substring_regex(arr, r"[ ().\-]", "")
    got = drop_bytes(arr, b" ().-")
    assert got.to_pylist() == expected.to_pylist()
    got.validate(full=True)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet=st.sampled_from("a-@."), max_size=80)), max_size=25
    ),
    st.integers(0, 5),
)
def test_email_byte_sweep_matches_the_regexes(values: list[str | None], start: int) -> None:
    from klaviyo_tui.input.fastcheck import _long_local_or_dashes

    arr = pa.array(values, pa.string()).slice(min(start, len(values)))
    long_local = pc.match_substring_regex(arr, r"^[^@]{65,}@")
    dashes = pc.match_substring_regex(arr, r"@.*--")
    expected = pc.or_(long_local, dashes).fill_null(False).to_numpy(zero_copy_only=False)
    assert _long_local_or_dashes(arr).tolist() == expected.tolist()
