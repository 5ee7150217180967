"""Klaviyo lists of a connection's account: search, look up by id, find-or-create by name."""

from __future__ import annotations

from klaviyo_tui.klaviyo import KlaviyoList, RequestRejected
from klaviyo_tui.services.connections import open_client
from klaviyo_tui.store.config import Config


async def find_lists(config: Config, connection: str, search: str = "") -> list[KlaviyoList]:
    """Every list of the account (all pages), sorted by name; `search` matches name or id."""
    async with await open_client(config, connection) as client:
        found = await client.lists()
    needle = search.casefold().strip()
    shown = [lst for lst in found if needle in lst.name.casefold() or needle in lst.id.casefold()]
    return sorted(shown, key=lambda lst: (lst.name.casefold(), lst.id))


async def get_list(config: Config, connection: str, list_id: str) -> KlaviyoList:
    """The list with this id; NotFoundError (with what to do) when the account has none."""
    async with await open_client(config, connection) as client:
        return await client.get_list(list_id.strip())


async def create_list(config: Config, connection: str, name: str) -> tuple[KlaviyoList, bool]:
    """Reuse a list with exactly this name (creation is capped at 150 a day), else create it.

    Returns the list and whether it is new."""
    async with await open_client(config, connection) as client:
        return await client.find_or_create_list(name.strip())


async def list_details(
    config: Config, connection: str, list_id: str
) -> tuple[KlaviyoList, int | None]:
    """The list and its member count; the count is None when Klaviyo will not give it (an
    older revision refusing the field), rather than failing the whole look-up."""
    async with await open_client(config, connection) as client:
        try:
            return await client.list_with_count(list_id.strip())
        except RequestRejected:
            return await client.get_list(list_id.strip()), None
