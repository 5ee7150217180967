"""Segment filters in SQL WHERE syntax: operators, typing, NULLs, pandas compatibility, refusals
and their messages, the compiled API, and a property check against plain pandas."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.input.filters import (
    FilterError,
    apply_filter,
    compile_filter,
    count_matching,
    filter_columns,
    preview_matching,
)
from klaviyo_tui.store.config import Segment


def people() -> pd.DataFrame:
    """Text columns, as the CSV reader delivers them; the index is the source row number."""
    df = pd.DataFrame(
        {
            "email": ["a@x.com", "B@x.com", "c@y.org", "d@x.com", "e@z.net", "f@x.com"],
            "country": ["US", "DE", "US", "", "us", "CA"],
            "orders": ["5", "x", "12", "3", "", "007"],
            "vip": ["true", "no", "1", "", "FALSE", "yes"],
            "zip": ["02134", "2134", "10115", "", "02134", "M5V"],
            "signup": [
                "2024-01-31",
                "2024-02-01T10:00:00",
                "bad",
                "2023-12-31 23:59",
                "",
                "2024-01-31T23:30:00-02:00",
            ],
            "first name": ["Ann", "Bo", "Cy", "Di", "Ed", "Flo"],
        },
        dtype="str",
    )
    df.index = pd.RangeIndex(1, 7)
    return df


def rows(expr: str, df: pd.DataFrame | None = None) -> list[int]:
    return [int(i) for i in apply_filter(people() if df is None else df, expr).index]


def refusal(expr: str, df: pd.DataFrame | None = None) -> FilterError:
    with pytest.raises(FilterError) as info:
        apply_filter(people() if df is None else df, expr)
    assert info.value.exit_code == ExitCode.INPUT
    return info.value


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("country = 'US'", [1, 3]),
        ("country == 'US'", [1, 3]),
        ("country != 'US'", [2, 5, 6]),
        ("country <> 'US'", [2, 5, 6]),
        ("orders < 5", [4]),
        ("orders <= 5", [1, 4]),
        ("orders > 5", [3, 6]),
        ("orders >= 7", [3, 6]),
        ("3 < orders", [1, 3, 6]),
        ("orders > -1.5", [1, 3, 4, 6]),
        ("country IN ('US', 'CA')", [1, 3, 6]),
        ("country NOT IN ('US', 'CA')", [2, 5]),
        ("orders IN (5, 7)", [1, 6]),
        ("email LIKE '%@x.com'", [1, 2, 4, 6]),
        ("email LIKE 'b%'", []),
        ("email ILIKE 'b%'", [2]),
        ("email NOT LIKE '_@x.com'", [3, 5]),
        ("country IS NULL", [4]),
        ("country IS NOT NULL", [1, 2, 3, 5, 6]),
        ("orders BETWEEN 3 AND 7", [1, 4, 6]),
        ("orders NOT BETWEEN 3 AND 7", [3]),
        ("country BETWEEN 'A' AND 'E'", [2, 6]),
        ("country = 'US' AND orders > 3", [1, 3]),
        ("country = 'US' OR country = 'CA'", [1, 3, 6]),
        ("NOT country = 'US'", [2, 5, 6]),
        ("country = 'DE' OR country = 'US' AND orders > 10", [2, 3]),
        ("(country = 'DE' OR country = 'US') AND orders > 10", [3]),
        ("TRUE", [1, 2, 3, 4, 5, 6]),
        ("FALSE", []),
        ("vip", [1, 3, 6]),
        ("NOT vip", [2, 5]),
        ("vip IS TRUE", [1, 3, 6]),
        ("vip IS NOT TRUE", [2, 4, 5]),
        ("vip = FALSE", [2, 5]),
        ("`first name` = 'Bo'", [2]),
        ("\"first name\" IN ('Ann', 'Cy')", [1, 3]),
        ("COUNTRY = 'DE'", [2]),
    ],
)
def test_operators(expr: str, expected: list[int]) -> None:
    assert rows(expr) == expected


def test_a_number_literal_compares_numbers_and_skips_cells_that_are_not() -> None:
    df = pd.DataFrame(
        {"n": ["007", " 5", "1e3", "abc", "", "-2", "inf", "nan", ".5", "1,000"]}, dtype="str"
    )
    assert rows("n > 3", df) == [0, 1, 2]
    assert rows("n = 7", df) == [0]
    assert rows("n < 1", df) == [5, 8]
    # a cell that is not a number is unknown: NOT does not make it match
    assert rows("NOT n > 3", df) == [5, 8]
    assert rows("n IS NULL", df) == [4]
    # mostly plain digits (the fast path) with a few other cells; non-ASCII digits are not numbers
    many = pd.DataFrame({"n": [str(i) for i in range(100)] + ["-3", " 8 ", "x", "٣", "4.5"]})
    assert rows("n < 0 OR n BETWEEN 4.2 AND 4.8 OR n = 8", many) == [8, 100, 101, 104]
    assert rows("n IS NOT NULL AND NOT n >= 0", many) == [100]


def test_a_text_literal_compares_text() -> None:
    assert rows("zip = '02134'") == [1, 5]
    assert rows("zip = 2134") == [1, 2, 5]  # as numbers, leading zeros do not count
    assert rows("zip > '1'") == [2, 3, 6]  # text order


def test_typed_columns_from_parquet_sql_and_json() -> None:
    df = pd.DataFrame(
        {
            "i": pd.array([1, 5, None, 10], dtype="Int64"),
            "f": [1.5, np.nan, 3.0, 10.0],
            "b": [True, False, True, False],
            "cat": pd.Categorical(["a", "b", "a", None]),
            "mixed": [1, "two", None, 4.5],  # JSON Lines read with dtype=False
            "when": pd.to_datetime(
                ["2024-01-31 23:00", "2024-02-01 01:00", None, "2023-05-05 00:00"]
            ).tz_localize("UTC"),
        }
    )
    assert rows("i > 4", df) == [1, 3]
    assert rows("i IS NULL", df) == [2]
    assert rows("f >= 3", df) == [2, 3]
    assert rows("NOT f >= 3", df) == [0]  # NaN is NULL
    assert rows("b", df) == [0, 2]
    assert rows("b = TRUE", df) == [0, 2]
    assert rows("i = '5'", df) == [1]  # text of a number
    assert rows("cat = 'a'", df) == [0, 2]
    assert rows("mixed = 'two'", df) == [1]
    assert rows("mixed > 2", df) == [3]
    assert rows("\"when\" >= '2024-02-01'", df) == [1]
    assert rows("\"when\" = DATE '2024-01-31'", df) == [0]
    assert rows("`when` < TIMESTAMP '2024-01-31 23:30'", df) == [0, 3]
    error = refusal("when > DATE '2024-01-01'", df)
    assert "'when' is a SQL word" in str(error) and '"when"' in str(error)
    assert error.position == 0


def test_dates() -> None:
    assert rows("signup = DATE '2024-01-31'") == [1]
    # with a zone offset the cell is read in UTC: 2024-02-01 01:30
    assert rows("signup >= DATE '2024-02-01'") == [2, 6]
    assert rows("signup < DATE '2024-01-01'") == [4]
    assert rows("signup BETWEEN DATE '2024-01-01' AND DATE '2024-01-31'") == [1]
    assert rows("signup > TIMESTAMP '2024-02-01 09:59:59'") == [2]
    assert rows("signup IN (DATE '2024-01-31', DATE '2023-12-31')") == [1, 4]
    # a cell that is not a date never matches, NOT included
    assert rows("NOT signup < DATE '2030-01-01'") == []


def test_empty_and_missing_cells_are_null() -> None:
    df = pd.DataFrame({"c": ["a", "", None, "b"]}, dtype="str")
    assert rows("c IS NULL", df) == [1, 2]
    assert rows("c != 'a'", df) == [3]
    assert rows("NOT c = 'a'", df) == [3]
    assert rows("c NOT IN ('a')", df) == [3]
    assert rows("c = 'a' OR c IS NULL", df) == [0, 1, 2]
    assert rows("NOT (c = 'a' AND c IS NOT NULL)", df) == [1, 2, 3]


def test_like_escapes_and_case() -> None:
    df = pd.DataFrame({"c": ["50%", "50x", "a_b", "aXb", "ABC"]}, dtype="str")
    assert rows(r"c LIKE '50\%'", df) == [0]
    assert rows(r"c LIKE 'a\_b'", df) == [2]
    assert rows("c LIKE 'a_b'", df) == [2, 3]
    assert rows("c LIKE 'abc'", df) == []
    assert rows("c ILIKE 'abc'", df) == [4]


def test_names_resolve_exactly_first() -> None:
    df = pd.DataFrame({"Email": ["A"], "email": ["b"], "Tier": ["gold"]}, dtype="str")
    assert rows("email = 'b'", df) == [0]
    assert rows("Email = 'A'", df) == [0]
    assert rows("tier = 'gold'", df) == [0]
    assert filter_columns("tier = 'gold' AND email = 'b'", list(df.columns)) == ["Tier", "email"]
    error = refusal("EMAIL = 'b'", df)  # two columns fold to it: no guessing
    assert "Unknown column 'EMAIL'" in str(error)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('country == "US" and orders > 3', [1, 3]),
        ("country == 'US' or not vip", [1, 2, 3, 5]),
        ('vip == True and country != "DE"', [1, 3, 6]),
        ('`first name` == "Ann"', [1]),
        ("(country == 'US') and (orders > 3)", [1, 3]),
    ],
)
def test_pandas_style_filters_that_mean_the_same_keep_working(
    expr: str, expected: list[int]
) -> None:
    assert rows(expr) == expected


@pytest.mark.parametrize(
    ("expr", "sql"),
    [
        ("country == 'US' & orders > 3", "use country = 'US' AND orders > 3 instead"),
        ("(country == 'US') | ~vip", "use (country = 'US') OR NOT vip instead"),
        ("country.str.contains('U')", "use country LIKE '%U%' instead"),
        ("email.str.endswith('@x.com')", "use email LIKE '%@x.com' instead"),
        ("country.isin(['US', 'DE'])", "use country IN ('US', 'DE') instead"),
        ("country in ['US', 'DE']", "use country IN ('US', 'DE') instead"),
        ("country.isna() | orders > 3", "use country IS NULL OR orders > 3 instead"),
        ("country == @wanted", "use country = 'US' AND orders > 3 instead"),
    ],
)
def test_pandas_only_syntax_is_refused_with_the_sql_to_write(expr: str, sql: str) -> None:
    error = refusal(expr)
    assert sql in str(error)
    assert error.position is not None and expr[error.position] in "&|.[@"


@pytest.mark.parametrize(
    ("expr", "fragment", "position"),
    [
        ("lower(country) = 'us'", "function calls are not allowed", 0),
        ("country = upper('us')", "function calls are not allowed", 10),
        ("CAST(orders AS INT) > 3", "function calls are not allowed", 0),
        ("orders::int > 3", "casts ('::') are not allowed", 6),
        ("country IN (SELECT country FROM t)", "subqueries are not allowed", 12),
        ("EXISTS (SELECT 1)", "function calls are not allowed", 0),
        ("country = @x", "@names", 10),
        ("country = :x", "':' is not allowed", 10),
        ("t.country = 'US'", "attribute access", 1),
        ("country.__class__ = 1", "attribute access", 7),
        ("country = 'US'; DROP TABLE t", "';' is not allowed", 14),
        ("country = 'US' -- and more", "Comments", 15),
        ("country = 'US' /* x */", "Comments", 15),
        ("orders + 1 > 3", "arithmetic is not supported", 0),
        ("email = country", "compares two columns", 0),
        ("1 = 1", "compares two values", 0),
        ("country = NULL", "IS NULL", None),
        ("country = ''", "write country IS NULL", None),
        ("country != ''", "write country IS NOT NULL", None),
        ("contry = 'US'", "Unknown column 'contry' (did you mean 'country'?)", 0),
        ("country = US", "text goes in single quotes: 'US'", 10),
        ("country = 'US", "never closed", 10),
        ("country = 'US' AND", "ends too early", 18),
        ("country = = 'US'", "cannot be read near '='", 10),
        ("country", "not a condition", None),
        ("'US'", "not a condition", 0),
        ("country IN ()", "IN needs at least one value, e.g. country IN (", None),
        # the example writes the column as the user had to: in double quotes
        ('"first name" IN ()', """e.g. "first name" IN ('US', 'CA')""", None),
        ("orders BETWEEN 1 AND 'x'", "BETWEEN needs", None),
        ("signup > DATE 'soon'", "is not a date", 14),
        ("email LIKE 5", "LIKE needs a text pattern", None),
        ("country $ 'US'", "cannot be read", None),
    ],
)
def test_refusals_name_the_fault_and_where_it_is(
    expr: str, fragment: str, position: int | None
) -> None:
    error = refusal(expr)
    assert fragment in str(error)
    if position is not None:
        assert error.position == position
    assert "Columns available: email, country, orders, vip, zip, signup, first name." in str(error)
    assert error.hint


def test_a_long_column_list_is_shortened() -> None:
    df = pd.DataFrame({f"column_{i}": ["x"] for i in range(100)}, dtype="str")
    message = str(refusal("nope = 1", df))
    assert "column_29" in message and "column_30" not in message and "(70 more)" in message


def test_filters_that_are_too_long_or_too_deep_are_refused() -> None:
    long = "country IN (" + ", ".join(["'US'"] * 30_000) + ")"
    assert "characters long" in str(refusal(long))
    deep = "(" * 5_000 + "country = 'US'" + ")" * 5_000
    assert "nested too deeply" in str(refusal(deep))
    chain = " OR ".join(["country = 'US'"] * 400)
    assert "nested too deeply" in str(refusal(chain))
    assert rows(" OR ".join(["country = 'US'"] * 150)) == [1, 3]


def test_compiled_filter_is_parsed_once_and_applied_per_chunk() -> None:
    df = people()
    compiled = compile_filter("country = 'US' AND orders > 3", list(df.columns))
    assert compiled.columns == ("country", "orders")
    first, second = df.iloc[:3], df.iloc[3:]
    assert list(compiled.apply(first).index) == [1, 3]
    assert list(compiled.apply(second).index) == []
    assert compiled.mask(df).tolist() == [True, False, True, False, False, False]
    # reading only the filter's columns is enough
    assert list(compiled.apply(df[["orders", "country"]]).index) == [1, 3]
    assert compile_filter(None, []).apply(df) is df
    assert compile_filter("  ", ["x"]).columns == ()


def _segment(tmp_path: Path, n: int, expr: str | None) -> Segment:
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "tier", "orders"])
        for i in range(n):
            writer.writerow([f"u{i}@x.com", "gold" if i % 1000 == 999 else "basic", str(i % 10)])
    return Segment("s", str(path), filter=expr)


def test_count_and_preview_across_chunks(tmp_path: Path) -> None:
    segment = _segment(tmp_path, 60_000, "tier = 'gold' AND orders >= 9")
    assert count_matching(segment) == 60
    first = preview_matching(segment, 25)
    assert list(first.index) == [1000 * k for k in range(1, 26)]  # 1-based source rows
    assert list(first.columns) == ["email", "tier", "orders"]
    assert first["email"].iloc[0] == "u999@x.com"
    everything = preview_matching(_segment(tmp_path, 5, None), 3)
    assert list(everything.index) == [1, 2, 3]
    with pytest.raises(FilterError, match="Unknown column 'teir'"):
        count_matching(_segment(tmp_path, 5, "teir = 'gold'"))


# ---- property: the same answer as plain pandas ----------------------------------------------

_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_OPS = {"=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
cells = st.text(alphabet="0123456789-.ab ", max_size=4)
literals = st.one_of(
    st.integers(-50, 50),
    st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 2)),
    st.text(alphabet="0123456789ab", min_size=1, max_size=3),
)


def _sql(value: int | float | str) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _expected(series: pd.Series, op: str, value: int | float | str) -> pd.Series:
    """Kleene-logic booleans: NA where the cell is NULL (empty) or not a number."""
    if isinstance(value, str):
        left = series.where(series != "").astype(object)
    else:
        ok = series.map(lambda v: bool(_NUMBER.match(v)))
        left = pd.to_numeric(series.str.strip().where(ok), errors="coerce")
    result = getattr(left, _OPS[op])(value).astype("boolean")
    return result.mask(left.isna())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(cells, cells), min_size=1, max_size=30),
    st.sampled_from(list(_OPS)),
    literals,
    st.sampled_from(list(_OPS)),
    literals,
    st.sampled_from(["AND", "OR"]),
    st.booleans(),
)
def test_simple_comparisons_match_plain_pandas(
    data: list[tuple[str, str]],
    op1: str,
    v1: int | float | str,
    op2: str,
    v2: int | float | str,
    joint: str,
    negate: bool,
) -> None:
    df = pd.DataFrame(data, columns=["a", "b"], dtype="str")
    first, second = _expected(df["a"], op1, v1), _expected(df["b"], op2, v2)
    assert list(apply_filter(df, f"a {op1} {_sql(v1)}").index) == list(
        df.index[first.fillna(False).to_numpy(bool)]
    )
    both = first & second if joint == "AND" else first | second
    if negate:
        both = ~both
    expr = f"{'NOT ' if negate else ''}(a {op1} {_sql(v1)} {joint} b {op2} {_sql(v2)})"
    assert list(apply_filter(df, expr).index) == list(df.index[both.fillna(False).to_numpy(bool)])


def test_dates_in_text_are_read_like_pandas_reads_iso_dates() -> None:
    values = ["2024-01-31", "2024-01-31T12:00:00Z", "2024-02-01 00:00", "31/01/2024", ""]
    df = pd.DataFrame({"d": values}, dtype="str")
    parsed = pd.to_datetime(df["d"], format="ISO8601", errors="coerce", utc=True)
    expected = df.index[(parsed.dt.date <= dt.date(2024, 1, 31)).to_numpy(bool) & parsed.notna()]
    assert list(apply_filter(df, "d <= DATE '2024-01-31'").index) == list(expected) == [0, 1]
