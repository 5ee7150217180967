"""An export's sync settings as `exports create/edit` (and the builder) set them, checked.

New exports are incremental unless told otherwise: a second run sends only what changed. Turning
`subscribe` on, or changing what it asserts (channel, consent column, historical), needs the
person to assert the consent again (`store.consent.subscribe_consent_text`): the front end shows
the text and passes `consent_asserted=True`; the service records who and when.
"""

from __future__ import annotations

__all__ = ["SYNC_EDIT_KEYS", "check_sync", "edit_sync", "new_sync"]

import dataclasses

from klaviyo_tui.services.columns import shown_columns
from klaviyo_tui.services.exports import ExportError
from klaviyo_tui.store.config import Mapping
from klaviyo_tui.store.consent import assert_subscribe
from klaviyo_tui.store.sync_config import (
    CHANNELS,
    DEFAULT_MAX_REMOVAL_RATIO,
    MODES,
    SYNC_EDIT_KEYS,
    Subscribe,
    SyncSettings,
)

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _flag(key: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ExportError(f"{key} must be true or false, not {text!r}")


def _mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in MODES:
        raise ExportError(
            f"mode {text!r} is not a mode",
            hint='Use "upsert" (send rows, never remove) or "mirror" (the list follows the '
            "segment; safe removals of the customers this tool added).",
        )
    return mode


def _ratio(text: str) -> float:
    if not text.strip():  # cleared: the default limit, never none
        return DEFAULT_MAX_REMOVAL_RATIO
    try:
        ratio = float(text)
    except ValueError:
        ratio = -1.0
    if not 0 <= ratio <= 1:
        raise ExportError(
            f"max_removal_ratio {text!r} must be a number from 0 to 1",
            hint="0.10 lets a mirror run remove at most 10% of the list.",
        )
    return ratio


def _count(text: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit():
        raise ExportError(f"max_removals {text!r} must be a whole number (or empty for none)")
    return int(text)


def check_sync(settings: SyncSettings, mapping: Mapping, columns: list[str]) -> None:
    """What a run would refuse: SMS without a phone column, a consent column not in the source,
    subscribing without the consent assertion."""
    sub = settings.subscribe
    if sub is None:
        return
    if sub.sms and not mapping.phone_number:
        raise ExportError(
            f'subscribe channel "{sub.channel}" needs a phone_number column in the mapping',
            hint="Map one with mapping.phone_number=COLUMN, or subscribe to email only.",
        )
    column = sub.consented_at_column
    if column and column not in columns:
        raise ExportError(
            f"consent column {column!r} is not in the source; its columns: "
            f"{shown_columns(columns)}",
            hint="Name the column that holds when each customer consented.",
        )
    if sub.historical and not column:
        raise ExportError(
            "a historical subscription needs the column holding each customer's consent time",
            hint="Set subscribe.consented_at_column=COLUMN.",
        )
    if not sub.asserted:
        raise ExportError(
            "subscribing needs your assertion that these customers consented",
            hint="Read the consent text and accept it (on a terminal, or with --assert-consent).",
        )


def new_sync(
    *,
    mode: str = "upsert",
    incremental: bool = True,
    subscribe: Subscribe | None = None,
    max_removal_ratio: float = DEFAULT_MAX_REMOVAL_RATIO,
    max_removals: int | None = None,
    consent_asserted: bool = False,
) -> SyncSettings:
    """A new export's settings (incremental by default)."""
    if subscribe is not None and consent_asserted:
        subscribe = assert_subscribe(subscribe)
    return SyncSettings(_mode(mode), incremental, max_removal_ratio, max_removals, subscribe)


def edit_sync(
    settings: SyncSettings, changes: dict[str, str], *, consent_asserted: bool = False
) -> SyncSettings:
    """`settings` with the `--set` changes applied (keys from SYNC_EDIT_KEYS)."""
    out = settings
    if "mode" in changes:
        out = dataclasses.replace(out, mode=_mode(changes["mode"]))
    if "incremental" in changes:
        out = dataclasses.replace(out, incremental=_flag("incremental", changes["incremental"]))
    if "max_removal_ratio" in changes:
        out = dataclasses.replace(out, max_removal_ratio=_ratio(changes["max_removal_ratio"]))
    if "max_removals" in changes:
        out = dataclasses.replace(out, max_removals=_count(changes["max_removals"]))
    sub_keys = [k for k in changes if k == "subscribe" or k.startswith("subscribe.")]
    if not sub_keys:
        return out
    channel = changes.get("subscribe", "").strip().lower()
    if channel in ("off", "none", "false"):
        return dataclasses.replace(out, subscribe=None)
    sub = out.subscribe or Subscribe()
    if channel:
        if channel not in CHANNELS:
            raise ExportError(
                f"subscribe {changes['subscribe']!r} is not a channel",
                hint="Use email, sms, both, or off.",
            )
        sub = dataclasses.replace(sub, channel=channel)
    if "subscribe.consented_at_column" in changes:
        column = changes["subscribe.consented_at_column"] or None  # a column name: exact
        sub = dataclasses.replace(sub, consented_at_column=column)
    if "subscribe.historical" in changes:
        historical = _flag("subscribe.historical", changes["subscribe.historical"])
        sub = dataclasses.replace(sub, historical=historical)
    same = out.subscribe is not None and dataclasses.replace(
        sub, asserted_at=None, asserted_by=None
    ) == dataclasses.replace(out.subscribe, asserted_at=None, asserted_by=None)
    if not same or not sub.asserted:  # what is asserted changed (or was never): assert it
        sub = dataclasses.replace(sub, asserted_at=None, asserted_by=None)
        if consent_asserted:
            sub = assert_subscribe(sub)
    return dataclasses.replace(out, subscribe=sub)
