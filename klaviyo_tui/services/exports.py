"""Exports in the config: create and edit (checked first), save, remove, look up.

`create_export` and `edit_export` check everything a run would trip over later (the connection,
the list in the account, the mapped columns in every source, the filter, the schedule, the
region) before anything is written, so both front ends only ever save exports that can run. A
list given by name is found or created last, so a mistake elsewhere creates nothing in Klaviyo.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.klaviyo import KlaviyoList, NotFoundError
from klaviyo_tui.services import lists as list_service
from klaviyo_tui.services.columns import close_column, shown_columns
from klaviyo_tui.services.connections import connection_named
from klaviyo_tui.services.segments import (
    check_name,
    count_rows,
    inspect_source,
    make_segment,
    segment_named,
)
from klaviyo_tui.store import paths
from klaviyo_tui.store.config import (
    LOCATION_FIELDS,
    PROFILE_FIELDS,
    Config,
    ConfigError,
    Export,
    Mapping,
    Segment,
)
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.sync_config import SYNC_EDIT_KEYS, SyncSettings

#: Every field a column can be mapped to: profile fields, then `location.city` and the like.
MAPPABLE_FIELDS: tuple[str, ...] = (*PROFILE_FIELDS, *(f"location.{f}" for f in LOCATION_FIELDS))
#: What `edit_export` can change (`mapping.FIELD` for each mappable field).
EDIT_KEYS: tuple[str, ...] = (
    "connection",
    "list_id",
    "list_name",
    "schedule",
    "default_region",
    "filter",
    "source",
    "query",
    "segments",
    "properties",
    *(f"mapping.{f}" for f in MAPPABLE_FIELDS),
    *SYNC_EDIT_KEYS,
)
# Column names (lower-case, letters and digits only) that suggest a field, as the builder guesses.
_GUESSES: dict[str, tuple[str, ...]] = {
    "phone_number": ("phone", "phonenumber", "mobile", "tel", "telephone"),
    "external_id": ("externalid", "customerid", "id", "userid", "custid"),
    "first_name": ("firstname", "givenname", "first", "fname"),
    "last_name": ("lastname", "surname", "familyname", "last", "lname"),
    "location.city": ("city", "town"),
    "location.region": ("region", "state", "province"),
    "location.country": ("country", "countrycode"),
    "location.zip": ("zip", "postcode", "postalcode", "zipcode"),
    "location.address1": ("address", "address1", "street"),
}


class ExportError(AppError):
    """An export that cannot be saved as given; the message says what to change."""

    title = "The export cannot be saved"
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What a person asked for; `create_export` fills the gaps it can and checks the rest."""

    name: str
    connection: str | None = None  # None: the only connection
    list_id: str | None = None
    list_name: str | None = None  # found by exact name, else created
    source: str | None = None  # a file path, or a database URL with `query`
    query: str | None = None
    filter: str | None = None
    segments: tuple[str, ...] = ()  # existing segments, instead of a source
    mapping: dict[str, str] = field(default_factory=dict)  # field -> column; email detected
    properties: tuple[str, ...] | Literal["all"] = ()
    schedule: str | None = None
    default_region: str = "US"
    #: New exports are incremental; `services.export_sync.new_sync` builds other settings.
    sync: SyncSettings = SyncSettings(incremental=True)


@dataclass(frozen=True, slots=True)
class SavedExport:
    export: Export
    segments: tuple[Segment, ...]
    rows: int | None  # rows that pass the filters over every segment; None: not counted
    list_created: bool = False
    email_detected: bool = False  # the email column was not given: the builder's guess
    changed: tuple[str, ...] = ()  # edit only: the keys whose value changed
    notes: tuple[str, ...] = ()  # things worth telling the person (a detached segment, ...)


def export_named(config: Config, name: str) -> Export:
    """The export called `name`, or a ConfigError naming the ones that exist."""
    export = config.exports.get(name)
    if export is None:
        known = ", ".join(sorted(config.exports)) or "none yet"
        raise ConfigError(
            f"there is no export named {name!r} (exports: {known})",
            hint="Create one with `klaviyo-tui exports create NAME` or in the app (n).",
        )
    return export


def default_connection(config: Config) -> str:
    """The only connection; a ConfigError when there is none, or several to choose from."""
    names = sorted(config.connections)
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError(
            "there is no connection yet", hint="Add one with `klaviyo-tui connections add NAME`."
        )
    raise ConfigError(
        f"there are {len(names)} connections ({', '.join(names)}); say which one",
        hint="Add --connection NAME.",
    )


