"""Column names as the user's files have them: matched exactly, shown so their spaces show.

A column is exactly what the source's header says (spaces at either end, any characters): every
mapped field, custom property and consent column is matched by equality, never trimmed or folded,
so `code` and `code ` are two columns and each is sent under its own name. Messages quote names
(`'code '`) so a space at either end is visible.

The one place spaces are read as layout is a typed comma-separated list (`--set properties=a, b`,
the answers `exports create` asks for): an item that is no column but is one without the spaces
after or before its comma means that column (an item that is a column as typed always means that
column).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def shown_columns(columns: Iterable[str]) -> str:
    """`'email', 'name '`: every name quoted, so a space at either end is visible."""
    return ", ".join(repr(c) for c in columns)


def column_label(column: str) -> str:
    """A column name for a listing: as it is, or quoted (`'name '`) when it would read as
    another name (nothing, spaces at its ends, a comma or quote in a comma-separated list)."""
    plain = column.strip() == column != "" and not any(c in column for c in ",'\"")
    return column if plain else repr(column)


def close_column(column: str, columns: Iterable[str]) -> str | None:
    """A column that differs from `column` only in case or in spaces at its ends (a likely
    typo, for a "did you mean"); None when there is none."""
    key = column.strip().casefold()
    return next((c for c in columns if c != column and c.strip().casefold() == key), None)


def typed_column(item: str, columns: Sequence[str]) -> str:
    """One item of a typed list: itself when it is a column, else the first column among it
    without the spaces after a comma, before one, or both; else it trimmed (an unknown name the
    column check refuses)."""
    for form in (item, item.lstrip(), item.rstrip()):
        if form in columns:
            return form
    return item.strip()


def listed_columns(text: str, columns: Sequence[str]) -> tuple[str, ...]:
    """The columns of a typed comma-separated list, in order (see the module docstring)."""
    items = (typed_column(item, columns) for item in text.split(","))
    return tuple(dict.fromkeys(item for item in items if item))
