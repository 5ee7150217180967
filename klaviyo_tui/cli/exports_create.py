"""`klaviyo-tui exports create`: a new export from flags, or by questions on a terminal.

This module only gathers the pieces; `services.exports.create_export` checks them all (the same
checks the builder makes) and saves. Without a terminal a missing piece is an error naming its
flag. On a terminal, when a required piece is missing, every piece not given is asked for
(exports_questions.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from klaviyo_tui.cli.context import CliContext, pass_cli
from klaviyo_tui.cli.exports_questions import Questions, show_summary
from klaviyo_tui.cli.output import emit_json, say
from klaviyo_tui.cli.prompts import confirm, has_terminal, nothing_changed
from klaviyo_tui.cli.sync_options import sync_create_options, sync_from_flags
from klaviyo_tui.cli.views import export_json, parse_pairs
from klaviyo_tui.errors import AppError
from klaviyo_tui.run.progress import plural
from klaviyo_tui.services import exports as service
from klaviyo_tui.services.exports import ExportSpec
from klaviyo_tui.store.config import Config

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
        show_summary(spec)
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