def check_new_name(config: Config, name: str) -> str:
    name = check_name(name, "export")
    if name in config.exports:
        raise ExportError(
            f"an export named {name!r} exists already",
            hint=f"Choose another name, or change it with `klaviyo-tui exports edit {name}`.",
        )
    return name


def check_region(text: str) -> str:
    """The upper-case region code phone numbers without a +country code are read in."""
    import phonenumbers

    region = text.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ExportError(
            f"default region {text!r} is not a country code phone numbers are known for",
            hint="Use a two-letter country code such as US, GB, DE or FR.",
        )
    return region


def check_schedule(text: str | None) -> str | None:
    from klaviyo_tui.run.schedule import validate_schedule

    text = (text or "").strip() or None
    if text and (problem := validate_schedule(text)):
        raise ExportError(problem, hint="Leave it out to run the export only when started.")
    return text


def suggest_mapping(columns: Iterable[str]) -> dict[str, str]:
    """Fields the builder would preset from the column names (besides email): for each field,
    the first column whose name suggests it."""
    names = [(c, "".join(ch for ch in c.lower() if ch.isalnum())) for c in columns]
    out: dict[str, str] = {}
    for field_name, words in _GUESSES.items():
        for column, norm in names:
            if norm in words:
                out[field_name] = column
                break
    return out


def check_fields(fields: Iterable[str]) -> None:
    unknown = [f for f in fields if f not in MAPPABLE_FIELDS]
    if unknown:
        raise ExportError(
            f"unknown field {unknown[0]!r}; fields: {', '.join(MAPPABLE_FIELDS)}",
            hint="Map a column with FIELD=COLUMN, e.g. first_name=First or location.city=City.",
        )


def build_mapping(
    fields: dict[str, str], properties: tuple[str, ...] | Literal["all"], columns: list[str]
) -> Mapping:
    """The Mapping from field -> column pairs; "all" properties: every column not mapped."""
    check_fields(fields)
    if not fields.get("email"):
        raise ExportError("no email column: every export needs one", hint="Add --map email=COLUMN.")
    plain = {f: c for f, c in fields.items() if not f.startswith("location.")}
    location = {f.split(".", 1)[1]: c for f, c in fields.items() if f.startswith("location.")}
    if properties == "all":
        taken = set(fields.values())
        properties = tuple(c for c in columns if c not in taken)
    return Mapping(location=location, properties=tuple(dict.fromkeys(properties)), **plain)


def check_columns(mapping: Mapping, segment: Segment, columns: list[str]) -> None:
    """Every column the mapping reads is in the segment's source; else say which is not."""
    for column in mapping.columns():
        if column in columns:
            continue
        close = close_column(column, columns)
        also = f" (did you mean {close!r}?)" if close else ""
        raise ExportError(
            f"column {column!r} is not in segment {segment.name!r} ({segment.source}){also}; "
            f"its columns: {shown_columns(columns)}",
            hint="Map a column the source has, exactly as its header writes it (case and "
            "spaces count).",
            exit_code=ExitCode.INPUT,
        )


async def resolve_list(
    config: Config, connection: str, list_id: str | None, list_name: str | None
) -> tuple[KlaviyoList, bool]:
    """The list by id (it must exist in the account), or by name (found, else created).

    Returns the list and whether it was created."""
    if list_id and list_name:
        raise ExportError("give the list by id or by name, not both")
    if list_name:
        return await list_service.create_list(config, connection, list_name)
    if not list_id:
        raise ExportError("no Klaviyo list given", hint="Add --list ID or --list-name NAME.")
    try:
        return await list_service.get_list(config, connection, list_id), False
    except NotFoundError:
        raise ExportError(
            f"list {list_id.strip()!r} does not exist in the account of connection {connection!r}",
            hint=f"See the account's lists with `klaviyo-tui lists --connection {connection}`, "
            "or give a name to find or create with --list-name.",
        ) from None


def free_segment_name(config: Config, wanted: str, segment: Segment) -> str:
    """`wanted`, or `wanted-2` ... when another segment already has that name."""
    name, n = wanted, 2
    while (
        name in config.segments and dataclasses.replace(segment, name=name) != config.segments[name]
    ):
        name, n = f"{wanted}-{n}", n + 1
    return name


