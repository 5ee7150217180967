"""The async Klaviyo client: key check and lists here; bulk import jobs in imports.py, list
membership and subscriptions in membership.py.

Operations only: the connection, error mapping and paging live in base.py, the retry loop and
pacing in transport.py and pacing.py, and lenient parsing in models.py.
"""

from __future__ import annotations

import orjson

from klaviyo_tui.klaviyo.base import (
    DEFAULT_REVISION,
    DEFAULT_TIMEOUT,
    JOBS,
    SUBSCRIBE_JOBS,
    check_id,
    quote_filter,
)
from klaviyo_tui.klaviyo.exceptions import (
    AmbiguousListName,
    InvalidConfiguration,
    NotFoundError,
    UnexpectedResponse,
)
from klaviyo_tui.klaviyo.imports import ImportOps
from klaviyo_tui.klaviyo.membership import MembershipOps
from klaviyo_tui.klaviyo.models import (
    KeyCheck,
    KlaviyoList,
    account_name,
    as_dict,
    data_items,
    missing_scopes,
    parse_list,
)
from klaviyo_tui.klaviyo.transport import Settled

__all__ = ["DEFAULT_REVISION", "DEFAULT_TIMEOUT", "KlaviyoClient"]
_PROBE_ID = "00000000000000000000000000"  # a job id that cannot exist
_OK = frozenset({200})
_REFUSED_BODY = frozenset({400, 422})  # a write probe's `{}` got past the scope check


