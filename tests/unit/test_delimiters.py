"""The delimiter a delimited text file is read with: detected from its first records."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_tui.input.sources import read_chunks
from klaviyo_tui.input.sources.text import DELIMITERS, detect_delimiter
from klaviyo_tui.store.config import Segment

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
CELLS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    | st.sampled_from([",", ";", "\t", "|", '"', "\n"]),
    max_size=12,
)


def _table(delimiter: str, header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(DELIMITERS),
    st.lists(NAMES, min_size=2, max_size=6, unique=True).flatmap(
        lambda header: st.tuples(
            st.just(header),
            st.lists(st.lists(CELLS, min_size=len(header), max_size=len(header)), max_size=8),
        )
    ),
)
def test_the_delimiter_a_table_was_written_with_is_found(
    delimiter: str, table: tuple[list[str], list[list[str]]]
) -> None:
    """Whatever the cells hold (other delimiters, quotes, tabs, line breaks), a header of two or
    more plain names decides."""
    header, rows = table
    assert detect_delimiter(_table(delimiter, header, rows), ".csv") == delimiter


def test_a_quoted_tab_in_the_first_row_does_not_make_a_comma_file_one_column(
    tmp_path: Path,
) -> None:
    # what hypothesis found: csv.Sniffer took quoted cells that begin or end with a tab for a
    # tab-delimited file with one column, "email,phone,name"
    path = tmp_path / "b.csv"
    rows = [
        [",\t", "", ""],
        ['\t=HYPERLINK("http://x","y")', "", ""],
        ["ada@example.com", "", "Ada"],
    ]
    path.write_text(_table(",", ["email", "phone", "name"], rows), encoding="utf-8")
    df = pd.concat(list(read_chunks(Segment("b", str(path)), columns=["email", "name"])))
    assert list(df["email"]) == [r[0] for r in rows]
    assert list(df["name"]) == ["", "", "Ada"]


def test_semicolons_with_decimal_commas_and_a_single_column() -> None:
    assert detect_delimiter("email;amount\na@x.com;1,5\nb@x.com;2,5\n", ".csv") == ";"
    assert detect_delimiter("email\na@x.com\n", ".csv") == ","
    assert detect_delimiter("", ".csv") == ","
    assert detect_delimiter("a,b\n1,2", ".tsv") == "\t"  # the name says so
    # a sample cut inside its last record is judged on the whole records before it
    assert detect_delimiter('email,note\na@x.com,"one; two; three', ".csv") == ","
