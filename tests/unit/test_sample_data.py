"""The sample generator: deterministic, realistic shares of bad and duplicate rows, all formats."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from klaviyo_tui.demo.sample_data import customers_table, generate_customers
from klaviyo_tui.events import RowState
from klaviyo_tui.input.mapping import ValidatedChunk
from klaviyo_tui.input.pipeline import iter_validated
from klaviyo_tui.store.config import Export, Mapping, Segment

MAPPING = Mapping(
    email="email",
    phone_number="phone",
    first_name="first_name",
    last_name="last_name",
    location={"city": "city", "country": "country", "zip": "zip"},
    properties=("lifetime_value", "orders", "signup_date", "vip"),
)


def test_deterministic_by_seed() -> None:
    assert customers_table(500, seed=3).equals(customers_table(500, seed=3))
    assert not customers_table(500, seed=3).equals(customers_table(500, seed=4))


def test_rates_through_the_pipeline(tmp_path: Path) -> None:
    path = generate_customers(tmp_path / "c.csv", 20_000, invalid_rate=0.02, seed=1)
    export = Export("e", "c", "L", ("s",), MAPPING)
    counts = {state: 0 for state in RowState}
    valid = warned = shared = 0
    for item in iter_validated(export, {"s": Segment("s", str(path))}):
        if isinstance(item, ValidatedChunk):
            valid += len(item.payloads)
            warned += sum(item.warned)
            shared += sum("shared" in w.reason for w in item.warnings)
            for r in item.rejects:
                counts[r.state] += 1
    assert valid + counts[RowState.INVALID] + counts[RowState.DUPLICATE] == 20_000
    # bad emails are invalid; bad and shared phones are dropped from rows that are still sent
    assert 0.006 < counts[RowState.INVALID] / 20_000 < 0.015
    assert 0.002 < counts[RowState.DUPLICATE] / 20_000 < 0.01
    assert 0.015 < warned / 20_000 < 0.05
    assert 0.005 < shared / 20_000 < 0.03
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(df["country"]) == {"US", "GB", "DE"}
    assert df["zip"].str.len().eq(5).all()  # zips keep leading zeros


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "xlsx"])
def test_other_formats(tmp_path: Path, fmt: str) -> None:
    path = generate_customers(tmp_path / f"c.{fmt}", 50, fmt=fmt)
    df = pd.concat(
        [
            c
            for c in __import__("klaviyo_tui.input.sources", fromlist=["x"]).read_chunks(
                Segment("s", str(path))
            )
        ]
    )
    assert len(df) == 50
    assert "email" in df.columns


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        generate_customers(tmp_path / "x", 1, fmt="xml")
