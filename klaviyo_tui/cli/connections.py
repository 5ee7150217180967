"""`klaviyo-tui connections`: Klaviyo accounts, managed over SSH without the TUI."""

from __future__ import annotations

import asyncio
import os

import click

from klaviyo_tui.cli.context import CliContext, cli_context, pass_cli
from klaviyo_tui.cli.output import emit_json, say
from klaviyo_tui.cli.prompts import ask, confirm, has_terminal, nothing_changed
from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.redaction import mask_key
from klaviyo_tui.services import connections as service
from klaviyo_tui.store import consent
from klaviyo_tui.store.config import DEFAULT_BASE_URL, DEFAULT_REVISION, Connection
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.secrets import ENV_VAR


@click.group("connections")
def connections_group() -> None:
    """Klaviyo accounts (the API key lives in the OS keyring, never in the config file).

    \b
    Examples:
      klaviyo-tui connections add acme
      klaviyo-tui connections list
      klaviyo-tui connections test acme
    """


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

    \b
    Examples:
      klaviyo-tui connections add acme --display-name "Acme production"
      KLAVIYO_API_KEY=pk_... klaviyo-tui connections add acme --yes   (no terminal)
    """
    config_path = cli_context(ctx).config_path
    load_config(config_path)  # a broken file stops us before any question
    display = display_name or (
        ask("Display name (what this connection is for)", default=name, flag="--display-name")
        if has_terminal()
        else name
    )
    env_key = os.environ.get(ENV_VAR, "").strip()
    backend = service.key_storage()
    if env_key:
        key = env_key
        say(f"Using the key from {ENV_VAR} ({mask_key(key)}); it is not stored.", err=True)
    else:
        if backend.usable:
            say(f"The key will be stored in {backend.name}. {backend.message}".strip(), err=True)
        else:
            say(
                f"No usable OS keyring here: the key is checked but not stored; set {ENV_VAR} "
                "when you run exports from this connection.",
                err=True,
            )
        key = ask(
            "Klaviyo private API key (input hidden)",
            hide=True,
            flag=f"the key on standard input, or {ENV_VAR} set",
        )
    say(f"\n{consent.CONSENT_TITLE}\n\n{consent.CONSENT_TEXT}\n", err=True)
    if not accept_consent and not confirm("Do you accept these terms?"):
        nothing_changed("consent not given; nothing changed")
    connection = consent.accept(
        Connection(name=name, display_name=display, base_url=base_url, revision=revision)
    )
    say(f"connected to {_verified_account(connection, key)}", err=True)
    store_key = key if not env_key and backend.usable else None
    saved = service.save_connection(config_path, connection, store_key)
    if saved.warning:
        say(f"warning: {saved.warning}", err=True)
    where = f"in {backend.name}" if saved.key_stored else f"read from {ENV_VAR}"
    if not env_key and not saved.key_stored:
        where = f"not stored: set {ENV_VAR}"
    say(f"saved connection {name!r} (key {mask_key(key)}, {where})")


def _verified_account(connection: Connection, key: str) -> str:
    """Check the key live; an AppError (exit 4) when it cannot export."""
    check = asyncio.run(service.check_key(connection, key))
    if not check.ok:
        raise AppError(check.fix_hint, exit_code=ExitCode.AUTH)
    return check.account_name or (
        "the account (the key cannot read the account name: accounts:read not granted)"
    )


@connections_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def connections_list(obj: CliContext, as_json: bool) -> None:
    """Connections, whether consent is recorded and where each key comes from.

    \b
    Examples:
      klaviyo-tui connections list
      klaviyo-tui connections list --json
    """
    obj.as_json = as_json
    config = obj.config()
    if as_json:
        emit_json(
            [
                {
                    "name": c.name,
                    "display_name": c.display_name,
                    "base_url": c.base_url,
                    "revision": c.revision,
                    "key": service.key_status(c),
                    "consent_accepted_at": c.consent_accepted_at,
                }
                for _, c in sorted(config.connections.items())
            ]
        )
        return
    if not config.connections:
        say("no connections yet; add one with `klaviyo-tui connections add NAME`")
        return
    for _, c in sorted(config.connections.items()):
        key = service.key_status(c)
        consent_text = f"consent {c.consent_accepted_at}" if c.has_consent else "NO CONSENT"
        say(f"{c.name:<16} {c.display_name:<24} {c.base_url}  {key}  {consent_text}")


@connections_group.command("test")
@click.argument("name")
@click.pass_context
def connections_test(ctx: click.Context, name: str) -> None:
    """Check NAME's key against Klaviyo and show what it can do.

    \b
    Example:
      klaviyo-tui connections test acme
    """
    config = load_config(cli_context(ctx).config_path)
    connection = service.connection_named(config, name)
    account = _verified_account(connection, service.api_key_for(connection))
    say(f"{name}: OK, connected to {account}")


@connections_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def connections_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove NAME from the config and delete its key from the keyring.

    \b
    Example:
      klaviyo-tui connections remove acme --yes
    """
    config_path = cli_context(ctx).config_path
    config = load_config(config_path)
    service.connection_named(config, name)
    users = [e.name for e in config.exports.values() if e.connection == name]
    if users:
        say(f"note: exports {', '.join(users)} use this connection", err=True)
    if not yes and not confirm(f"Remove connection {name!r} and its key?"):
        nothing_changed()
    service.remove_connection(config_path, name)
    say(f"removed connection {name!r} and its keyring entry")
