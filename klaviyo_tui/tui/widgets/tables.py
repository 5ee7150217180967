"""Refill a DataTable with columns sized to their content (auto widths do not grow on refill)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable


def fill_table(
    table: DataTable[str], headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]
) -> None:
    """Replace columns and rows; `rows` are (key, cells)."""
    table.clear(columns=True)
    for i, header in enumerate(headers):
        width = max([len(header), *(len(cells[i]) for _, cells in rows)])
        table.add_column(header, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)
