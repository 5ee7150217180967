"""jsoncols helpers: the numpy byte sweeps agree with the pyarrow kernels they replace, and the
one-join profile assembly (`profiles`) agrees with a plain Python oracle."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from klaviyo_tui.input.jsoncols import data_bytes, drop_bytes, json_field, lower, profiles, text

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


def _column(rng: random.Random, n: int, empty: float, quoted: bool) -> list[str | None]:
    """Values, some missing; quoted ones sometimes need JSON escapes."""
    out: list[str | None] = []
    for i in range(n):
        if rng.random() < empty:
            out.append(None)
        elif quoted and rng.random() < 0.2:
            out.append(f'a "quoted"\\ {i}\n')
        else:
            out.append(str(i))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_profiles_match_the_dicts_they_stand_for(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 25)
    shares = (0.0, 0.4, 1.0)  # never, sometimes, always empty
    top = {"email": _column(rng, n, 0.0, True)}
    top.update(
        {f"t{i}": _column(rng, n, rng.choice(shares), True) for i in range(rng.randint(0, 3))}
    )
    location = {
        f"l{i}": _column(rng, n, rng.choice(shares), True) for i in range(rng.randint(0, 3))
    }
    quoted = {f"p{i}": rng.random() < 0.5 for i in range(rng.randint(0, 3))}
    props = {k: _column(rng, n, rng.choice(shares), q) for k, q in quoted.items()}

    def fields(columns: dict[str, list[str | None]], q: dict[str, bool] | None = None) -> list[Any]:
        return [
            json_field(k, pa.array(v, pa.string()), quoted=True if q is None else q[k])
            for k, v in columns.items()
        ]

    got = profiles(
        n, fields(top), [("location", fields(location)), ("properties", fields(props, quoted))]
    ).to_pylist()
    for row in range(n):
        attrs: dict[str, object] = {k: v[row] for k, v in top.items() if v[row] is not None}
        nested = {k: v[row] for k, v in location.items() if v[row] is not None}
        if nested:
            attrs["location"] = nested
        values = {
            k: v[row] if quoted[k] else orjson.loads(v[row])  # type: ignore[arg-type]
            for k, v in props.items()
            if v[row] is not None
        }
        if values:
            attrs["properties"] = values
        assert orjson.loads(got[row]) == {"type": "profile", "attributes": attrs}


def test_profiles_of_no_rows_and_null_slots_holding_bytes() -> None:
    assert profiles(0, [json_field("email", pa.array([], pa.string()), quoted=True)], []) == (
        pa.array([], pa.string())
    )
    # a null whose slot still spans bytes (allowed by Arrow) must send nothing of them
    data = pa.py_buffer(b"a@x.comGHOSTb@x.com")
    offsets = pa.py_buffer(np.array([0, 7, 12, 19], np.int32).tobytes())
    validity = pa.array([True, False, True]).buffers()[1]
    names = pa.StringArray.from_buffers(3, offsets, data, validity)
    emails = pa.array(["a@x.com", "c@x.com", "b@x.com"])
    got = profiles(
        3,
        [json_field("email", emails, quoted=True)],
        [("properties", [json_field("name", names, quoted=True)])],
    ).to_pylist()
    assert [orjson.loads(row)["attributes"].get("properties") for row in got] == [
        {"name": "a@x.com"},
        None,
        {"name": "b@x.com"},
    ]


def _text_before(series: pd.Series) -> list[str | None]:
    """`text` as it was: both trim kernels, then null where empty."""
    arr = pa.array(series, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.cast(arr, pa.string())
    data = data_bytes(arr)
    ascii_only = len(data) and data.max() < 0x80
    arr = pc.ascii_trim_whitespace(arr) if ascii_only else pc.utf8_trim_whitespace(arr)
    out: list[str | None] = pc.if_else(
        pc.equal(arr, ""), pa.scalar(None, pa.string()), arr
    ).to_pylist()
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet=st.sampled_from("ab \t\n\r\x0b\x0c\xa0é\u2003"))),
        max_size=30,
    ),
    st.integers(0, 5),
)
@example(["ab", "b", "ab", "a"], 2)  # pure ASCII, nothing to trim, sliced: no kernel runs
def test_text_matches_the_trim_kernels(values: list[str | None], start: int) -> None:
    series = pd.Series(values, dtype="str").iloc[min(start, len(values)) :]
    got = text(series)
    got.validate(full=True)
    assert got.to_pylist() == _text_before(series)
    assert lower(got).to_pylist() == [None if v is None else v.lower() for v in got.to_pylist()]
    pa.concat_arrays([pa.array(["x"]), lower(got)]).validate(full=True)


def test_the_whitespace_text_skips_trimming_for_is_what_the_kernel_trims() -> None:
    from klaviyo_tui.input.jsoncols import _SPACE

    trimmed = pc.ascii_trim_whitespace(pa.array([chr(b) + "a" for b in range(128)])).to_pylist()
    kernel = [b for b, value in enumerate(trimmed) if value == "a"]
    assert kernel == np.flatnonzero(_SPACE).tolist()
