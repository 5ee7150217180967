"""Refill a DataTable with cells shown as text, in columns that fit the width they are given.

A cell may hold two lines ("partial\ndry run 12:03"): its row is then two lines high.

Cells come from config, history and Klaviyo, so they are Rich `Text` (DataTable reads a `str` as
markup). Auto widths do not grow on refill, so widths are computed here; when the natural widths
do not fit, the columns that may shrink lose characters (ending in "…"), widest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.widgets import DataTable

from klaviyo_tui.redaction import safe_text

CELL_PADDING = 2  # DataTable's cell_padding of 1 on each side
SCROLLBAR = 2


@dataclass(frozen=True, slots=True)
class Column:
    """A header; `shrink` is the narrowest it may become (0: never shrinks)."""

    header: str
    shrink: int = 0
    right: bool = False

    @property
    def justify(self) -> Literal["left", "right"]:
        return "right" if self.right else "left"


def fit_widths(columns: Sequence[Column], natural: list[int], budget: int | None) -> list[int]:
    """Natural widths, narrowed (widest shrinkable column first) until they fit `budget`."""
    widths = list(natural)
    if budget is None:
        return widths
    while sum(widths) > budget:
        candidates = [i for i, c in enumerate(columns) if c.shrink and widths[i] > c.shrink]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def fill_table(
    table: DataTable[Text],
    columns: Sequence[Column | str],
    rows: Sequence[tuple[str, Sequence[str]]],
    *,
    width: int | None = None,
    visible_rows: int | None = None,
) -> None:
    """Replace columns and rows; `rows` are (key, cells).

    `width` is the room for the table; `visible_rows` how many rows show without scrolling
    (None: unknown), so room for a scrollbar is kept only when one will appear.
    """
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    shown = [
        (key, [[safe_text(line) for line in str(value).split("\n")] for value in cells])
        for key, cells in rows
    ]
    natural = [
        max([len(c.header), *(len(line) for _, cells in shown for line in cells[i])])
        for i, c in enumerate(cols)
    ]
    height = sum(max(len(lines) for lines in cells) for _, cells in shown)
    scrollbar = SCROLLBAR if visible_rows is None or height > visible_rows else 0
    budget = None if width is None else width - CELL_PADDING * len(cols) - scrollbar
    widths = fit_widths(cols, natural, budget)
    table.clear(columns=True)
    for col, w in zip(cols, widths, strict=True):
        table.add_column(Text(clip(col.header, w), justify=col.justify), width=w)
    for key, cells in shown:
        texts = [
            Text("\n".join(clip(line, w) for line in lines), justify=c.justify, end="")
            for lines, w, c in zip(cells, widths, cols, strict=True)
        ]
        table.add_row(*texts, key=key, height=max(len(lines) for lines in cells))
