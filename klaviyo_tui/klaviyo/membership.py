"""List membership operations for segment sync: read members, find them by email, remove them,
and subscribe profiles with consent.

Each call pages (`links.next`) or chunks (≤ 1,000 ids or profiles, ≤ 100 filter values) by
itself; callers pass whole collections. Bodies follow the spec's request schemas exactly
(tests/klaviyo/test_client_schema.py checks them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from klaviyo_tui.klaviyo.base import SUBSCRIBE_JOBS, ClientBase, check_id, quote_filter
from klaviyo_tui.klaviyo.exceptions import InvalidSubscription, UnsearchableValue
from klaviyo_tui.klaviyo.models import ListMember, SubscriptionProfile, as_dict, as_str

#: Profile ids per remove call, and profiles per subscribe call (the spec's limits).
MAX_IDS_PER_CALL = 1_000
MAX_SUBSCRIBE_PER_CALL = 1_000
#: Values per `any(email,[…])` filter: undocumented; the integrations we know use 100.
MAX_FILTER_VALUES = 100


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _subscription_resource(profile: SubscriptionProfile, *, historical: bool) -> dict[str, Any]:
    """One `ProfileSubscriptionCreateQueryResourceObject`; ValueError says what is wrong (the
    caller adds which profile)."""
    email = (profile.email or "").strip() or None
    phone = (profile.phone_number or "").strip() or None
    if email is None and phone is None:
        raise ValueError("has neither an email nor a phone number")
    if profile.email_marketing and email is None:
        raise ValueError("asks for email marketing but has no email")
    if profile.sms_marketing and phone is None:
        raise ValueError("asks for SMS marketing but has no phone number")
    if not (profile.email_marketing or profile.sms_marketing):
        raise ValueError("subscribes to no channel (email or SMS marketing)")
    consent: dict[str, Any] = {"consent": "SUBSCRIBED"}
    when = profile.consented_at
    if historical:
        if when is None or when.tzinfo is None:
            raise ValueError(
                "needs a consent time with a time zone: a historical import requires one"
            )
        if when > datetime.now(UTC):
            raise ValueError(f"has a consent time in the future ({when.isoformat()})")
        consent["consented_at"] = when.astimezone(UTC).isoformat()
    elif when is not None:
        raise ValueError("has a consent time, which Klaviyo accepts only in a historical import")
    subscriptions: dict[str, Any] = {}
    if profile.email_marketing:
        subscriptions["email"] = {"marketing": consent}
    if profile.sms_marketing:
        subscriptions["sms"] = {"marketing": consent}
    attributes: dict[str, Any] = {}
    if email is not None:
        attributes["email"] = email
    if phone is not None:
        attributes["phone_number"] = phone
    attributes["subscriptions"] = subscriptions
    return {"type": "profile", "attributes": attributes}


def subscribe_body(list_id: str, resources: Sequence[dict[str, Any]], historical: bool) -> bytes:
    """A `SubscriptionCreateJobCreateQuery`: the list goes in `relationships.list` (singular)."""
    return orjson.dumps(
        {
            "data": {
                "type": "profile-subscription-bulk-create-job",
                "attributes": {
                    "profiles": {"data": list(resources)},
                    "historical_import": historical,
                },
                "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
            }
        }
    )


class MembershipOps(ClientBase):
    """The segment-sync half of KlaviyoClient (mixed in; see client.py)."""

    async def remove_from_list(self, list_id: str, profile_ids: Iterable[str]) -> int:
        """Remove profiles from a list by id, ≤ 1,000 a call (consent is unchanged).

        Returns how many distinct ids were sent. Removing is idempotent, so an ambiguous
        failure is simply sent again."""
        check_id(list_id, "list")
        ids = list(dict.fromkeys(profile_ids))
        for profile_id in ids:
            check_id(profile_id, "profile")
        for chunk in _chunks(ids, MAX_IDS_PER_CALL):
            body = orjson.dumps({"data": [{"type": "profile", "id": i} for i in chunk]})
            await self._send(
                "remove_profiles_from_list",
                "DELETE",
                f"/api/lists/{list_id}/relationships/profiles",
                body=body,
                not_found=f"list {list_id} does not exist in this account.",
            )
        return len(ids)

    async def list_members(
        self, list_id: str, joined_since: datetime | None = None
    ) -> AsyncIterator[ListMember]:
        """Every member of a list as (profile id, email, joined), 100 a page, each profile once,
        oldest member first (one who joins during the read comes last, not on a page already
        read); with `joined_since`, only those who joined the list after it.

        Klaviyo's pages can repeat records: the ids seen are kept to drop repeats (about 100
        bytes per member)."""
        check_id(list_id, "list")
        params = {"fields[profile]": "email,joined_group_at", "page[size]": "100"}
        params["sort"] = "joined_group_at"
        if joined_since is not None:  # an unquoted ISO 8601 datetime, written by us
            since = joined_since.astimezone(UTC).isoformat()
            params["filter"] = f"greater-than(joined_group_at,{since})"
        seen: set[str] = set()
        async for item in self._pages(
            "get_profiles_for_list",
            f"/api/lists/{list_id}/profiles",
            params,
            not_found=f"list {list_id} does not exist in this account.",
        ):
            profile_id = as_str(item.get("id"))
            if not profile_id or profile_id in seen:
                continue
            seen.add(profile_id)
            attributes = as_dict(item.get("attributes"))
            email, joined = attributes.get("email"), attributes.get("joined_group_at")
            yield ListMember(
                profile_id,
                email if isinstance(email, str) and email else None,
                joined if isinstance(joined, str) and joined else None,
            )

    async def profile_emails(self, profile_ids: Iterable[str]) -> dict[str, str | None]:
        """The current email of each of these profiles (`GET /api/profiles` by id, 100 a call);
        a profile Klaviyo no longer has (deleted, merged into another) is absent."""
        wanted = list(dict.fromkeys(profile_ids))
        for profile_id in wanted:
            check_id(profile_id, "profile")
        found: dict[str, str | None] = {}
        for chunk in _chunks(wanted, MAX_FILTER_VALUES):
            literals = ",".join(f'"{i}"' for i in chunk)
            async for item in self._pages(
                "get_profiles",
                "/api/profiles",
                {
                    "filter": f"any(id,[{literals}])",
                    "fields[profile]": "email",
                    "page[size]": "100",
                },
            ):
                profile_id = as_str(item.get("id"))
                email = as_dict(item.get("attributes")).get("email")
                if profile_id in chunk:
                    found[profile_id] = email if isinstance(email, str) and email else None
        return found

    async def list_members_by_email(self, list_id: str, emails: Iterable[str]) -> list[str]:
        """Profile ids of the list's members that have one of `emails` (100 emails a call).

        Raises UnsearchableValue, before sending anything, for values that cannot be written
        as a filter literal: a broken filter could match other profiles."""
        check_id(list_id, "list")
        wanted, quoted = _quoted_emails(emails)
        found: dict[str, None] = {}
        for chunk in _chunks(wanted, MAX_FILTER_VALUES):
            literals = ",".join(str(quoted[e]) for e in chunk)
            async for item in self._pages(
                "get_profile_ids_for_list",
                f"/api/lists/{list_id}/relationships/profiles",
                {"filter": f"any(email,[{literals}])", "page[size]": "100"},
                not_found=f"list {list_id} does not exist in this account.",
            ):
                profile_id = as_str(item.get("id"))
                if profile_id:
                    found[profile_id] = None
        return list(found)

    async def profile_subscriptions(self, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The `subscriptions` object of each profile with one of `emails` (100 emails a call,
        `GET /api/profiles` with `additional-fields[profile]=subscriptions`), by lower-cased
        email. Emails without a profile are absent. Raises UnsearchableValue like
        `list_members_by_email`."""
        wanted, quoted = _quoted_emails(emails)
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(wanted, MAX_FILTER_VALUES):
            literals = ",".join(str(quoted[e]) for e in chunk)
            async for item in self._pages(
                "get_profiles",
                "/api/profiles",
                {
                    "filter": f"any(email,[{literals}])",
                    "additional-fields[profile]": "subscriptions",
                    "page[size]": "100",
                },
            ):
                attributes = as_dict(item.get("attributes"))
                email = attributes.get("email")
                if isinstance(email, str) and email:
                    found[email.strip().lower()] = as_dict(attributes.get("subscriptions"))
        return found

    async def subscribe_profiles(
        self, list_id: str, profiles: Sequence[SubscriptionProfile], *, historical: bool
    ) -> int:
        """Subscribe profiles to a list with marketing consent, ≤ 1,000 a call.

        This asserts consent: Klaviyo may send double opt-in mail (unless `historical`, which
        needs each profile's past `consented_at`) and lifts unsubscribe/spam suppressions. Each
        call answers 202 with no body (there is no job to poll). Every profile is checked before
        anything is sent. Returns how many profiles were submitted."""
        check_id(list_id, "list")
        resources = []
        for position, profile in enumerate(profiles):
            try:
                resources.append(_subscription_resource(profile, historical=historical))
            except ValueError as problem:
                raise InvalidSubscription(f"Profile {position + 1} {problem}.") from None
        for chunk in _chunks(resources, MAX_SUBSCRIBE_PER_CALL):
            await self._send(
                "bulk_subscribe_profiles",
                "POST",
                SUBSCRIBE_JOBS,
                body=subscribe_body(list_id, chunk, historical),
                not_found=f"list {list_id} does not exist in this account.",
            )
        return len(resources)


def _quoted_emails(emails: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The distinct emails and each one's filter literal; UnsearchableValue (before anything is
    sent) for values that cannot be quoted safely: a broken filter could match other profiles."""
    wanted = list(dict.fromkeys(e.strip() for e in emails if e and e.strip()))
    quoted = {e: quote_filter(e) for e in wanted}
    bad = tuple(e for e, q in quoted.items() if q is None)
    if bad:
        sample = ", ".join(repr(v) for v in bad[:3]) + (" …" if len(bad) > 3 else "")
        raise UnsearchableValue(
            f"{len(bad)} email value(s) cannot be looked up in Klaviyo (a backslash, both "
            f"quote kinds or a control character): {sample}.",
            bad,
        )
    return wanted, {e: q for e, q in quoted.items() if q is not None}
