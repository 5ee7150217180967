"""Writing the TOML configuration: the file is the person's, so an edit touches only its item.

An item (`[connections.x]`, `[segments.x]`, `[exports.x]`) is found wherever it lives in any valid
layout: a `[kind.name]` table anywhere, headers split by other tables, dotted keys, an inline table
inside `[kind]` or `kind = {...}`, `mapping`/`location` as sub-tables or inline tables. Its values
are edited in place (`toml_edit`); every other item, comment and blank line keeps its bytes. A new
item is appended at the end of the file as its own `[kind.name]` table (inside `kind = {...}`
when the file made the whole kind one inline table, as TOML then requires). After each edit the
text is parsed again and checked: the item reads back as written and everything else reads back
unchanged, or the edit is refused and nothing changes.

What gets written is data-driven: the `*_FIELDS` tables below map each key to its default (a value
equal to its default is not added; None removes the line). Adding a key to an export is the
dataclass field in config.py, its reading in config_read.py (`_EXPORT_KEYS`, `_export`) and one
line in `EXPORT_FIELDS` here.

Saving writes atomically (temp file in the same folder, fsync, `os.replace`), creates the file
0600 and keeps an existing file's mode, follows a symlink to its target (the link stays a link),
and never overwrites a broken file or one that changed on disk since it was read.
"""

from __future__ import annotations

import contextlib
import copy
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import InlineTable, Table
from tomlkit.toml_document import TOMLDocument

from klaviyo_tui.store import paths
from klaviyo_tui.store.config import (
    DEFAULT_BASE_URL,
    DEFAULT_FIELD_POLICY,
    DEFAULT_REVISION,
    LOCATION_FIELDS,
    PROFILE_FIELDS,
    Config,
    ConfigError,
    Connection,
    Export,
    Segment,
)
from klaviyo_tui.store.config_read import config_file, config_from_data, read_document
from klaviyo_tui.store.sync_config import DEFAULT_MAX_REMOVAL_RATIO, SUBSCRIBE_KEYS, SyncSettings
from klaviyo_tui.store.toml_edit import Leaf, Part, Sub, build, drop, emptied, merge, parts, same

_HEADER = (
    "klaviyo-tui configuration (edited by the app; your comments and key order are kept).",
    "API keys never go here: they live in the OS keyring or the KLAVIYO_API_KEY variable.",
)

NAME = object()  # a default meaning "the item's own name" (display_name)

# key -> default, in the order a new item is written.
CONNECTION_FIELDS: dict[str, Any] = {
    "display_name": NAME,
    "base_url": DEFAULT_BASE_URL,
    "revision": DEFAULT_REVISION,
    "consent_accepted_at": None,
    "consent_accepted_by": None,
}
SEGMENT_FIELDS: dict[str, Any] = {"source": None, "query": None, "filter": None}
EXPORT_FIELDS: dict[str, Any] = {
    "connection": None,
    "list_id": None,
    "list_name": None,
    "segments": (),
    "default_region": "US",
    "schedule": None,
    "on_invalid_field": DEFAULT_FIELD_POLICY,
    "confirm_timeout_minutes": None,
    "verify": "off",
}
MAPPING_FIELDS: dict[str, Any] = {**dict.fromkeys(PROFILE_FIELDS), "properties": ()}


def _leaves(obj: Any, fields: dict[str, Any], name: str) -> dict[str, Leaf | Sub]:
    return {
        key: Leaf(getattr(obj, key), name if default is NAME else default)
        for key, default in fields.items()
    }


def connection_spec(c: Connection) -> Sub:
    return Sub(_leaves(c, CONNECTION_FIELDS, c.name), inline=False)


def segment_spec(s: Segment) -> Sub:
    return Sub(_leaves(s, SEGMENT_FIELDS, s.name), inline=False)


