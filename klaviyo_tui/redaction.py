"""Keeping API keys out of text: masks for display and a scrub for messages from anywhere.

A private Klaviyo key is `pk_` plus letters and digits. Anything key-shaped in free text (config
values, Klaviyo's error details, exception messages) is replaced by its mask before it is stored
or shown, so even a server that echoes the key back cannot leak it.
"""

from __future__ import annotations

import re
import unicodedata

# Anything key-like inside free text (config values, error messages): long enough to not be a
# column name such as `pk_id`.
KEY_PATTERN = re.compile(r"(?<![A-Za-z0-9])pk_[A-Za-z0-9]{20,}")


def mask_key(key: str | None) -> str:
    """`pk_…abcd`: enough to tell keys apart, useless to an onlooker."""
    if not key:
        return "(none)"
    key = key.strip()
    if len(key) < 12:
        return "…"
    prefix = "pk_" if key.startswith("pk_") else ""
    return f"{prefix}…{key[-4:]}"


def looks_like_key(text: str) -> bool:
    """True when `text` contains something shaped like a private Klaviyo key."""
    return KEY_PATTERN.search(text) is not None


def redact(text: str, key: str | None = None) -> str:
    """Replace `key` and anything key-shaped in `text` with its mask."""
    if not key and "pk_" not in text:  # the common case, without a regex (rejects: per cell)
        return text
    if key:
        key = key.strip()
        if key:
            text = text.replace(key, mask_key(key))
    return KEY_PATTERN.sub(lambda m: mask_key(m.group(0)), text)


# C0 and C1 control characters and DEL: what a terminal would act on (ESC starts escape sequences,
# OSC 52 writes the clipboard, OSC 2 the window title). Tab and newline are kept where asked.
# Beyond ASCII, the patterns only find candidates: `_escape` decides by Unicode category.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\U0010ffff]")
_CONTROL_AND_LAYOUT = re.compile(r"[\x00-\x1f\x7f-\U0010ffff]")
# Controls, format characters (bidi overrides and isolates, zero-width characters, BOM) and line
# and paragraph separators: invisible or reordering, they break columns and can make text read as
# something else in terminals that apply bidi.
# The zero-width joiner and non-joiner are kept: they reorder nothing, and emoji sequences and
# Persian or Indic names need them.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def is_hidden(char: str) -> bool:
    """A control, format or separator character that `printable` shows as an escape."""
    return char not in _JOINERS and unicodedata.category(char) in _HIDDEN


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return char.encode("unicode_escape").decode("ascii") if is_hidden(char) else char


def _escape_control(match: re.Match[str]) -> str:
    char = match.group(0)
    if unicodedata.category(char) != "Cc":
        return char
    return char.encode("unicode_escape").decode("ascii")


def printable(text: str, *, keep_layout: bool = False, controls_only: bool = False) -> str:
    """`text` with control and invisible characters shown as escapes (`\\x1b`, `\\u202e`): data
    never drives a terminal, and never hides or reorders what is shown.

    `keep_layout` keeps tab and newline (multi-line messages); otherwise they are escaped too.
    `controls_only` escapes control characters only: for text that becomes data (a paste into a
    field), where a format character may be the user's own and must survive.
    """
    pattern = _CONTROL if keep_layout else _CONTROL_AND_LAYOUT
    return pattern.sub(_escape_control if controls_only else _escape, text)


def safe_text(text: str, *, keep_layout: bool = False) -> str:
    """Text from data, config, files or Klaviyo, ready to show: keys masked, controls visible."""
    return printable(redact(text), keep_layout=keep_layout)
