"""`klaviyo-tui segments`: sources (a file or a query) with their filters, that exports read."""

from __future__ import annotations

import click

from klaviyo_tui.cli.context import CliContext, pass_cli
from klaviyo_tui.cli.output import emit_json, say
from klaviyo_tui.cli.prompts import confirm, nothing_changed
from klaviyo_tui.cli.views import segment_use_json
from klaviyo_tui.run.progress import plural
from klaviyo_tui.services import segments as service


@click.group("segments")
def segments_group() -> None:
    """Segments: a source (file, or database query) and an optional filter, read by exports.

    \b
    Examples:
      klaviyo-tui segments list
      klaviyo-tui segments create vip --source customers.csv --filter "orders > 3"
      klaviyo-tui segments remove vip
    """


@segments_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def segments_list(obj: CliContext, as_json: bool) -> None:
    """Every segment, its source and filter, and the exports that read it.

    \b
    Examples:
      klaviyo-tui segments list
      klaviyo-tui segments list --json
    """
    obj.as_json = as_json
    uses = service.segment_uses(obj.config())
    if as_json:
        emit_json([segment_use_json(u) for u in uses])
        return
    if not uses:
        say("no segments yet; create one with `klaviyo-tui segments create NAME --source PATH`")
        return
    for use in uses:
        s = use.segment
        where = f"  where {s.filter}" if s.filter else ""
        read_by = f"  (exports: {', '.join(use.exports)})" if use.exports else "  (no export)"
        say(f"{s.name:<20} {service.shown_source(s)}{where}{read_by}")


@segments_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def segments_show(obj: CliContext, name: str, as_json: bool) -> None:
    """One segment: source, query, filter and the exports that read it.

    \b
    Example:
      klaviyo-tui segments show vip
    """
    obj.as_json = as_json
    config = obj.config()
    segment = service.segment_named(config, name)
    use = service.SegmentUse(segment, service.users_of(config, name))
    if as_json:
        emit_json(segment_use_json(use))
        return
    say(f"segment {segment.name}")
    say(f"  source   {service.shown_source(segment)}")
    if segment.query:
        say(f"  query    {segment.query}")
    say(f"  filter   {segment.filter or '-'}")
    say(f"  exports  {', '.join(use.exports) or '-'}")


@segments_group.command("create")
@click.argument("name")
@click.option("--source", metavar="PATH", help="CSV, Parquet, xlsx or JSONL file.")
@click.option("--sql-url", metavar="URL", help="Database URL (SQLAlchemy), with --query.")
@click.option("--query", metavar="SQL", help="SQL query whose rows are the segment.")
@click.option("--filter", "filter_text", metavar="TEXT", help="SQL WHERE condition on the rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the saved segment as JSON.")
@pass_cli
def segments_create(
    obj: CliContext,
    name: str,
    source: str | None,
    sql_url: str | None,
    query: str | None,
    filter_text: str | None,
    as_json: bool,
) -> None:
    """Create segment NAME; the source is read and the filter checked by counting its rows.

    \b
    Examples:
      klaviyo-tui segments create vip --source customers.csv --filter "orders > 3"
      klaviyo-tui segments create eu --sql-url postgresql://me@db/shop \\
          --query "SELECT * FROM customers WHERE region = 'EU'"
    """
    obj.as_json = as_json
    if bool(source) == bool(sql_url):
        raise click.UsageError("give --source PATH, or --sql-url URL with --query SQL")
    if sql_url and not query:
        raise click.UsageError("--sql-url needs --query SQL")
    segment = service.make_segment(
        service.check_name(name, "segment"),
        sql_url or source or "",
        query=query,
        filter_text=filter_text,
    )
    rows = service.create_segment(obj.config_path, segment)
    if as_json:
        emit_json({**segment_use_json(service.SegmentUse(segment, ())), "rows": rows})
        return
    say(f"saved segment {segment.name!r}: {plural(rows, 'row')}")


@segments_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def segments_remove(obj: CliContext, name: str, yes: bool) -> None:
    """Remove segment NAME; refused while an export reads it (the message names them).

    \b
    Example:
      klaviyo-tui segments remove vip --yes
    """
    config = obj.config()
    service.segment_named(config, name)
    users = service.users_of(config, name)
    if not users and not yes and not confirm(f"Remove segment {name!r}?"):
        nothing_changed()
    service.remove_segment(obj.config_path, name)
    say(f"removed segment {name!r}")
