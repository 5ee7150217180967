"""`connections` and `exports` commands: manage the config over SSH without the TUI."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import click

from klaviyo_tui.cli.output import fail, redactor
from klaviyo_tui.errors import ExitCode
from klaviyo_tui.store import consent, paths
from klaviyo_tui.store.config import (
    DEFAULT_BASE_URL,
    DEFAULT_REVISION,
    ConfigError,
    Connection,
)
from klaviyo_tui.store.config_store import ConfigStore


def _store(ctx: click.Context) -> ConfigStore:
    try:
        return ConfigStore(paths.config_path(getattr(ctx.find_root().obj, "config_path", None)))
    except ConfigError as error:
        fail(str(error), ExitCode.USAGE)


def _save(store: ConfigStore) -> None:
    try:
        store.save()
    except ConfigError as error:
        fail(str(error), ExitCode.USAGE)


@click.group("connections")
def connections_group() -> None:
    """Klaviyo accounts (the API key lives in the OS keyring, never in the config file)."""


@connections_group.command("add")
@click.argument("name")
@click.option("--display-name", help="What this connection is for, e.g. 'Acme production'.")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True)
@click.option("--revision", default=DEFAULT_REVISION, show_default=True)
@click.option("--yes", "accept_consent", is_flag=True, help="Accept the data-privacy terms shown.")
@click.pass_context
def connections_add(
    ctx: click.Context,
    name: str,
    display_name: str | None,
    base_url: str,
    revision: str,
    accept_consent: bool,
) -> None:
    """Add (or replace) connection NAME: key by hidden prompt, consent, live check, save.

    The key goes to the OS keyring. Without a usable keyring (a headless server), or when
    KLAVIYO_API_KEY is set, the connection is saved without storing a key: runs then read it from
    KLAVIYO_API_KEY.
    """
    from klaviyo_tui.store.secrets import (
        ENV_VAR,
        SecretsError,
        backend_info,
        delete_api_key,
        mask_key,
        store_api_key,
    )

    store = _store(ctx)
    display = display_name or click.prompt(
        "Display name (what this connection is for)", default=name
    )
    env_key = os.environ.get(ENV_VAR, "").strip()
    backend = backend_info()
    if env_key:
        key = env_key
        click.echo(f"Using the key from {ENV_VAR} ({mask_key(key)}); it is not stored.", err=True)
    else:
        if backend.usable:
            click.echo(
                f"The key will be stored in {backend.name}. {backend.message}".strip(), err=True
            )
        else:
            click.echo(
                f"No usable OS keyring here: the key is checked but not stored; set {ENV_VAR} "
                "when you run exports from this connection.",
                err=True,
            )
        key = click.prompt("Klaviyo private API key (input hidden)", hide_input=True).strip()
    click.echo(f"\n{consent.CONSENT_TITLE}\n\n{consent.CONSENT_TEXT}\n", err=True)
    if not accept_consent and not click.confirm(
        "Do you accept these terms?", default=False, err=True
    ):
        fail("consent not given; nothing was saved", ExitCode.USAGE)
    connection = consent.accept(
        Connection(name=name, display_name=display, base_url=base_url, revision=revision)
    )
    redact = redactor(key)
    click.echo(f"connected to {_verify(connection, key, redact)}", err=True)
    store.put_connection(connection)
    stored = False
    if not env_key and backend.usable:
        try:
            store_api_key(name, key)
        except SecretsError as error:
            fail(redact(f"{error} (nothing was saved)"), ExitCode.AUTH)
        stored = True
    try:
        store.save()
    except ConfigError as error:
        if stored:  # nothing half-done: no key left behind for a connection that was not saved
            delete_api_key(name)
        fail(f"{error} (nothing was saved)", ExitCode.USAGE)
    where = f"in {backend.name}" if stored else f"from {ENV_VAR}"
    if not env_key and not stored:
        where = f"not stored: set {ENV_VAR}"
    click.echo(f"saved connection {name!r} (key {mask_key(key)}, {where})")


def _verify(connection: Connection, key: str, redact: Callable[[str], str]) -> str:
    """Check the key live; exit with a clear message when it cannot export."""
    from klaviyo_tui.klaviyo import KeyCheck, KlaviyoClient, KlaviyoError

    async def check() -> KeyCheck:
        async with KlaviyoClient(connection.base_url, key, revision=connection.revision) as client:
            return await client.verify_key()

    try:
        result = asyncio.run(check())
    except KlaviyoError as error:
        fail(redact(str(error)), error.exit_code)
    if not result.ok:
        fail(redact(result.fix_hint), ExitCode.AUTH)
    name = result.account_name
    return name or "the account (the key cannot read the account name: accounts:read not granted)"


@connections_group.command("list")
@click.pass_context
def connections_list(ctx: click.Context) -> None:
    """Connections, whether consent is recorded and where each key comes from."""
    from klaviyo_tui.store.secrets import get_api_key, mask_key

    config = _store(ctx).config
    if not config.connections:
        click.echo("no connections yet; add one with `klaviyo-tui connections add NAME`")
        return
    for c in config.connections.values():
        lookup = get_api_key(c.name)
        key = f"{mask_key(lookup.key)} ({lookup.source})" if lookup.key else "no key"
        consent_text = f"consent {c.consent_accepted_at}" if c.has_consent else "NO CONSENT"
        click.echo(f"{c.name:<16} {c.display_name:<24} {c.base_url}  {key}  {consent_text}")


@connections_group.command("test")
@click.argument("name")
@click.pass_context
def connections_test(ctx: click.Context, name: str) -> None:
    """Check NAME's key against Klaviyo and show what it can do."""
    from klaviyo_tui.store.secrets import get_api_key

    config = _store(ctx).config
    connection = config.connections.get(name)
    if connection is None:
        fail(f"no connection named {name!r}", ExitCode.USAGE)
    lookup = get_api_key(name)
    if not lookup.key:
        fail(f"no API key for {name!r}: {lookup.hint or ''}".strip(), ExitCode.AUTH)
    account = _verify(connection, lookup.key, redactor(lookup.key))
    click.echo(f"{name}: OK, connected to {account}")


