"""Editing a saved export key by key (`exports edit NAME --set key=value`), checked like create.

The edit is applied as a whole: every key is checked (the connection exists, the list is in its
account, the mapped columns are in every source, the filter counts, the schedule parses) before
the config writer changes only what differs, so comments and other tables stay as they were.
A segment that other exports also read is never changed under them: the edited export gets its
own copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Literal

from klaviyo_tui.services.columns import listed_columns
from klaviyo_tui.services.connections import connection_named
from klaviyo_tui.services.export_sync import check_sync, edit_sync
from klaviyo_tui.services.exports import (
    EDIT_KEYS,
    MAPPABLE_FIELDS,
    ExportError,
    SavedExport,
    build_mapping,
    check_columns,
    check_region,
    check_schedule,
    export_named,
    free_segment_name,
    resolve_list,
)
from klaviyo_tui.services.segments import (
    count_rows,
    inspect_source,
    make_segment,
    segment_named,
    users_of,
)
from klaviyo_tui.store.config import Config, Export, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore

_SEGMENT_KEYS = ("source", "query", "filter")


def check_keys(keys: list[str]) -> None:
    """An ExportError for the first key `edit_export` does not know, listing the known ones."""
    for key in keys:
        if key not in EDIT_KEYS:
            plain = [k for k in EDIT_KEYS if not k.startswith("mapping.")]
            raise ExportError(
                f"unknown key {key!r}; keys: {', '.join(plain)}, mapping.FIELD "
                f"(FIELD: {', '.join(MAPPABLE_FIELDS)})",
                hint="Write each change as --set key=value, e.g. --set schedule='0 6 * * 1'.",
            )


def _properties(text: str, columns: list[str]) -> tuple[str, ...] | Literal["all"]:
    """all, none (or empty), or a comma-separated list of columns (services/columns.py)."""
    if text.strip().casefold() == "all":
        return "all"
    if text.strip().casefold() in ("", "none"):
        return ()
    return listed_columns(text, columns)


def _segments(
    config: Config, export: Export, changes: dict[str, str]
) -> tuple[tuple[Segment, ...], list[str]]:
    """The segments the export reads after the edit, and notes about them."""
    current = tuple(segment_named(config, s) for s in export.segments)
    touched = [k for k in _SEGMENT_KEYS if k in changes]
    if "segments" in changes:
        if touched:
            raise ExportError(
                f"set segments, or {', '.join(touched)} of the export's segment, not both"
            )
        names = [s.strip() for s in changes["segments"].split(",") if s.strip()]
        if not names:
            raise ExportError("an export needs at least one segment", hint="Set segments=A,B.")
        return tuple(segment_named(config, n) for n in dict.fromkeys(names)), []
    if not touched:
        return current, []
    if len(current) != 1:
        raise ExportError(
            f"export {export.name!r} reads {len(current)} segments "
            f"({', '.join(export.segments)}); {', '.join(touched)} belong to one segment",
            hint="Point the export at other segments with --set segments=A,B "
            "(create them with `klaviyo-tui segments create`).",
        )
    old = current[0]
    new = make_segment(
        old.name,
        changes.get("source", old.source),
        query=changes.get("query", old.query),
        filter_text=changes.get("filter", old.filter),
    )
    if "source" not in changes:
        new = dataclasses.replace(new, source=old.source)  # left as written, even if relative
    if new == old:
        return current, []
    others = [e for e in users_of(config, old.name) if e != export.name]
    if not others:
        return (new,), []
    own = free_segment_name(config, export.name, new)
    note = (
        f"segment {old.name!r} is also read by {', '.join(others)} and stays as it was; "
        f"export {export.name!r} now reads its own segment {own!r}"
    )
    return (dataclasses.replace(new, name=own),), [note]


def _fields(export: Export, changes: dict[str, str]) -> dict[str, str]:
    fields = dict(export.mapping.fields())
    fields.update({f"location.{k}": v for k, v in export.mapping.location.items()})
    for key, value in changes.items():
        if not key.startswith("mapping."):
            continue
        field_name, column = key.split(".", 1)[1], value  # a column name: exact, spaces and all
        if column:
            fields[field_name] = column
        elif field_name == "email":
            raise ExportError(
                "the email column cannot be removed: every export needs one",
                hint="Set another column with --set mapping.email=COLUMN.",
            )
        else:
            fields.pop(field_name, None)
    return fields


async def edit_export(
    config_path: Path, name: str, changes: dict[str, str], *, consent_asserted: bool = False
) -> SavedExport:
    """Apply `changes` (key -> new text; empty text clears an optional key) to export `name`.

    Raises an AppError saying what to change; nothing is written then. `changed` in the result
    is empty when the export already was as asked. `consent_asserted`: the person accepted the
    subscribe consent text (needed when subscribe is turned on or what it asserts changes)."""
    check_keys(list(changes))
    config = await asyncio.to_thread(load_config, config_path)
    export = export_named(config, name)
    connection = changes.get("connection", export.connection).strip()
    connection_named(config, connection)
    schedule = check_schedule(changes["schedule"]) if "schedule" in changes else export.schedule
    region = export.default_region
    if "default_region" in changes:
        region = check_region(changes["default_region"])
    segments, notes = _segments(config, export, changes)
    mapping = export.mapping
    reads_columns = {"segments", "source", "query", "properties"} | {
        k for k in changes if k.startswith("mapping.")
    }
    if reads_columns & changes.keys():
        infos = [await asyncio.to_thread(inspect_source, s) for s in segments]
        properties = (
            _properties(changes["properties"], infos[0].columns)
            if "properties" in changes
            else export.mapping.properties
        )
        mapping = build_mapping(_fields(export, changes), properties, infos[0].columns)
        for segment, info in zip(segments, infos, strict=True):
            check_columns(mapping, segment, info.columns)
    rows: int | None = None
    if segments != tuple(config.segments.get(s) for s in export.segments):
        rows = 0
        for segment in segments:
            rows += await asyncio.to_thread(count_rows, segment)
    list_id, list_name, created = export.list_id, export.list_name, False
    if "list_id" in changes and "list_name" in changes:
        raise ExportError("set list_id or list_name, not both")
    if "list_name" in changes or "list_id" in changes or connection != export.connection:
        by_name = changes.get("list_name")
        if by_name is not None and not by_name.strip():
            raise ExportError("list_name is empty", hint="Give the list's name, or set list_id.")
        try:
            found, created = await resolve_list(
                config, connection, None if by_name else changes.get("list_id", list_id), by_name
            )
        except ExportError as error:
            if "list_id" in changes or by_name:
                raise
            raise ExportError(
                f"{error.message}; the export's list must be in the new connection's account",
                hint=f"Set list_id=ID or list_name=NAME as well ({error.hint})",
            ) from None
        list_id, list_name = found.id, found.name or None
    new = dataclasses.replace(
        export,
        connection=connection,
        list_id=list_id,
        list_name=list_name,
        segments=tuple(s.name for s in segments),
        mapping=mapping,
        default_region=region,
        schedule=schedule,
        sync=edit_sync(export.sync, changes, consent_asserted=consent_asserted),
    )
    if new.sync != export.sync or reads_columns & changes.keys():
        infos = [await asyncio.to_thread(inspect_source, s) for s in segments]
        for info in infos:
            check_sync(new.sync, new.mapping, info.columns)
    changed = [
        f.name
        for f in dataclasses.fields(Export)
        if getattr(new, f.name) != getattr(export, f.name)
    ]
    changed += [f"segment {s.name}" for s in segments if config.segments.get(s.name) != s]
    if changed:
        await asyncio.to_thread(_save, config_path, new, segments)
    return SavedExport(new, segments, rows, created, False, tuple(changed), tuple(notes))


def _save(config_path: Path, export: Export, segments: tuple[Segment, ...]) -> None:
    store = ConfigStore(config_path)
    export_named(store.config, export.name)  # still there
    for segment in segments:
        if store.config.segments.get(segment.name) != segment:
            store.put_segment(segment)
    store.put_export(export)
    store.save()