def _read_segments(spec: ExportSpec, config: Config) -> tuple[Segment, ...]:
    if spec.segments and (spec.source or spec.query):
        raise ExportError("give existing segments or a source, not both")
    if spec.segments:
        if spec.filter:
            raise ExportError(
                "a filter belongs to a segment; set it with the segment's source",
                hint="Give --source with --filter, or create a segment with the filter first.",
            )
        return tuple(segment_named(config, s) for s in dict.fromkeys(spec.segments))
    if not spec.source:
        raise ExportError(
            "no source given",
            hint="Add --source PATH (CSV, Parquet, xlsx, JSONL), or --sql-url URL --query SQL.",
        )
    segment = make_segment(spec.name, spec.source, query=spec.query, filter_text=spec.filter)
    name = free_segment_name(config, spec.name, segment)
    return (dataclasses.replace(segment, name=name),)


async def create_export(config_path: Path, spec: ExportSpec) -> SavedExport:
    """Check the whole export, find or create its list, then save it with its segment.

    Raises an AppError saying what to change; nothing is written (nor created in Klaviyo) then.
    """
    config = await asyncio.to_thread(load_config, config_path)
    name = check_new_name(config, spec.name)
    connection = spec.connection or default_connection(config)
    connection_named(config, connection)
    schedule = check_schedule(spec.schedule)
    region = check_region(spec.default_region or "US")
    check_fields(spec.mapping)
    if not (spec.list_id or spec.list_name):
        raise ExportError("no Klaviyo list given", hint="Add --list ID or --list-name NAME.")
    segments = _read_segments(dataclasses.replace(spec, name=name), config)
    infos = [await asyncio.to_thread(inspect_source, s) for s in segments]
    fields = dict(spec.mapping)
    detected = not fields.get("email")
    if detected:
        guess = infos[0].email_guess
        if not guess:
            raise ExportError(
                f"no column of {segments[0].source} looks like email addresses; "
                f"its columns: {shown_columns(infos[0].columns)}",
                hint="Say which column holds them with --map email=COLUMN.",
                exit_code=ExitCode.INPUT,
            )
        fields["email"] = guess
    mapping = build_mapping(fields, spec.properties, infos[0].columns)
    for segment, info in zip(segments, infos, strict=True):
        check_columns(mapping, segment, info.columns)
    from klaviyo_tui.services.export_sync import check_sync  # it imports this module

    for info in infos:
        check_sync(spec.sync, mapping, info.columns)
    rows = 0
    for segment in segments:
        rows += await asyncio.to_thread(count_rows, segment)
    found, created = await resolve_list(config, connection, spec.list_id, spec.list_name)
    export = Export(
        name=name,
        connection=connection,
        list_id=found.id,
        list_name=found.name or None,
        segments=tuple(s.name for s in segments),
        mapping=mapping,
        default_region=region,
        schedule=schedule,
        sync=spec.sync,
    )
    new_segments = [s for s in segments if s.name not in config.segments]
    await asyncio.to_thread(_save_new, config_path, export, new_segments)
    return SavedExport(export, segments, rows, created, detected)


def _save_new(config_path: Path, export: Export, segments: list[Segment]) -> None:
    store = ConfigStore(config_path)
    check_new_name(store.config, export.name)  # nobody took the name while we checked
    for segment in segments:
        store.put_segment(segment)
    store.put_export(export)
    store.save()


def save_export(config_path: Path, export: Export, segments: list[Segment]) -> Config:
    """Add or replace the export and the segments it reads. Blocks (file): use a thread."""
    store = ConfigStore(config_path)
    for segment in segments:
        store.put_segment(segment)
    store.put_export(export)
    store.save()
    return store.config


def remove_export(config_path: Path, name: str) -> list[str]:
    """Remove the export and the segments no other export uses (one edit); returns those
    segments' names. Its runs stay in the history; what it added to its list (the sync state)
    is forgotten, so a new export of the same name does not inherit it. Blocks: use a thread.
    """
    from klaviyo_tui.store.history import HistoryStore

    store = ConfigStore(config_path)
    export_named(store.config, name)
    pruned = store.remove_export(name, prune_segments=True)
    store.save()
    if paths.history_path().exists():
        with HistoryStore() as history:
            history.forget_sync(name)
    return pruned