@connections_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def connections_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove NAME from the config and delete its key from the keyring."""
    from klaviyo_tui.store.secrets import delete_api_key

    store = _store(ctx)
    if name not in store.config.connections:
        fail(f"no connection named {name!r}", ExitCode.USAGE)
    users = [e.name for e in store.config.exports.values() if e.connection == name]
    if users:
        click.echo(f"note: exports {', '.join(users)} use this connection", err=True)
    if not yes and not click.confirm(f"Remove connection {name!r} and its key?", default=False):
        fail("nothing removed", ExitCode.USAGE)
    store.remove_connection(name)
    _save(store)
    delete_api_key(name)
    click.echo(f"removed connection {name!r} and its keyring entry")


@click.group("exports")
def exports_group() -> None:
    """Saved exports: which segments go to which Klaviyo list, and how columns map."""


@exports_group.command("list")
@click.pass_context
def exports_list(ctx: click.Context) -> None:
    config = _store(ctx).config
    if not config.exports:
        click.echo("no exports yet; build one in the app (klaviyo-tui)")
        return
    for e in config.exports.values():
        schedule = f"  schedule {e.schedule}" if e.schedule else ""
        click.echo(
            f"{e.name:<20} {e.connection:<14} list {e.list_id:<8} segments "
            f"{', '.join(e.segments)}{schedule}"
        )


@exports_group.command("show")
@click.argument("name")
@click.pass_context
def exports_show(ctx: click.Context, name: str) -> None:
    config = _store(ctx).config
    export = config.exports.get(name)
    if export is None:
        fail(f"no export named {name!r}", ExitCode.USAGE)
    click.echo(f"export {export.name}")
    click.echo(f"  connection     {export.connection}")
    click.echo(f"  list           {export.list_id} {export.list_name or ''}".rstrip())
    click.echo(f"  default region {export.default_region}")
    click.echo(f"  schedule       {export.schedule or '-'}")
    for segment_name in export.segments:
        segment = config.segments.get(segment_name)
        source = segment.source if segment else "MISSING"
        where = f" where {segment.filter}" if segment and segment.filter else ""
        click.echo(f"  segment        {segment_name}: {source}{where}")
    for field_name, column in export.mapping.fields().items():
        click.echo(f"  map            {field_name:<14} <- {column}")
    for field_name, column in export.mapping.location.items():
        click.echo(f"  map            location.{field_name:<5} <- {column}")
    if export.mapping.properties:
        click.echo(f"  properties     {', '.join(export.mapping.properties)}")


@exports_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def exports_remove(ctx: click.Context, name: str, yes: bool) -> None:
    store = _store(ctx)
    if name not in store.config.exports:
        fail(f"no export named {name!r}", ExitCode.USAGE)
    if not yes and not click.confirm(f"Remove export {name!r}? (history is kept)", default=False):
        fail("nothing removed", ExitCode.USAGE)
    store.remove_export(name)
    _save(store)
    click.echo(f"removed export {name!r}")
