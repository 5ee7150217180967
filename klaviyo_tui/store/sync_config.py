"""An export's sync settings: how a run treats rows sent before, customers who left, consent.

Keys in the export's table (all optional; an export that says nothing runs as before):

    mode = "upsert"            # or "mirror": the list follows the segment (safe removals)
    incremental = true         # send only new or changed rows (new exports get this)
    max_removal_ratio = 0.10   # mirror: refuse a run that would remove more of the list
    max_removals = 500         # mirror: and/or more profiles than this
    subscribe = { channel = "email", consented_at_column = "optin_at", historical = true }

`subscribe` also records who asserted the consent and when (`asserted_at`, `asserted_by`),
written by `exports create/edit` after showing `store.consent.SUBSCRIBE_CONSENT_TEXT`; a run
refuses to subscribe without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from klaviyo_tui.errors import AppError, ExitCode

MODES: tuple[str, ...] = ("upsert", "mirror")
CHANNELS: tuple[str, ...] = ("email", "sms", "both")
DEFAULT_MAX_REMOVAL_RATIO = 0.10
SYNC_KEYS: tuple[str, ...] = (
    "mode",
    "incremental",
    "max_removal_ratio",
    "max_removals",
    "subscribe",
)
#: What `exports edit --set` can change about sync (services/export_sync.py).
SYNC_EDIT_KEYS: tuple[str, ...] = (
    "mode",
    "incremental",
    "max_removal_ratio",
    "max_removals",
    "subscribe",  # off | email | sms | both
    "subscribe.consented_at_column",
    "subscribe.historical",
)
SUBSCRIBE_KEYS: tuple[str, ...] = (
    "channel",
    "consented_at_column",
    "historical",
    "asserted_at",
    "asserted_by",
)


class SyncConfigError(AppError):
    """A sync setting that cannot be used; the message names the key and the fix."""

    title = "Configuration problem"
    default_hint = (
        "Fix the export's sync keys in the config file, or with `klaviyo-tui exports edit`."
    )
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe the export's rows to marketing on `channel` after the profile import."""

    channel: str = "email"  # email | sms | both
    consented_at_column: str | None = None  # when each row consented (needed when historical)
    historical: bool = False  # consent given earlier: no double opt-in mail, needs a past time
    asserted_at: str | None = None  # ISO 8601 UTC: when the user asserted the consent
    asserted_by: str | None = None  # OS user name

    @property
    def email(self) -> bool:
        return self.channel in ("email", "both")

    @property
    def sms(self) -> bool:
        return self.channel in ("sms", "both")

    @property
    def asserted(self) -> bool:
        return bool(self.asserted_at)


@dataclass(frozen=True, slots=True)
class SyncSettings:
    mode: str = "upsert"
    incremental: bool = False
    max_removal_ratio: float = DEFAULT_MAX_REMOVAL_RATIO
    max_removals: int | None = None
    subscribe: Subscribe | None = None

    @property
    def mirror(self) -> bool:
        return self.mode == "mirror"


def _where(path: Path, table: str, key: str) -> str:
    return f"{path}: [{table}] {key}"


def _text(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise SyncConfigError(f"{where}: must be a string in quotes.")
    return value.strip()


def _column(data: dict[str, Any], key: str, where: str) -> str | None:
    """A column name exactly as written (spaces and all: the file's header decides); "" is none."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SyncConfigError(f"{where}: must be a column name in quotes.")
    return value


def _flag(data: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise SyncConfigError(f"{where}: must be true or false (no quotes).")
    return value


def _subscribe(value: Any, path: Path, table: str) -> Subscribe | None:
    where = _where(path, table, "subscribe")
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        raise SyncConfigError(
            f'{where}: must be a table, e.g. subscribe = {{ channel = "email", '
            'consented_at_column = "optin_at", historical = true }.'
        )
    for key in value:
        if key not in SUBSCRIBE_KEYS:
            raise SyncConfigError(
                f"{where}.{key}: unknown key. Known keys here: {', '.join(SUBSCRIBE_KEYS)}."
            )
    channel = (_text(value, "channel", f"{where}.channel") or "email").lower()
    if channel not in CHANNELS:
        raise SyncConfigError(
            f'{where}.channel: {channel!r} is not a channel. Use "email", "sms" or "both".'
        )
    historical = _flag(value, "historical", f"{where}.historical", False)
    column = _column(value, "consented_at_column", f"{where}.consented_at_column")
    if historical and not column:
        raise SyncConfigError(
            f"{where}: historical = true needs consented_at_column, the column holding when "
            "each customer consented (Klaviyo requires a past consent time for a historical "
            "import)."
        )
    return Subscribe(
        channel=channel,
        consented_at_column=column,
        historical=historical,
        asserted_at=_text(value, "asserted_at", f"{where}.asserted_at"),
        asserted_by=_text(value, "asserted_by", f"{where}.asserted_by"),
    )


def parse_sync(
    data: dict[str, Any],
    path: Path,
    table: str,
    *,
    as_error: Callable[[str], AppError] = SyncConfigError,
) -> SyncSettings:
    """The sync keys of one export table (`table` is e.g. "exports.weekly"); a problem raises
    `as_error(message)` (config_read.py passes ConfigError)."""
    try:
        return _parse(data, path, table)
    except SyncConfigError as error:
        raise as_error(error.message) from None


def _parse(data: dict[str, Any], path: Path, table: str) -> SyncSettings:
    mode = (_text(data, "mode", _where(path, table, "mode")) or "upsert").lower()
    if mode not in MODES:
        raise SyncConfigError(
            f'{_where(path, table, "mode")}: {mode!r} is not a mode. Use "upsert" (send the '
            'rows, never remove anyone) or "mirror" (the list follows the segment).'
        )
    ratio = data.get("max_removal_ratio", DEFAULT_MAX_REMOVAL_RATIO)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise SyncConfigError(
            f"{_where(path, table, 'max_removal_ratio')}: must be a number from 0 to 1 "
            "(0.10 = a run may remove at most 10% of the list)."
        )
    most = data.get("max_removals")
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 0):
        raise SyncConfigError(
            f"{_where(path, table, 'max_removals')}: must be a whole number of profiles "
            "(0 or more)."
        )
    return SyncSettings(
        mode=mode,
        incremental=_flag(data, "incremental", _where(path, table, "incremental"), False),
        max_removal_ratio=float(ratio),
        max_removals=most,
        subscribe=_subscribe(data.get("subscribe"), path, table),
    )


def sync_problems(settings: SyncSettings, phone_mapped: bool) -> list[str]:
    """Settings that parse but cannot run with this mapping."""
    sub = settings.subscribe
    if sub is not None and sub.sms and not phone_mapped:
        return [
            f'subscribe channel "{sub.channel}" needs a phone_number column in the mapping '
            "(SMS consent is given to a phone number)"
        ]
    return []
