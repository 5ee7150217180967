"""`klaviyo-tui exports`: saved exports (which segments go to which list, and how columns map)."""

from __future__ import annotations

import click

from klaviyo_tui.cli.context import cli_context
from klaviyo_tui.cli.output import say
from klaviyo_tui.cli.prompts import confirm, nothing_changed
from klaviyo_tui.services import exports as service
from klaviyo_tui.store.config import load_config


@click.group("exports")
def exports_group() -> None:
    """Saved exports: which segments go to which Klaviyo list, and how columns map.

    \b
    Examples:
      klaviyo-tui exports list
      klaviyo-tui exports show weekly
    """


@exports_group.command("list")
@click.pass_context
def exports_list(ctx: click.Context) -> None:
    """Every export, its connection, list and segments.

    \b
    Example:
      klaviyo-tui exports list
    """
    config = load_config(cli_context(ctx).config_path)
    if not config.exports:
        say("no exports yet; build one in the app (klaviyo-tui)")
        return
    for e in config.exports.values():
        schedule = f"  schedule {e.schedule}" if e.schedule else ""
        say(
            f"{e.name:<20} {e.connection:<14} list {e.list_id:<8} segments "
            f"{', '.join(e.segments)}{schedule}"
        )


@exports_group.command("show")
@click.argument("name")
@click.pass_context
def exports_show(ctx: click.Context, name: str) -> None:
    """One export in full: connection, list, segments, filters and the column mapping.

    \b
    Example:
      klaviyo-tui exports show weekly
    """
    config = load_config(cli_context(ctx).config_path)
    export = service.export_named(config, name)
    say(f"export {export.name}")
    say(f"  connection     {export.connection}")
    say(f"  list           {export.list_id} {export.list_name or ''}".rstrip())
    say(f"  default region {export.default_region}")
    say(f"  schedule       {export.schedule or '-'}")
    for segment_name in export.segments:
        segment = config.segments.get(segment_name)
        source = segment.source if segment else "MISSING"
        where = f" where {segment.filter}" if segment and segment.filter else ""
        say(f"  segment        {segment_name}: {source}{where}")
    for field_name, column in export.mapping.fields().items():
        say(f"  map            {field_name:<14} <- {column}")
    for field_name, column in export.mapping.location.items():
        say(f"  map            location.{field_name:<5} <- {column}")
    if export.mapping.properties:
        say(f"  properties     {', '.join(export.mapping.properties)}")


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
    also = f" and its segment(s) {', '.join(pruned)}" if pruned else ""
    say(f"removed export {name!r}{also}")
