"""`klaviyo-tui exports`: saved exports (which segments go to which list, and how columns map)."""

from __future__ import annotations

import asyncio

import click

from klaviyo_tui.cli.context import CliContext, cli_context, pass_cli
from klaviyo_tui.cli.exports_create import exports_create
from klaviyo_tui.cli.output import emit_json, say
from klaviyo_tui.cli.prompts import confirm, nothing_changed
from klaviyo_tui.cli.sync_options import consent_given
from klaviyo_tui.cli.views import export_json, mapping_json, parse_pairs
from klaviyo_tui.errors import AppError
from klaviyo_tui.run.progress import plural
from klaviyo_tui.services import exports as service
from klaviyo_tui.services.columns import column_label
from klaviyo_tui.services.export_edit import edit_export
from klaviyo_tui.services.export_sync import edit_sync
from klaviyo_tui.services.exports import export_named
from klaviyo_tui.services.segments import shown_source
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.sync_config import DEFAULT_MAX_REMOVAL_RATIO, SyncSettings


@click.group("exports")
def exports_group() -> None:
    """Saved exports: which segments go to which Klaviyo list, and how columns map.

    \b
    Examples:
      klaviyo-tui exports create weekly --source customers.csv --list-name "Weekly"
      klaviyo-tui exports list
      klaviyo-tui exports show weekly
      klaviyo-tui exports edit weekly --set schedule="0 6 * * 1"
    """


exports_group.add_command(exports_create)


@exports_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def exports_list(obj: CliContext, as_json: bool) -> None:
    """Every export, its connection, list and segments.

    \b
    Examples:
      klaviyo-tui exports list
      klaviyo-tui exports list --json
    """
    obj.as_json = as_json
    config = obj.config()
    if as_json:
        emit_json([export_json(e, config) for _, e in sorted(config.exports.items())])
        return
    if not config.exports:
        say("no exports yet; create one with `klaviyo-tui exports create NAME` or in the app")
        return
    for _, e in sorted(config.exports.items()):
        schedule = f"  schedule {e.schedule}" if e.schedule else ""
        say(
            f"{e.name:<20} {e.connection:<14} list {e.list_id:<8} "
            f"{'segment' if len(e.segments) == 1 else 'segments'} "
            f"{', '.join(e.segments)}{schedule}"
        )


@exports_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def exports_show(obj: CliContext, name: str, as_json: bool) -> None:
    """One export in full: connection, list, segments, filters and the column mapping.

    \b
    Examples:
      klaviyo-tui exports show weekly
      klaviyo-tui exports show weekly --json
    """
    obj.as_json = as_json
    config = obj.config()
    export = service.export_named(config, name)
    if as_json:
        emit_json(export_json(export, config))
        return
    say(f"export {export.name}")
    say(f"  connection     {export.connection}")
    say(f"  list           {export.list_id} {export.list_name or ''}".rstrip())
    say(f"  default region {export.default_region}")
    say(f"  schedule       {export.schedule or '-'}")
    for segment_name in export.segments:
        segment = config.segments.get(segment_name)
        source = shown_source(segment) if segment else "MISSING"
        query = f" query {segment.query}" if segment and segment.query else ""
        where = f" where {segment.filter}" if segment and segment.filter else ""
        say(f"  segment        {segment_name}: {source}{query}{where}")
    for field_name, column in mapping_json(export).items():
        say(f"  map            {field_name:<16} <- {column_label(column)}")
    if export.mapping.properties:
        say(f"  properties     {', '.join(map(column_label, export.mapping.properties))}")
    for line in _sync_lines(export.sync):
        say(f"  {line}")


