"""Keeping API keys out of text: masks for display and a scrub for messages from anywhere.

A private Klaviyo key is `pk_` plus letters and digits. Anything key-shaped in free text (config
values, Klaviyo's error details, exception messages) is replaced by its mask before it is stored
or shown, so even a server that echoes the key back cannot leak it.
"""

from __future__ import annotations

import re

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
    if key:
        key = key.strip()
        if key:
            text = text.replace(key, mask_key(key))
    return KEY_PATTERN.sub(lambda m: mask_key(m.group(0)), text)
