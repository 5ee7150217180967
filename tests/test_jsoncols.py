"""The one-join profile assembly (input/jsoncols.profiles) against a plain Python oracle."""

from __future__ import annotations

import random

import orjson
import pyarrow as pa
import pytest

from klaviyo_tui.input.jsoncols import json_field, profiles


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

    def fields(columns: dict[str, list[str | None]], q: dict[str, bool] | None = None) -> list:
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
