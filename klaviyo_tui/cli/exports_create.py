"""`klaviyo-tui exports create`: a new export from flags, or by questions on a terminal.

This module only gathers the pieces; `services.exports.create_export` checks them all (the same
checks the builder makes) and saves. Without a terminal a missing piece is an error naming its
flag. On a terminal, when a required piece is missing, every piece not given is asked for with the
builder's defaults and guesses, and each answer is checked at once so a typo is asked again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal

import click

from klaviyo_tui.cli.context import CliContext, pass_cli
from klaviyo_tui.cli.output import emit_json, say
from klaviyo_tui.cli.prompts import ask, choose, confirm, has_terminal, nothing_changed
from klaviyo_tui.cli.sync_options import sync_create_options, sync_from_flags
from klaviyo_tui.cli.views import export_json, parse_pairs
from klaviyo_tui.errors import AppError
from klaviyo_tui.run.progress import plural
from klaviyo_tui.services import exports as service
from klaviyo_tui.services import lists as list_service
from klaviyo_tui.services import segments as segment_service
from klaviyo_tui.services.exports import ExportSpec
from klaviyo_tui.services.segments import SourceInfo
from klaviyo_tui.store.config import Config, Segment

Properties = tuple[str, ...] | Literal["all"]
_EXCLUSIVE = (
    ("--list", "--list-name"),
    ("--source", "--sql-url"),
    ("--source", "--segment"),
    ("--sql-url", "--segment"),
    ("--property", "--properties"),
)


def _missing(config: Config, spec: ExportSpec) -> list[str]:
    """The required flags not given, as a person would type them."""
    out = []
    if not spec.connection and len(config.connections) > 1:
        out.append(f"--connection NAME (one of {', '.join(sorted(config.connections))})")
    if not (spec.list_id or spec.list_name):
        out.append("--list ID or --list-name NAME")
    if not (spec.source or spec.segments):
        out.append("--source PATH (or --sql-url URL --query SQL)")
    elif spec.source and spec.query is None and "://" in spec.source:
        out.append("--query SQL")
    return out


def _error(error: AppError) -> None:
    say(f"  {error.message}", err=True)
    if error.hint:
        say(f"  {error.hint}", err=True)


class Questions:
    """The terminal conversation: fills what the flags left out, one checked answer at a time."""

    def __init__(self, config: Config, spec: ExportSpec, given: set[str]) -> None:
        self.config, self.spec, self.given = config, spec, given

    def run(self) -> ExportSpec:
        if not self.spec.connection:
            names = sorted(self.config.connections)
            self.set(connection=choose("Connection", names, flag="--connection", default=names[0]))
        info = self.source()
        self.fields(info)
        if "properties" not in self.given:
            self.set(properties=self.properties(info.columns))
        if "phone_number" in self.spec.mapping and "region" not in self.given:
            self.set(default_region=self.region())
        if not (self.spec.list_id or self.spec.list_name):
            self.choose_list()
        if "schedule" not in self.given:
            self.set(schedule=self.schedule())
        return self.spec

    def set(self, **changes: object) -> None:
        self.spec = dataclasses.replace(self.spec, **changes)  # type: ignore[arg-type]

    def source(self) -> SourceInfo:
        while True:
            segment = self._segment()
            try:
                info = segment_service.inspect_source(segment)
            except AppError as error:
                if self.spec.segments or "source" in self.given:
                    raise  # a flag's value: no question would fix it
                _error(error)
                self.set(source=None, query=None)
                continue
            say(f"{plural(len(info.columns), 'column')}: {', '.join(info.columns)}", err=True)
            if self.spec.segments:
                return info
            if "filter" not in self.given:
                self.set(filter=self.filter(segment))
            elif self.spec.filter:  # a flag's filter: checked now, not after every question
                filtered = dataclasses.replace(segment, filter=self.spec.filter)
                rows = segment_service.count_rows(filtered)
                say(f"{plural(rows, 'row')} to export", err=True)
            return info

    def _segment(self) -> Segment:
        spec = self.spec
        if spec.segments:
            return segment_service.segment_named(self.config, spec.segments[0])
        source, query = spec.source, spec.query
        if not source:
            source = ask(
                "Source: a file (CSV, Parquet, xlsx, JSONL) or a database URL",
                flag="--source PATH",
            )
        if query is None and "://" in source:
            query = ask("SQL query", flag="--query SQL")
        self.set(source=source, query=query)
        return segment_service.make_segment(spec.name, source, query=query)

    def filter(self, segment: Segment) -> str | None:
        while True:
            text = ask(
                "Filter (SQL WHERE, e.g. country = 'US'; empty: every row)",
                default="",
                flag="--filter TEXT",
            )
            try:
                rows = segment_service.count_rows(dataclasses.replace(segment, filter=text or None))
            except AppError as error:
                _error(error)
                continue
            say(f"{plural(rows, 'row')} to export", err=True)
            return text or None

    def fields(self, info: SourceInfo) -> None:
        mapping = dict(self.spec.mapping)
        if "email" not in mapping:
            guess = info.email_guess
            mapping["email"] = choose(
                "Email column" + ("" if guess else " (none looks like email addresses)"),
                info.columns,
                flag="--map email=COLUMN",
                default=guess,
                listed=False,  # the columns were printed just above
            )
        if len(self.spec.mapping) <= 1:
            taken = set(mapping.values())
            guesses = {
                f: c
                for f, c in service.suggest_mapping(info.columns).items()
                if f not in mapping and c not in taken
            }
            shown = ", ".join(f"{f} <- {c}" for f, c in guesses.items())
            if guesses and confirm(f"Also map {shown}?", default=True):
                mapping.update(guesses)
            while True:
                text = ask(
                    "More fields, as FIELD=COLUMN, comma-separated (empty: none)",
                    default="",
                    flag="--map FIELD=COLUMN",
                )
                try:
                    more = parse_pairs(tuple(p for p in text.split(",") if p.strip()), "field")
                    service.check_fields(more)
                    self._check_columns(list(more.values()), info.columns)
                except (AppError, click.UsageError) as error:
                    _error(error if isinstance(error, AppError) else AppError(error.message))
                    continue
                mapping.update(more)
                break
        self.set(mapping=mapping)

    @staticmethod
    def _check_columns(columns: list[str], available: list[str]) -> None:
        unknown = [c for c in columns if c not in available]
        if unknown:
            raise AppError(
                f"no column {unknown[0]!r} in the source", hint="Names are case-sensitive."
            )

    def properties(self, columns: list[str]) -> Properties:
        while True:
            text = ask(
                "Custom properties: columns (comma-separated), all, or empty for none",
                default="",
                flag="--property COLUMN or --properties all|none",
            )
            if text.casefold() == "all":
                return "all"
            chosen = tuple(p.strip() for p in text.split(",") if p.strip())
            try:
                self._check_columns(list(chosen), columns)
            except AppError as error:
                _error(error)
                continue
            return chosen

    def region(self) -> str:
        while True:
            text = ask(
                "Country of phone numbers written without +code",
                default=self.spec.default_region,
                flag="--default-region CC",
            )
            try:
                return service.check_region(text)
            except AppError as error:
                _error(error)

    def schedule(self) -> str | None:
        while True:
            text = ask(
                "Schedule (cron, e.g. 0 6 * * 1; empty: only when started)",
                default="",
                flag="--schedule CRON",
            )
            try:
                return service.check_schedule(text)
            except AppError as error:
                _error(error)

    def choose_list(self) -> None:
        connection = self.spec.connection or service.default_connection(self.config)
        found = asyncio.run(list_service.find_lists(self.config, connection))
        if found:
            names = ", ".join(lst.name for lst in found[:8]) + (", …" if len(found) > 8 else "")
            say(f"the account has {plural(len(found), 'list')}: {names}", err=True)
        while True:
            text = ask(
                "Klaviyo list: a name to find or create, or a list id",
                default=self.spec.name,
                flag="--list ID or --list-name NAME",
            )
            if any(lst.id == text for lst in found):
                self.set(list_id=text)
                return
            if any(lst.name == text for lst in found) or confirm(
                f"No list named {text!r} in the account: create it?", default=True
            ):
                self.set(list_name=text)
                return


def _summary(spec: ExportSpec) -> None:
    """What is about to be saved, so the last question is answered knowingly."""
    lines = [("connection", spec.connection or "")]
    if spec.segments:
        lines.append(("segments", ", ".join(spec.segments)))
    else:
        query = f" query {spec.query}" if spec.query else ""
        lines += [("source", f"{spec.source}{query}"), ("filter", spec.filter or "-")]
    lines += [("map", f"{field} <- {column}") for field, column in spec.mapping.items()]
    props = spec.properties
    lines.append(("properties", "every other column" if props == "all" else ", ".join(props)))
    found_later = f"{spec.list_name} (found or created when saved)"
    lines += [("list", spec.list_id or found_later), ("schedule", spec.schedule or "-")]
    say(f"export {spec.name}", err=True)
    for label, value in lines:
        say(f"  {label:<11} {value or '-'}", err=True)


@click.command("create")
@click.argument("name")
@click.option(
    "--connection", metavar="NAME", help="Connection to export through (default: the only one)."
)
@click.option("--list", "list_id", metavar="ID", help="Klaviyo list id (must exist).")
@click.option("--list-name", metavar="NAME", help="Klaviyo list name: found, else created.")
@click.option("--source", metavar="PATH", help="CSV, Parquet, xlsx or JSONL file.")
@click.option("--sql-url", metavar="URL", help="Database URL (SQLAlchemy), with --query.")
@click.option("--query", metavar="SQL", help="SQL query whose rows are exported.")
@click.option(
    "--segment",
    "segments",
    multiple=True,
    metavar="NAME",
    help="Read an existing segment instead of a source (repeatable).",
)
@click.option("--filter", "filter_text", metavar="TEXT", help="SQL WHERE condition on the rows.")
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Send COLUMN as profile FIELD (repeatable): email, phone_number, external_id, "
    "first_name, last_name, organization, title, locale, location.city and other "
    "location.* fields. Email is detected when not given.",
)
@click.option(
    "--property",
    "props",
    multiple=True,
    metavar="COLUMN",
    help="Send COLUMN as a custom property, under its own name (repeatable).",
)
@click.option(
    "--properties",
    "props_mode",
    type=click.Choice(["all", "none"]),
    help="all: every column not mapped to a field; none: no custom properties (the default).",
)
@click.option("--schedule", metavar="CRON", help="When `run --due` runs it, e.g. '0 6 * * 1'.")
@click.option("--default-region", "region", metavar="CC", help="Country of phones without +code.")
@sync_create_options
@click.option("--yes", is_flag=True, help="Save without the last question (on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the saved export as JSON.")
@pass_cli
def exports_create(
    obj: CliContext,
    /,
    name: str,
    connection: str | None,
    list_id: str | None,
    list_name: str | None,
    source: str | None,
    sql_url: str | None,
    query: str | None,
    segments: tuple[str, ...],
    filter_text: str | None,
    maps: tuple[str, ...],
    props: tuple[str, ...],
    props_mode: str | None,
    schedule: str | None,
    region: str | None,
    yes: bool,
    as_json: bool,
    **sync_flags: Any,
) -> None:
    """Create export NAME: which rows go to which Klaviyo list, checked before it is saved.

    On a terminal, whatever required flag is missing is asked for. Without one, missing flags are
    an error that names them.

    \b
    Examples:
      klaviyo-tui exports create weekly --source customers.csv --list-name "Weekly"
      klaviyo-tui exports create vip --source shop.parquet --filter "orders > 3" \\
          --map email=Email --map first_name=First --properties all --list Y6nRLr
      klaviyo-tui exports create nightly --sql-url postgresql://me@db/shop \\
          --query "SELECT * FROM customers" --list-name Nightly --schedule "0 2 * * *"
      klaviyo-tui exports create weekly     (on a terminal: asks for each piece)
    """
    obj.as_json = as_json
    flags = {
        "--list": list_id,
        "--list-name": list_name,
        "--source": source,
        "--sql-url": sql_url,
        "--segment": segments,
        "--property": props,
        "--properties": props_mode,
    }
    for a, b in _EXCLUSIVE:
        if flags[a] and flags[b]:
            raise click.UsageError(f"give {a} or {b}, not both")
    if query and not sql_url and not source:
        raise click.UsageError("--query goes with --sql-url URL (or --source for a SQLite file)")
    config = obj.config()
    if not connection and len(config.connections) <= 1:
        connection = service.default_connection(config)  # the only one, or how to add one
    fields = parse_pairs(maps, "--map")
    service.check_fields(fields)
    spec = ExportSpec(
        name=service.check_new_name(config, name),
        connection=connection,
        list_id=list_id,
        list_name=list_name,
        source=sql_url or source,
        query=query,
        filter=filter_text,
        segments=segments,
        mapping=fields,
        properties="all" if props_mode == "all" else tuple(props),
        schedule=schedule,
        default_region=region or "US",
        sync=sync_from_flags(sync_flags, as_json=as_json),
    )
    missing = _missing(config, spec)
    asked = bool(missing) and has_terminal()
    if missing and not asked:
        raise AppError(
            f"missing {'; '.join(missing)}",
            hint="Give them on the command line, or run the command on a terminal to be asked.",
        )
    if asked:
        given = {
            k
            for k, v in {
                "source": source or sql_url,
                "segments": segments,
                "filter": filter_text is not None,
                "properties": props or props_mode,
                "region": region,
                "schedule": schedule is not None,
            }.items()
            if v
        }
        spec = Questions(config, spec, given).run()
        _summary(spec)
        if not yes and not confirm(f"Save export {spec.name!r}?", default=True):
            nothing_changed()
    result = asyncio.run(service.create_export(obj.config_path, spec))
    export = result.export
    if as_json:
        data = export_json(export, obj.config())
        emit_json({**data, "list_created": result.list_created, "rows": result.rows})
        return
    if result.email_detected:
        say(
            f"email column: {export.mapping.email} (detected; choose another with "
            "--map email=COLUMN)"
        )
    how = "created" if result.list_created else "found" if spec.list_name else "checked"
    say(f"list: {export.list_name or ''} ({export.list_id}), {how}")
    say(f"{plural(result.rows or 0, 'row')} to export (after the filter)")
    say(f"saved export {export.name!r}; try it with `klaviyo-tui run {export.name} --dry-run`")