def export_spec(e: Export) -> Sub:
    """The export's keys, then `[...mapping]` (a header when new) with `location = {...}`.
    Mapping values are column names: written and compared exactly, spaces and all."""
    location: dict[str, Leaf | Sub] = {
        f: Leaf(e.mapping.location.get(f), exact=True) for f in LOCATION_FIELDS
    }
    mapping: dict[str, Leaf | Sub] = {
        key: Leaf(getattr(e.mapping, key), default, exact=True)
        for key, default in MAPPING_FIELDS.items()
    }
    mapping["location"] = Sub(location, inline=True)
    return Sub(
        {
            **_leaves(e, EXPORT_FIELDS, e.name),
            **_sync_spec(e.sync),
            "mapping": Sub(mapping, inline=False),
        }
    )


def _sync_spec(sync: SyncSettings) -> dict[str, Leaf | Sub]:
    """The sync keys (store/sync_config.py); `subscribe` is an inline table, gone when off."""
    sub = sync.subscribe
    subscribe: dict[str, Leaf | Sub] = {
        k: Leaf(getattr(sub, k) if sub is not None else None, exact=k == "consented_at_column")
        for k in SUBSCRIBE_KEYS
    }
    return {
        "mode": Leaf(sync.mode, "upsert"),
        "incremental": Leaf(sync.incremental, False),
        "max_removal_ratio": Leaf(sync.max_removal_ratio, DEFAULT_MAX_REMOVAL_RATIO),
        "max_removals": Leaf(sync.max_removals),
        "subscribe": Sub(subscribe, inline=True),
    }


def _item_parts(doc: TOMLDocument, kind: str, name: str) -> list[Part]:
    """Every fragment of one item, wherever the file put it."""
    holders = [p.item for p in parts([doc], kind) if isinstance(p.item, Table | InlineTable)]
    return [p for p in parts(holders, name) if isinstance(p.item, Table | InlineTable)]


