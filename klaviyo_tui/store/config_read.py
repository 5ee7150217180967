"""Reading the TOML configuration: the file (a symlink's target; line and column on a syntax
error), then its data checked key by key into the typed views of `config`.

Loading is strict about syntax, types and unknown keys (each message names the file, the table and
what to write instead) but leaves cross-references to `Config.problems`, so one broken export does
not stop the others from opening. An API key found anywhere in the file is refused, never echoed.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import date, datetime
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.toml_document import TOMLDocument

from klaviyo_tui.errors import AppError
from klaviyo_tui.klaviyo.urls import base_url_problem
from klaviyo_tui.redaction import KEY_PATTERN, mask_key
from klaviyo_tui.store import paths
from klaviyo_tui.store.config import (
    DEFAULT_BASE_URL,
    DEFAULT_FIELD_POLICY,
    DEFAULT_REVISION,
    FIELD_POLICIES,
    LOCATION_FIELDS,
    PROFILE_FIELDS,
    Config,
    ConfigError,
    Connection,
    Export,
    Mapping,
    Segment,
)
from klaviyo_tui.store.secrets import ENV_VAR
from klaviyo_tui.store.sync_config import SYNC_KEYS, parse_sync

_SECRET_KEY_NAMES = frozenset({"api_key", "apikey", "key", "secret", "token", "private_key"})
_NO_SECRETS = (
    "API keys never go in the config file: remove it, then store the key from the TUI "
    f"(it goes to the OS keyring) or set the {ENV_VAR} environment variable"
)
_TOP_KEYS = ("connections", "segments", "exports")
_CONNECTION_KEYS = (
    "display_name",
    "base_url",
    "revision",
    "consent_accepted_at",
    "consent_accepted_by",
)
_SEGMENT_KEYS = ("source", "query", "filter")
_EXPORT_KEYS = (
    "connection",
    "list_id",
    "list_name",
    "segments",
    "default_region",
    "schedule",
    "on_invalid_field",
    *SYNC_KEYS,
    "mapping",
    "confirm_timeout_minutes",
    "verify",
)
_MAPPING_KEYS = (*PROFILE_FIELDS, "location", "properties")


def _where(path: Path, table: str, key: str | None = None) -> str:
    return f"{path}: [{table}]" + (f" {key}" if key else "")


def _check_no_secrets(data: Any, path: Path, table: str) -> None:
    """Refuse a key named like a secret or any value shaped like a private key (never echoed)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).lower() in _SECRET_KEY_NAMES:
                raise ConfigError(f"{_where(path, table, key)}: {_NO_SECRETS}.")
            _check_no_secrets(value, path, f"{table}.{key}" if table else str(key))
    elif isinstance(data, list):
        for item in data:
            _check_no_secrets(item, path, table)
    elif isinstance(data, str) and (found := KEY_PATTERN.search(data)):
        where = _where(path, *table.rsplit(".", 1)) if "." in table else f"{path}: {table}"
        raise ConfigError(
            f"{where} holds what looks like an API key ({mask_key(found.group(0))}). {_NO_SECRETS}."
        )


