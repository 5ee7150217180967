"""`klaviyo-tui lists`: the Klaviyo lists of a connection's account, found, created and shown."""

from __future__ import annotations

import asyncio

import click

from klaviyo_tui.cli.context import CliContext
from klaviyo_tui.cli.output import emit_json, say
from klaviyo_tui.klaviyo import KlaviyoList
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.run.progress import plural
from klaviyo_tui.services import lists as service
from klaviyo_tui.services.connections import connection_named
from klaviyo_tui.services.exports import default_connection
from klaviyo_tui.store.config import Config

_CONNECTION_HELP = "Connection whose account to use (default: the only one)."


def _connection(config: Config, given: str | None) -> str:
    if given:
        connection_named(config, given)
        return given
    return default_connection(config)


def _inherited(ctx: click.Context, given: str | None) -> str | None:
    """`lists --connection C create X` and `lists create X --connection C` both work."""
    parent = ctx.parent.params.get("connection") if ctx.parent else None
    return given or (parent if isinstance(parent, str) else None)


def list_json(found: KlaviyoList, members: int | None = None) -> dict[str, object]:
    data: dict[str, object] = {
        "id": found.id,
        "name": found.name,
        "created": found.created.isoformat() if found.created else None,
    }
    if members is not None:
        data["profile_count"] = members
    return data


@click.group("lists", invoke_without_command=True)
@click.option("--connection", metavar="NAME", help=_CONNECTION_HELP)
@click.option("--search", default="", metavar="TEXT", help="Only lists whose name or id has TEXT.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def lists_group(ctx: click.Context, connection: str | None, search: str, as_json: bool) -> None:
    """The account's Klaviyo lists (name and id, sorted by name); find or create one; show one.

    \b
    Examples:
      klaviyo-tui lists
      klaviyo-tui lists --connection acme --search vip --json
      klaviyo-tui lists create "Weekly VIP"
      klaviyo-tui lists show Y6nRLr
    """
    if ctx.invoked_subcommand is not None:
        return
    obj = ctx.find_object(CliContext)
    assert obj is not None
    obj.as_json = as_json
    config = obj.config()
    name = _connection(config, connection)
    found = asyncio.run(service.find_lists(config, name, search))
    if as_json:
        emit_json([list_json(lst) for lst in found])
        return
    if not found:
        say(f"no list matches {search!r}" if search.strip() else "the account has no lists yet")
        return
    # Padded as shown (escapes and all), so an escaped name does not push its id out of line.
    names = [safe_text(lst.name) for lst in found]
    width = min(max(len(shown) for shown in names), 40)
    for shown, lst in zip(names, found, strict=True):
        say(f"{shown:<{width}}  {lst.id}")
    say(f"{plural(len(found), 'list')} (connection {name})", err=True)


@lists_group.command("create")
@click.argument("name")
@click.option("--connection", metavar="NAME", help=_CONNECTION_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def lists_create(ctx: click.Context, name: str, connection: str | None, as_json: bool) -> None:
    """Find the list called NAME, or create it (Klaviyo allows 150 new lists a day).

    \b
    Example:
      klaviyo-tui lists create "Weekly VIP"
    """
    obj = ctx.find_object(CliContext)
    assert obj is not None
    obj.as_json = as_json
    config = obj.config()
    account = _connection(config, _inherited(ctx, connection))
    found, created = asyncio.run(service.create_list(config, account, name))
    if as_json:
        emit_json({**list_json(found), "created_now": created})
        return
    how = "created" if created else "found (it already existed; nothing created)"
    say(f"list {found.name!r} ({found.id}): {how}")


@lists_group.command("show")
@click.argument("list_id", metavar="ID")
@click.option("--connection", metavar="NAME", help=_CONNECTION_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def lists_show(ctx: click.Context, list_id: str, connection: str | None, as_json: bool) -> None:
    """One list: name, id, when it was created, how many members, which exports send to it.

    \b
    Example:
      klaviyo-tui lists show Y6nRLr
    """
    obj: CliContext | None = ctx.find_object(CliContext)
    assert obj is not None
    obj.as_json = as_json
    config = obj.config()
    account = _connection(config, _inherited(ctx, connection))
    found, members = asyncio.run(service.list_details(config, account, list_id))
    users = sorted(
        e.name for e in config.exports.values() if e.list_id == found.id and e.connection == account
    )
    if as_json:
        emit_json({**list_json(found, members), "exports": users})
        return
    say(f"list {found.name}")
    say(f"  id       {found.id}")
    say(f"  created  {found.created.isoformat(' ', 'seconds') if found.created else '-'}")
    say(f"  members  {f'{members:,}' if members is not None else 'unknown (Klaviyo did not say)'}")
    say(f"  exports  {', '.join(users) or '-'}")