class KlaviyoClient(ImportOps, MembershipOps):
    """Async context manager; use `async with KlaviyoClient(url, key) as k: await k.lists()`."""

    async def verify_key(self) -> KeyCheck:
        """Learn which scopes the key has without writing anything.

        Read scopes are probed with GETs (200 granted, 403 missing). Write scopes are probed by
        POSTing `{}`: Klaviyo (and the sandbox) check scopes before the body, so 403 means "scope
        missing" and a 400 means "granted". Any other answer (a 404 from a revision that lacks
        the endpoint, a wrong base URL, ...) is never read as granted: it raises a typed error.
        `subscriptions:write` is optional (subscribe mode): reported, not required.
        """
        name: str | None = None
        account_id: str | None = None
        test_account: bool | None = None
        ok, r = await self._probe("get_accounts", "GET", "/api/accounts", granted=_OK)
        granted: dict[str, bool] = {"accounts:read": ok}
        if ok:
            items = data_items(self._document(r, "get_accounts"))
            if items:
                name, account_id = account_name(items[0]), items[0].get("id") or None
                flag = as_dict(items[0].get("attributes")).get("test_account")
                test_account = flag if isinstance(flag, bool) else None

        page = {"page[size]": "1"}
        granted["lists:read"], _ = await self._probe(
            "get_lists", "GET", "/api/lists", granted=_OK, params=page
        )
        jobs_ok, _ = await self._probe(
            "get_bulk_import_profiles_jobs", "GET", JOBS, granted=_OK, params=page
        )
        if jobs_ok:
            granted["profiles:read"] = True
        elif granted["lists:read"]:
            granted["profiles:read"] = False
        else:  # both unknown from that probe; import errors need profiles:read alone
            granted["profiles:read"], _ = await self._probe(
                "get_errors_for_bulk_import_profiles_job",
                "GET",
                f"{JOBS}/{_PROBE_ID}/import-errors",
                granted=_OK | {404},  # scope checked first: "no such job" means granted
            )

        granted["lists:write"], _ = await self._probe(
            "create_list", "POST", "/api/lists", granted=_REFUSED_BODY, body=b"{}"
        )
        # 403 there means lists:write or profiles:write is missing; we can only pin it when
        # lists:write is known to be present. Otherwise profiles:write stays unconfirmed (False).
        granted["profiles:write"], _ = await self._probe(
            "bulk_import_profiles", "POST", JOBS, granted=_REFUSED_BODY, body=b"{}"
        )
        # Likewise: a 403 pins subscriptions:write only when both write scopes are present. An
        # endpoint the server does not have (404) leaves it unconfirmed: it is optional.
        granted["subscriptions:write"], _ = await self._probe(
            "bulk_subscribe_profiles",
            "POST",
            SUBSCRIBE_JOBS,
            granted=_REFUSED_BODY,
            unknown=frozenset({404}),
            body=b"{}",
        )
        self._granted = dict(granted)
        return KeyCheck(
            account_name=name,
            account_id=str(account_id) if account_id else None,
            granted=granted,
            test_account=test_account,
            missing=missing_scopes(granted),
        )

    # ---- lists ---------------------------------------------------------------------------------

    async def lists(self, name: str | None = None) -> list[KlaviyoList]:
        """Every list (all pages), or those named exactly `name`."""
        params: dict[str, str] | None = None
        if name is not None:
            quoted = quote_filter(name)
            if quoted is not None:
                params = {"filter": f"equals(name,{quoted})"}
        found = [parse_list(item) async for item in self._pages("get_lists", "/api/lists", params)]
        return found if name is None else [lst for lst in found if lst.name == name]

    async def search_lists(self, text: str) -> list[KlaviyoList]:
        """Lists whose name contains `text`, case-insensitive (Klaviyo has no `contains` filter)."""
        needle = text.casefold().strip()
        return [lst for lst in await self.lists() if needle in lst.name.casefold()]

    async def get_list(self, list_id: str) -> KlaviyoList:
        check_id(list_id, "list")
        response = await self._send(
            "get_list",
            "GET",
            f"/api/lists/{list_id}",
            not_found=f"list {list_id} does not exist in this account.",
        )
        items = data_items(self._document(response, "get_list"))
        if not items:
            raise NotFoundError(f"list {list_id} does not exist in this account.")
        return parse_list(items[0])

    async def list_with_count(self, list_id: str) -> tuple[KlaviyoList, int | None]:
        """The list and its member count (`additional-fields[list]=profile_count`, which has a
        stricter rate limit than a plain read); None when the answer has no count."""
        check_id(list_id, "list")
        response = await self._send(
            "get_list",
            "GET",
            f"/api/lists/{list_id}",
            params={"additional-fields[list]": "profile_count"},
            not_found=f"list {list_id} does not exist in this account.",
        )
        items = data_items(self._document(response, "get_list"))
        if not items:
            raise NotFoundError(f"list {list_id} does not exist in this account.")
        count = as_dict(items[0].get("attributes")).get("profile_count")
        valid = isinstance(count, int) and not isinstance(count, bool) and count >= 0
        return parse_list(items[0]), count if valid else None

    async def create_list(self, name: str) -> KlaviyoList:
        """POST /api/lists. After an ambiguous failure, look the name up before posting again."""
        if not name or not name.strip():
            raise InvalidConfiguration("A Klaviyo list needs a name.")
        body = orjson.dumps({"data": {"type": "list", "attributes": {"name": name}}})
        recovered: list[KlaviyoList] = []

        async def already_created() -> bool:
            recovered.extend(await self.lists(name))
            return bool(recovered)

        try:
            response = await self._send(
                "create_list",
                "POST",
                "/api/lists",
                body=body,
                before_retry=already_created,
            )
        except Settled:
            return recovered[0]
        items = data_items(self._document(response, "create_list"))
        if not items or not items[0].get("id"):
            raise UnexpectedResponse("Klaviyo said the list was created but sent no list id.")
        return parse_list(items[0])

    async def find_or_create_list(self, name: str) -> tuple[KlaviyoList, bool]:
        """Reuse the list with this exact name (creation is capped at 150 a day); else create it.

        Klaviyo lets several lists share a name: then none is picked (sending to the wrong one
        cannot be undone) and `AmbiguousListName` names their ids."""
        existing = await self.lists(name)
        if len(existing) > 1:
            raise AmbiguousListName(name, tuple(sorted(lst.id for lst in existing)))
        if existing:
            return existing[0], False
        return await self.create_list(name), True