def _table_of(value: Any, path: Path, table: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {table} must be a table ([{table}]), not {_kind(value)}.")
    return value


def _kind(value: Any) -> str:
    return {
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _known(data: dict[str, Any], allowed: tuple[str, ...], path: Path, table: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{_where(path, table, key)}: unknown key. Known keys here: "
                f"{', '.join(allowed)}. Fix the spelling or remove the line."
            )


def _text(
    data: dict[str, Any], key: str, path: Path, table: str, *, required: bool = False
) -> str | None:
    value = data.get(key)
    if isinstance(value, datetime | date):  # an unquoted TOML date-time is fine for timestamps
        return value.isoformat()
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ConfigError(f'{_where(path, table, key)}: missing; add {key} = "...".')
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{_where(path, table, key)}: must be a string in quotes, not {_kind(value)}."
        )
    return value.strip()


def _texts(data: dict[str, Any], key: str, path: Path, table: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{_where(path, table, key)}: must be a list of strings, e.g. ["a"].')
    return tuple(v.strip() for v in value if v.strip())


def _column(data: dict[str, Any], key: str, path: Path, table: str) -> str | None:
    """A column name exactly as written (spaces and all: the file's header decides); "" is none."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{_where(path, table, key)}: must be a column name in quotes, not {_kind(value)}."
        )
    return value


def _columns(data: dict[str, Any], key: str, path: Path, table: str) -> tuple[str, ...]:
    """Column names exactly as written, in order; "" entries are left out."""
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f'{_where(path, table, key)}: must be a list of column names, e.g. ["a"].'
        )
    return tuple(v for v in value if v)


def check_base_url(url: str) -> str | None:
    """None when `url` is acceptable (https, or http only on loopback), else what is wrong."""
    return base_url_problem(url)


def _connection(name: str, data: dict[str, Any], path: Path) -> Connection:
    table = f"connections.{name}"
    _known(data, _CONNECTION_KEYS, path, table)
    base_url = _text(data, "base_url", path, table) or DEFAULT_BASE_URL
    if problem := check_base_url(base_url):
        raise ConfigError(f"{_where(path, table, 'base_url')}: {problem}")
    return Connection(
        name=name,
        display_name=_text(data, "display_name", path, table) or name,
        base_url=base_url.rstrip("/"),
        revision=_text(data, "revision", path, table) or DEFAULT_REVISION,
        consent_accepted_at=_text(data, "consent_accepted_at", path, table),
        consent_accepted_by=_text(data, "consent_accepted_by", path, table),
    )


def _segment(name: str, data: dict[str, Any], path: Path) -> Segment:
    table = f"segments.{name}"
    _known(data, _SEGMENT_KEYS, path, table)
    return Segment(
        name=name,
        source=_text(data, "source", path, table, required=True) or "",
        query=_text(data, "query", path, table),
        filter=_text(data, "filter", path, table),
    )


def _mapping(data: dict[str, Any], path: Path, table: str) -> Mapping:
    _known(data, _MAPPING_KEYS, path, table)
    email = _column(data, "email", path, table)
    if not email:
        raise ConfigError(
            f"{_where(path, table, 'email')}: missing. Every export needs the column holding "
            'the email address, e.g. email = "Email".'
        )
    location = _table_of(data.get("location", {}), path, f"{table}.location")
    _known(location, LOCATION_FIELDS, path, f"{table}.location")
    fields = {f: _column(data, f, path, table) for f in PROFILE_FIELDS if f != "email"}
    where = f"{table}.location"
    return Mapping(
        email=email,
        location={k: v for k in location if (v := _column(location, k, path, where))},
        properties=_columns(data, "properties", path, table),
        **fields,
    )


def _export(name: str, data: dict[str, Any], path: Path) -> Export:
    table = f"exports.{name}"
    _known(data, _EXPORT_KEYS, path, table)
    if "mapping" not in data:
        raise ConfigError(
            f'{_where(path, table)}: no mapping. Add [{table}.mapping] with email = "Column".'
        )
    mapping = _mapping(
        _table_of(data["mapping"], path, f"{table}.mapping"), path, f"{table}.mapping"
    )
    return Export(
        name=name,
        connection=_text(data, "connection", path, table, required=True) or "",
        list_id=_text(data, "list_id", path, table, required=True) or "",
        segments=_texts(data, "segments", path, table),
        mapping=mapping,
        default_region=(_text(data, "default_region", path, table) or "US").upper(),
        schedule=_text(data, "schedule", path, table),
        list_name=_text(data, "list_name", path, table),
        confirm_timeout_minutes=_minutes(data, "confirm_timeout_minutes", path, table),
        verify=_verify(data, path, table),
        on_invalid_field=_field_policy(data, path, table),
        sync=parse_sync(data, path, table, as_error=ConfigError),
    )


def _minutes(data: dict[str, Any], key: str, path: Path, table: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(
            f"{_where(path, table, key)}: must be a positive number of minutes, e.g. {key} = 30."
        )
    return float(value)


def _verify(data: dict[str, Any], path: Path, table: str) -> str:
    from klaviyo_tui.run.options import parse_verify  # light: no pandas

    text = _text(data, "verify", path, table) or "off"
    try:
        return parse_verify(text).mode
    except AppError:
        raise ConfigError(
            f'{_where(path, table, "verify")}: {text!r} is not a verification mode; use "off", '
            '"full" (read every member back after the run) or "sample:N".'
        ) from None


def _field_policy(data: dict[str, Any], path: Path, table: str) -> str:
    value = _text(data, "on_invalid_field", path, table) or DEFAULT_FIELD_POLICY
    if value not in FIELD_POLICIES:
        raise ConfigError(
            f"{_where(path, table, 'on_invalid_field')}: {value!r} is not a policy. Use "
            '"drop_field" (send the row without the unusable field, the default) or '
            '"reject_row" (keep the whole row out and list it as invalid).'
        )
    return value


def config_from_data(data: dict[str, Any], path: Path) -> Config:
    """Validate plain TOML data (syntax already fine) into a `Config`; raises `ConfigError`."""
    _check_no_secrets(data, path, "")
    _known(data, _TOP_KEYS, path, "top level")
    sections = {key: _table_of(data.get(key, {}), path, key) for key in _TOP_KEYS}

    def each(key: str) -> list[tuple[str, dict[str, Any]]]:
        return [(n, _table_of(v, path, f"{key}.{n}")) for n, v in sections[key].items()]

    return Config(
        connections={n: _connection(n, d, path) for n, d in each("connections")},
        segments={n: _segment(n, d, path) for n, d in each("segments")},
        exports={n: _export(n, d, path) for n, d in each("exports")},
    )


def config_file(path: Path) -> Path:
    """The file behind `path`: itself, or a symlink's final target (a dotfiles repo).

    The target is what gets read and atomically replaced, so the link stays a link. A dangling
    link, or anything but a regular file (a FIFO would hang the read, a device can't be replaced),
    is a `ConfigError`. A missing plain path is fine: it is created on the first save.
    """
    linked = path.is_symlink()
    target = Path(os.path.realpath(path)) if linked else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        if not linked:
            return path
        raise ConfigError(
            f"the config file {path} is a symbolic link to {target}, which does not exist.",
            hint="Create the file it points to or fix the link, or point --config at a file.",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}.") from None
    if not stat.S_ISREG(mode):
        what = f"is a symbolic link to {target}, which is" if linked else "is"
        raise ConfigError(
            f"the config file {path} {what} not a regular file.",
            hint="Point --config (or KLAVIYO_TUI_CONFIG, or the link) at a regular TOML file.",
        )
    return target


def read_document(path: Path) -> tuple[TOMLDocument | None, str | None]:
    """(document, text), or (None, None) when the file doesn't exist. Raises `ConfigError`."""
    try:
        text = config_file(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    try:
        return tomlkit.parse(text), text
    except ParseError as exc:
        problem = re.sub(r" at line \d+ col \d+$", "", str(exc))
        raise ConfigError(
            f"{path}, line {exc.line}, column {exc.col + 1}: {problem}. "
            "Fix the file in an editor; it will not be overwritten while it is broken."
        ) from None
    except (TOMLKitError, ValueError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the file in an editor.") from None


def load_config(path: Path | None = None) -> Config:
    """The typed config; an empty `Config` when the file doesn't exist yet."""
    path = path or paths.config_path()
    doc, _ = read_document(path)
    return Config() if doc is None else config_from_data(doc.unwrap(), path)
