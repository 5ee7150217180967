"""Data on screen is text: never markup, never terminal escapes, never a key.

Names, cells, file paths and Klaviyo's messages come from users, files and servers. Textual reads
a plain `str` as markup in Static/Label/DataTable/OptionList/the palette, so `x[/]y` crashes a
screen and `[@click=app.quit]` becomes a live action; a raw ESC reaches the terminal (window
title, clipboard). Everything shown goes through `safe_text` (keys masked, control characters
visible) and is handed to widgets as `Content` or Rich `Text`, which are never parsed.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.content import Content

from klaviyo_tui.redaction import safe_text


def shown(value: object, *, keep_layout: bool = False) -> Content:
    """`value` as Content to display verbatim (for Static, Label, Option, Button labels)."""
    return Content(safe_text(str(value), keep_layout=keep_layout))


def cell(value: object) -> Text:
    """`value` as a DataTable cell or header: Rich Text, which DataTable does not parse."""
    return Text(safe_text(str(value)), end="", no_wrap=True)


def escaped(value: object) -> str:
    """For the few Textual APIs that take only markup strings (command palette titles)."""
    return safe_text(str(value)).replace("[", "\\[")


def facts(rows: list[tuple[str, str]], key_width: int = 9) -> Table:
    """`key  value` lines whose values wrap under themselves (a str cell would be markup)."""
    table = Table.grid(expand=True)
    table.add_column(width=key_width, no_wrap=True)
    table.add_column(ratio=1)
    for key, value in rows:
        table.add_row(Text(key), Text(safe_text(value, keep_layout=True)))
    return table
