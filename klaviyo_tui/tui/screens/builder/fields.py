"""Klaviyo profile fields the Columns tab offers, and data from sources shown as text.

Pure functions, so the guesses and the display rules are testable without a screen.
"""

from __future__ import annotations

import re
from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text
from textual.content import Content

from klaviyo_tui.redaction import is_hidden, safe_text
from klaviyo_tui.services.columns import column_label

FIELDS: tuple[tuple[str, str], ...] = (
    ("email", "Email *"),
    ("phone_number", "Phone"),
    ("external_id", "External ID"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
)
LOCATION: tuple[tuple[str, str], ...] = (
    ("city", "City"),
    ("region", "Region/state"),
    ("country", "Country"),
    ("zip", "Postcode"),
    ("address1", "Address"),
)
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Control characters as their Unicode pictures (ESC as ␛, BEL as ␇): one character for one.
_PICTURES = {c: chr(0x2400 + c) for c in range(0x20)} | {0x7F: "\u2421"}
_PICTURES |= {c: "\ufffd" for c in range(0x80, 0xA0)}


class ControlPictures(Highlighter):
    """For Inputs holding text from files or config (a path, a filter): control characters show
    as visible pictures, and format characters (a bidi override, a zero-width space) as U+FFFD,
    one for one so the cursor still lines up; none reaches the terminal. The value is kept."""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        pictured = plain.translate(_PICTURES)
        if not pictured.isascii():
            pictured = "".join("\ufffd" if is_hidden(c) else c for c in pictured)
        if pictured != plain:
            text.plain = pictured


CONTROL_PICTURES = ControlPictures()


def shown(value: object, limit: int | None = None) -> str:
    """A value from data as it may be shown: keys masked, control characters visible, clipped."""
    text = safe_text(str(value))
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def column_text(column: str, limit: int | None = None) -> str:
    """A column name as shown: quoted when it would read as another name (spaces at its ends,
    nothing at all), so `code` and `code ` can be told apart; then like `shown`."""
    return shown(column_label(column), limit)


def plain(value: object, limit: int | None = None) -> Content:
    """Data as a Content that no markup in it can style, link or turn into an action."""
    return Content(shown(value, limit))


def cell(value: Any, limit: int = 30) -> Text:
    """A DataTable cell or header (a str there would be parsed as markup)."""
    return Text("" if is_missing(value) else shown(value, limit))


def filter_name(column: str) -> str:
    """How to write `column` in a filter: bare when it is a plain name, else "double quoted"."""
    if _BARE_NAME.fullmatch(column):
        return column
    return '"' + column.replace('"', '""') + '"'


def is_missing(value: Any) -> bool:
    """NaN / NA / None: an empty cell."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False