def _sync_lines(sync: SyncSettings) -> list[str]:
    """What the export does about rows confirmed before, rows that left, and subscriptions."""
    changed = "only new or changed rows" if sync.incremental else "every row"
    lines = [f"sync           {sync.mode}: sends {changed}"]
    limited = sync.max_removals is not None or sync.max_removal_ratio != DEFAULT_MAX_REMOVAL_RATIO
    if sync.mirror or limited:  # an upsert export's limits apply to a run with --mode mirror
        most = f", at most {sync.max_removals:,}" if sync.max_removals is not None else ""
        when = "" if sync.mirror else " (with --mode mirror)"
        lines.append(
            f"removals       who left the segment{when}, up to {sync.max_removal_ratio:.0%} of "
            f"the list{most} a run"
        )
    sub = sync.subscribe
    if sub is not None:
        historical = " (historical)" if sub.historical else ""
        column = sub.consented_at_column
        when = f", consent times from {column_label(column)}" if column else ""
        lines.append(f"subscribe      {sub.channel} marketing{historical}{when}")
        lines.append(
            f"consent        asserted {sub.asserted_at or '-'} by {sub.asserted_by or '-'}"
        )
    return lines


@exports_group.command("edit")
@click.argument("name")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A change (repeatable). Keys: connection, list_id, list_name (found or created), "
    "schedule, default_region, filter, source, query, segments and properties (comma lists), "
    "mapping.FIELD (e.g. mapping.first_name, mapping.location.city); sync: mode "
    "(upsert|mirror), incremental, max_removal_ratio, max_removals, subscribe "
    "(email|sms|both|off), subscribe.consented_at_column, subscribe.historical. An empty value "
    "clears it.",
)
@click.option(
    "--assert-consent",
    "assert_consent",
    is_flag=True,
    help="Accept the subscribe consent text without being asked (scripts).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the export as saved, as JSON.")
@pass_cli
def exports_edit(
    obj: CliContext, name: str, pairs: tuple[str, ...], assert_consent: bool, as_json: bool
) -> None:
    """Change export NAME, checked like create (the config's comments and other tables stay).

    \b
    Examples:
      klaviyo-tui exports edit weekly --set list_name="Weekly VIP"
      klaviyo-tui exports edit weekly --set filter="orders > 3" --set schedule=
      klaviyo-tui exports edit weekly --set mapping.phone_number=Phone --set properties=all
    """
    obj.as_json = as_json
    if not pairs:
        raise click.UsageError("nothing to change: give at least one --set key=value")
    changes = parse_pairs(pairs, "--set")
    asserted = _subscribe_consent(obj, name, changes, assert_consent, as_json)
    result = asyncio.run(edit_export(obj.config_path, name, changes, consent_asserted=asserted))
    if as_json:
        emit_json(
            {
                **export_json(result.export, load_config(obj.config_path)),
                "changed": list(result.changed),
                "list_created": result.list_created,
                "rows": result.rows,
            }
        )
        return
    for note in result.notes:
        say(f"note: {note}", err=True)
    if not result.changed:
        nothing_changed(f"export {name!r} already is as asked; nothing changed")
    if "list_id" in result.changed or "list_name" in result.changed:
        how = "created" if result.list_created else "found"
        say(f"list: {result.export.list_name or ''} ({result.export.list_id}), {how}")
    if result.rows is not None:
        say(f"{plural(result.rows, 'row')} to export (after the filter)")
    say(f"saved export {name!r} ({', '.join(result.changed)} changed)")


def _subscribe_consent(
    obj: CliContext, name: str, changes: dict[str, str], flag: bool, as_json: bool
) -> bool:
    """Ask for the consent assertion when the edit turns subscribe on or changes it."""
    if not any(k == "subscribe" or k.startswith("subscribe.") for k in changes):
        return False
    export = export_named(obj.config(), name)
    try:
        settings = edit_sync(export.sync, changes)
    except AppError:
        return False  # the service reports it with the rest of the edit
    sub = settings.subscribe
    if sub is None or (export.sync.subscribe is not None and sub.asserted):
        return False  # off, or unchanged: nothing new is asserted
    return consent_given(sub, flag=flag, as_json=as_json)


@exports_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def exports_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove export NAME (and the segments no other export uses); its history is kept.

    \b
    Example:
      klaviyo-tui exports remove weekly --yes
    """
    config_path = cli_context(ctx).config_path
    service.export_named(load_config(config_path), name)
    if not yes and not confirm(f"Remove export {name!r}? (history is kept)"):
        nothing_changed()
    pruned = service.remove_export(config_path, name)
    kind = "segment" if len(pruned) == 1 else "segments"
    also = f" and its {kind} {', '.join(pruned)}" if pruned else ""
    say(f"removed export {name!r}{also}")