def _without(data: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """`data` minus one item, with kinds left empty treated as absent."""
    rest = copy.deepcopy(data)
    if isinstance(rest.get(kind), dict):
        rest[kind].pop(name, None)
    return {k: v for k, v in rest.items() if v != {}}


def _matches(data: Any, spec: Sub) -> bool:
    """Whether plain `data` reads back as `spec` wrote it."""
    if not isinstance(data, dict):
        return False
    for key, want in spec.fields.items():
        if isinstance(want, Sub):
            if not _matches(data.get(key, {}), want):
                return False
        elif want.value is None:
            if key in data:
                return False
        elif not same(data.get(key, want.default), want.value, exact=want.exact):
            return False
    return True


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


class ConfigStore:
    """The text kept for edits. A broken file raises `ConfigError` and is never written."""

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
        self._text = doc.as_string()

    @property
    def config(self) -> Config:
        return config_from_data(self._doc.unwrap(), self.path)

    @staticmethod
    def _name(name: str) -> str:
        if not name or not name.strip():
            raise ConfigError("a name can't be empty", hint="Give it a name, then save again.")
        return name

    # ---- edits -----------------------------------------------------------------------------------

    def put_connection(self, c: Connection) -> None:
        self._put("connections", self._name(c.name), connection_spec(c))

    def remove_connection(self, name: str) -> None:
        self._remove("connections", name)

    def put_segment(self, s: Segment) -> None:
        self._put("segments", self._name(s.name), segment_spec(s))

    def remove_segment(self, name: str) -> None:
        self._remove("segments", name)

    def put_export(self, e: Export) -> None:
        self._put("exports", self._name(e.name), export_spec(e))

    def remove_export(self, name: str, *, prune_segments: bool = False) -> list[str]:
        """Remove an export; with `prune_segments`, also the segments no other export uses.

        One edit: either all of it applies or none. Returns the names of the removed segments.
        """
        export = self.config.exports.get(name)
        with self._transaction():
            self._remove("exports", name)
            if not prune_segments or export is None:
                return []
            config = self.config
            used = {s for other in config.exports.values() for s in other.segments}
            orphans = [
                s for s in dict.fromkeys(export.segments) if s not in used and s in config.segments
            ]
            for segment in orphans:
                self._remove("segments", segment)
            return orphans

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        saved = self._doc, self._text
        try:
            yield
        except BaseException:
            self._doc, self._text = saved
            raise

    def _put(self, kind: str, name: str, spec: Sub) -> None:
        doc = tomlkit.parse(self._text)
        found = _item_parts(doc, kind, name)
        if not found:
            self._commit(self._appended(doc, kind, name, spec), kind, name, spec)
            return
        drop(doc, merge(found, spec))
        text = doc.as_string()
        if text == self._text:
            return  # nothing changed
        doc = self._parse(text)
        if doomed := emptied(_item_parts(doc, kind, name), spec):  # e.g. location = {} left
            drop(doc, doomed)
            text = doc.as_string()
            doc = self._parse(text)
        if name not in doc.unwrap().get(kind, {}):  # it was dotted keys only, all removed
            text = self._appended(doc, kind, name, spec)
            doc = self._parse(text)
        self._commit(text, kind, name, spec, doc)

    def _appended(self, doc: TOMLDocument, kind: str, name: str, spec: Sub) -> str:
        """The text with a new item: `[kind.name]` at the end, or inside `kind = {...}`."""
        holders = [p.item for p in parts([doc], kind) if isinstance(p.item, InlineTable)]
        if holders:
            holders[0].append(name, build(spec, inline=True))
            return doc.as_string()
        item = tomlkit.document()
        outer = tomlkit.table(is_super_table=True)
        outer.append(name, build(spec, inline=False))
        item.append(kind, outer)
        text = doc.as_string()
        if text and not text.endswith("\n"):
            text += "\n"
        if text.strip() and not text.endswith("\n\n"):
            text += "\n"
        return text + item.as_string()

    def _remove(self, kind: str, name: str) -> None:
        doc = tomlkit.parse(self._text)
        found = _item_parts(doc, kind, name)
        if found:
            drop(doc, found)
            self._commit(doc.as_string(), kind, name, None)

    def _parse(self, text: str) -> TOMLDocument:
        try:
            return tomlkit.parse(text)
        except (TOMLKitError, ValueError) as exc:
            raise self._refused(f"the result would not be valid TOML ({exc})") from None

    def _refused(self, why: str) -> ConfigError:
        return ConfigError(
            f"could not make this edit to {self.path} in place: {why}. Nothing was changed.",
            hint="Make the change in an editor, and please report the file's layout as a bug.",
        )

    def _commit(
        self, text: str, kind: str, name: str, spec: Sub | None, doc: TOMLDocument | None = None
    ) -> None:
        """Keep `text` if it reads back right: the item as written (or gone), the rest unchanged."""
        doc = self._parse(text) if doc is None else doc
        try:
            tomllib.loads(text)  # a second, independent parser: other tools must read it too
            before, after = self._doc.unwrap(), doc.unwrap()
        except (tomllib.TOMLDecodeError, TOMLKitError) as exc:
            raise self._refused(f"the result would not be valid TOML ({exc})") from None
        if _without(before, kind, name) != _without(after, kind, name):
            raise self._refused(f"other entries than {kind}.{name} would change")
        items = after.get(kind, {})
        if spec is None and name in items:
            raise self._refused(f"{kind}.{name} would still be there")
        if spec is not None and not _matches(items.get(name), spec):
            raise self._refused(f"{kind}.{name} would not read back as written")
        self._doc, self._text = doc, text

    def dumps(self) -> str:
        return self._text

    def _on_disk(self, target: Path) -> str | None:
        try:
            return target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {self.path}: {exc}") from None

    def changed_on_disk(self) -> bool:
        """Whether something else (the CLI, an editor) changed the file since it was loaded or
        saved here. Reads only; a file that can't be read is a `ConfigError`."""
        return self._on_disk(config_file(self.path)) != self._loaded_text

    def save(self) -> None:
        """Validate, then write atomically; refuses when the file changed on disk since loading.

        A symlinked config file (a dotfiles repo) is replaced at its target, so the link stays.
        """
        text = self._text
        config_from_data(self._doc.unwrap(), self.path)
        target = config_file(self.path)
        on_disk = self._on_disk(target)
        if on_disk != self._loaded_text:
            raise ConfigError(
                f"{self.path} was changed by something else since it was loaded; "
                "your edit was not saved. Reload and make the change again."
            )
        if on_disk is not None and on_disk == text:
            return
        _atomic_write(target, text)
        self._loaded_text = text
