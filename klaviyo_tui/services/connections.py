"""Connections: finding a connection's key, opening its client, checking, saving and removing it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from klaviyo_tui.events import ProgressEvent
from klaviyo_tui.klaviyo import KeyCheck, KlaviyoClient
from klaviyo_tui.redaction import mask_key
from klaviyo_tui.store import secrets
from klaviyo_tui.store.config import Config, ConfigError, Connection
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.secrets import ENV_VAR, SecretsError


class NoApiKey(SecretsError):
    """Neither KLAVIYO_API_KEY nor the keyring holds a key for the connection."""

    title = "No API key"


def connection_named(config: Config, name: str) -> Connection:
    """The connection called `name`, or a ConfigError naming the ones that exist."""
    connection = config.connections.get(name)
    if connection is None:
        known = ", ".join(sorted(config.connections)) or "none yet"
        raise ConfigError(
            f"there is no connection named {name!r} (connections: {known})",
            hint="Add it with `klaviyo-tui connections add NAME`, or in the app (c).",
        )
    return connection


def api_key_for(connection: Connection) -> str:
    """The key: KLAVIYO_API_KEY first, then the OS keyring. Blocks (keyring): use a thread."""
    lookup = secrets.get_api_key(connection.name)
    if lookup.key:
        return lookup.key
    raise NoApiKey(
        f"no API key for connection {connection.name!r}"
        + (f" ({lookup.hint})" if lookup.hint else ""),
        hint=(
            f"Set the {ENV_VAR} environment variable (cron, CI, servers without a keyring), or "
            f"store the key in the OS keyring: `klaviyo-tui connections add {connection.name}` "
            "or edit the connection in the app."
        ),
    )


def key_status(connection: Connection) -> str:
    """Where the connection's key comes from, masked: `pk_…abcd (keyring)`, or `no key`."""
    lookup = secrets.get_api_key(connection.name)
    return f"{mask_key(lookup.key)} ({lookup.source})" if lookup.key else "no key"


def key_storage() -> secrets.BackendInfo:
    """Where a stored key would go, and whether that works here. Blocks: use a thread."""
    return secrets.backend_info()


def client_for(
    connection: Connection,
    api_key: str,
    *,
    on_event: Callable[[ProgressEvent], None] | None = None,
) -> KlaviyoClient:
    """A client for the connection's base URL and revision (the only place one is built)."""
    return KlaviyoClient(
        connection.base_url, api_key, revision=connection.revision, on_event=on_event
    )


async def open_client(
    config: Config,
    name: str,
    *,
    on_event: Callable[[ProgressEvent], None] | None = None,
) -> KlaviyoClient:
    """The connection's client with its key looked up off the event loop."""
    connection = connection_named(config, name)
    key = await asyncio.to_thread(api_key_for, connection)
    return client_for(connection, key, on_event=on_event)


async def check_key(connection: Connection, api_key: str) -> KeyCheck:
    """Which scopes the key has and the account's name, learned without writing anything."""
    async with client_for(connection, api_key) as client:
        return await client.verify_key()


@dataclass(frozen=True, slots=True)
class SavedConnection:
    connection: Connection
    key_stored: bool  # False: runs read the key from KLAVIYO_API_KEY
    warning: str | None = None  # about the key's shape


def save_connection(
    config_path: Path, connection: Connection, api_key: str | None
) -> SavedConnection:
    """Store the key (when given) in the keyring, then the connection in the config.

    Nothing half-done: when the config cannot be saved, a key stored for it is deleted again.
    Blocks (keyring, file): use a thread.
    """
    store = ConfigStore(config_path)
    warning = None
    if api_key:
        warning = secrets.store_api_key(connection.name, api_key)
    store.put_connection(connection)
    try:
        store.save()
    except ConfigError as error:
        if api_key:
            secrets.delete_api_key(connection.name)
        raise ConfigError(f"{error.message} (nothing was saved)", hint=error.hint) from None
    return SavedConnection(connection, bool(api_key), warning)


def remove_connection(config_path: Path, name: str) -> list[str]:
    """Remove the connection and delete its key from the keyring; returns the exports that used
    it (they stay, and will ask for another connection). Blocks: use a thread."""
    store = ConfigStore(config_path)
    connection_named(store.config, name)
    users = [e.name for e in store.config.exports.values() if e.connection == name]
    store.remove_connection(name)
    store.save()
    secrets.delete_api_key(name)
    return users
