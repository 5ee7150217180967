"""Writing the TOML configuration: edits in place, so comments and key order survive.

Merge key by key (assigning whole tables from dicts would drop the comments inside them), skip
values that did not change, write atomically (temp file in the same folder, then os.replace), create
the file 0600, and never overwrite a file that is broken or changed on disk since it was read.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AbstractTable, Table

from klaviyo_tui.store import paths
from klaviyo_tui.store.config import (
    DEFAULT_BASE_URL,
    DEFAULT_REVISION,
    PROFILE_FIELDS,
    Config,
    ConfigError,
    Connection,
    Export,
    Segment,
    config_from_data,
    read_document,
)
from klaviyo_tui.store.sync_config import DEFAULT_MAX_REMOVAL_RATIO, SyncSettings

_HEADER = (
    "klaviyo-tui configuration (edited by the app; your comments and key order are kept).",
    "API keys never go here: they live in the OS keyring or the KLAVIYO_API_KEY variable.",
)

_Node = Container | AbstractTable


def _plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _set(table: _Node, key: str, value: Any, default: Any = None) -> None:
    """Set one leaf; None removes it; an unchanged value (or an absent default) is left alone."""
    if value is None:
        if key in table:
            del table[key]
        return
    if isinstance(value, tuple):
        value = list(value)
    if key in table:
        if _plain(table[key]) != value:
            table[key] = value
    elif value != default:
        table[key] = value


def _child(parent: _Node, key: str, *, super_table: bool = False) -> Any:
    if key not in parent or not isinstance(parent[key], AbstractTable):
        parent[key] = tomlkit.table(is_super_table=super_table)
    return parent[key]


def _atomic_write(path: Path, text: str) -> None:
    """Temp file in the same folder, fsync, `os.replace`; keeps an existing file's mode."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ConfigError(
            f"cannot save the config file {path}: {exc.strerror or exc}. The file was not "
            "changed; check that its folder is writable, or point --config elsewhere."
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _put_sync(t: Any, sync: SyncSettings) -> None:
    """The sync keys (sync_config): defaults are left out of a table that does not have them."""
    _set(t, "mode", sync.mode, "upsert")
    _set(t, "incremental", sync.incremental, False)
    _set(t, "max_removal_ratio", sync.max_removal_ratio, DEFAULT_MAX_REMOVAL_RATIO)
    _set(t, "max_removals", sync.max_removals)
    sub = sync.subscribe
    if sub is None:
        _set(t, "subscribe", None)
        return
    wanted = {
        "channel": sub.channel,
        "consented_at_column": sub.consented_at_column,
        "historical": sub.historical,
        "asserted_at": sub.asserted_at,
        "asserted_by": sub.asserted_by,
    }
    wanted = {k: v for k, v in wanted.items() if v is not None}
    current = t.get("subscribe")
    if isinstance(current, Table):  # a [exports.NAME.subscribe] sub-table: merge, keep comments
        for key in [k for k in current if k not in wanted]:
            del current[key]
        for key, value in wanted.items():
            _set(current, key, value)
    elif _plain(current) != wanted:
        inline = tomlkit.inline_table()
        inline.update(wanted)
        t["subscribe"] = inline


class ConfigStore:
    """The document kept for edits. A broken file raises `ConfigError` and is never written."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.config_path()
        self.reload()

    def reload(self) -> None:
        """Re-read the file, dropping unsaved edits."""
        doc, self._loaded_text = read_document(self.path)
        if doc is None:
            doc = tomlkit.document()
            for line in _HEADER:
                doc.add(tomlkit.comment(line))
            doc.add(tomlkit.nl())
        config_from_data(doc.unwrap(), self.path)
        self._doc = doc

    @property
    def config(self) -> Config:
        return config_from_data(self._doc.unwrap(), self.path)

    def _section(self, key: str) -> Any:
        return _child(self._doc, key, super_table=True)

    def _remove(self, section: str, name: str) -> None:
        if section in self._doc and name in self._doc[section]:
            del self._doc[section][name]
            if not _plain(self._doc[section]):
                del self._doc[section]

    @staticmethod
    def _name(name: str) -> str:
        if not name or not name.strip():
            raise ConfigError("a name can't be empty")
        return name

    def put_connection(self, c: Connection) -> None:
        new = c.name not in self._section("connections")
        t = _child(self._section("connections"), self._name(c.name))
        _set(t, "display_name", c.display_name)
        _set(t, "base_url", c.base_url, DEFAULT_BASE_URL)
        _set(t, "revision", c.revision, DEFAULT_REVISION)
        _set(t, "consent_accepted_at", c.consent_accepted_at)
        _set(t, "consent_accepted_by", c.consent_accepted_by)
        if new:
            t.add(tomlkit.nl())  # a blank line before whatever table follows

    def remove_connection(self, name: str) -> None:
        self._remove("connections", name)

    def put_segment(self, s: Segment) -> None:
        new = s.name not in self._section("segments")
        t = _child(self._section("segments"), self._name(s.name))
        _set(t, "source", s.source)
        _set(t, "query", s.query)
        _set(t, "filter", s.filter)
        if new:
            t.add(tomlkit.nl())

    def remove_segment(self, name: str) -> None:
        self._remove("segments", name)

    def put_export(self, e: Export) -> None:
        t = _child(self._section("exports"), self._name(e.name))
        _set(t, "connection", e.connection)
        _set(t, "list_id", e.list_id)
        _set(t, "list_name", e.list_name)
        _set(t, "segments", e.segments)
        _set(t, "default_region", e.default_region, "US")
        _set(t, "schedule", e.schedule)
        _put_sync(t, e.sync)
        new = "mapping" not in t
        m = _child(t, "mapping")
        for name in PROFILE_FIELDS:
            _set(m, name, getattr(e.mapping, name))
        location = dict(e.mapping.location)
        current = m.get("location")
        if isinstance(current, Table) and location:  # a [..mapping.location] sub-table: merge
            for key in [k for k in current if k not in location]:
                del current[key]
            for key, column in location.items():
                _set(current, key, column)
        elif location and _plain(current) != location:  # inline tables hold no comments: rebuild
            inline = tomlkit.inline_table()
            inline.update(location)
            m["location"] = inline
        elif not location:
            _set(m, "location", None)
        _set(m, "properties", e.mapping.properties or None)
        if new:
            m.add(tomlkit.nl())

    def remove_export(self, name: str) -> None:
        self._remove("exports", name)

    def dumps(self) -> str:
        return tomlkit.dumps(self._doc)

    def save(self) -> None:
        """Validate, then write atomically; refuses when the file changed on disk since loading."""
        text = self.dumps()
        config_from_data(tomlkit.parse(text).unwrap(), self.path)
        try:
            on_disk: str | None = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            on_disk = None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {self.path}: {exc}") from None
        if on_disk is not None and on_disk != self._loaded_text:
            raise ConfigError(
                f"{self.path} was changed by something else since it was loaded; "
                "your edit was not saved. Reload and make the change again."
            )
        if on_disk is not None and on_disk == text:
            return
        _atomic_write(self.path, text)
        self._loaded_text = text
