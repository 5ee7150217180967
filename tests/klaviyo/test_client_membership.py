"""Segment-sync endpoints against httpx.MockTransport (the sandbox gains them in parallel):
remove from a list, read members, find members by email, subscribe with consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.klaviyo import (
    InvalidConfiguration,
    InvalidSubscription,
    ListMember,
    NotFoundError,
    SubscriptionProfile,
    UnsearchableValue,
)
from klaviyo_tui.klaviyo.pacing import OPERATIONS
from tests.support.client import Recorder, doc, err, make

LIST = "Y6nRLr"


def no_content(request: httpx.Request) -> httpx.Response:
    return httpx.Response(204 if request.method == "DELETE" else 202)


def pid(i: int) -> str:
    return f"01PROFILE{i:017d}"


# ---- remove --------------------------------------------------------------------------------------


async def test_remove_from_list_sends_batches_of_a_thousand() -> None:
    rec = Recorder(no_content)
    ids = [pid(i) for i in range(2500)] + [pid(3), pid(7)]  # repeats are sent once
    async with make(rec) as k:
        assert await k.remove_from_list(LIST, ids) == 2500
    assert [r.method for r in rec.requests] == ["DELETE"] * 3
    assert {r.url.path for r in rec.requests} == {f"/api/lists/{LIST}/relationships/profiles"}
    bodies = [orjson.loads(r.content) for r in rec.requests]
    assert [len(b["data"]) for b in bodies] == [1000, 1000, 500]
    assert bodies[0]["data"][0] == {"type": "profile", "id": pid(0)}
    assert rec.requests[0].headers["content-type"] == "application/vnd.api+json"


async def test_remove_from_list_refuses_bad_ids_and_names_a_missing_list() -> None:
    rec = Recorder(lambda r: err(404, "List not found."))
    async with make(rec) as k:
        with pytest.raises(InvalidConfiguration):
            await k.remove_from_list(LIST, [pid(1), "../x"])
        assert rec.requests == []
        with pytest.raises(NotFoundError, match=f"list {LIST} does not exist"):
            await k.remove_from_list(LIST, [pid(1)])
        assert await k.remove_from_list(LIST, []) == 0
    assert len(rec.requests) == 1


# ---- members -----------------------------------------------------------------------------------


def member(i: int, email: str | None = "") -> dict[str, Any]:
    attrs = {} if email is None else {"email": email or f"m{i}@x.com"}
    return {"type": "profile", "id": pid(i), "attributes": attrs}


async def test_list_members_follows_next_links_and_drops_repeats() -> None:
    pages = {
        None: ([member(1), member(2)], "c2"),
        "c2": ([member(2), member(3, None)], "c3"),  # member 2 repeats across pages
        "c3": ([member(1), member(4)], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        data, nxt = pages[request.url.params.get("page[cursor]")]
        link = f"https://a.klaviyo.com/api/lists/{LIST}/profiles?page%5Bcursor%5D={nxt}"
        return doc({"data": data, "links": {"next": link if nxt else None}})

    rec = Recorder(handler)
    async with make(rec) as k:
        got = [m async for m in k.list_members(LIST)]
    assert got == [
        ListMember(pid(1), "m1@x.com"),
        ListMember(pid(2), "m2@x.com"),
        ListMember(pid(3), None),
        ListMember(pid(4), "m4@x.com"),
    ]
    first = rec.requests[0].url.params
    assert (first["fields[profile]"], first["page[size]"]) == ("email,joined_group_at", "100")
    assert "filter" not in first and first["sort"] == "joined_group_at"
    assert rec.requests[0].url.path == f"/api/lists/{LIST}/profiles"
    assert len(rec.requests) == 3


async def test_list_members_joined_since_asks_for_those_only_oldest_first() -> None:
    attributes = {"email": "a@x.com", "joined_group_at": "2026-12-01T10:00:00+00:00"}
    joined = {"type": "profile", "id": pid(1), "attributes": attributes}
    rec = Recorder(lambda request: doc({"data": [joined], "links": {"next": None}}))
    since = datetime(2026, 12, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    async with make(rec) as k:
        got = [m async for m in k.list_members(LIST, joined_since=since)]
    assert got == [ListMember(pid(1), "a@x.com", "2026-12-01T10:00:00+00:00")]
    params = rec.requests[0].url.params
    assert params["filter"] == "greater-than(joined_group_at,2026-12-01T10:00:00+00:00)"
    assert params["sort"] == "joined_group_at"


async def test_profile_emails_asks_by_id_100_at_a_time_and_leaves_out_the_gone() -> None:
    ids = [pid(i) for i in range(150)]

    def handler(request: httpx.Request) -> httpx.Response:
        asked = request.url.params["filter"].removeprefix("any(id,[").removesuffix("])")
        wanted = [v.strip('"') for v in asked.split(",")]
        found = [member(int(i[-4:]), f"e{i[-4:]}@x.com") for i in wanted if i != pid(7)]
        return doc({"data": found, "links": {"next": None}})

    rec = Recorder(handler)
    async with make(rec) as k:
        got = await k.profile_emails([*ids, pid(3)])
    assert len(rec.requests) == 2  # 100 ids a call, each id once
    assert rec.requests[0].url.params["fields[profile]"] == "email"
    assert pid(7) not in got and len(got) == 149
    assert got[pid(3)] == "e0003@x.com"


async def test_list_members_by_email_filters_100_at_a_time() -> None:
    emails = [f"u{i}@x.com" for i in range(230)] + ['o"brien@x.com', "u5@x.com", " "]
    seen_filters: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/api/lists/{LIST}/relationships/profiles"
        if "page[cursor]" in request.url.params:
            return doc({"data": [{"type": "profile", "id": pid(999)}]})
        assert request.url.params["page[size]"] == "100"
        seen_filters.append(request.url.params["filter"])
        n = len(seen_filters)
        link = f"https://a.klaviyo.com/api/lists/{LIST}/relationships/profiles?page%5Bcursor%5D=x"
        data = [{"type": "profile", "id": pid(n)}, {"type": "profile", "id": pid(999)}]
        return doc({"data": data, "links": {"next": link if n == 1 else None}})

    rec = Recorder(handler)
    async with make(rec) as k:
        ids = await k.list_members_by_email(LIST, emails)
    assert ids == [pid(1), pid(999), pid(2), pid(3)]
    assert len(seen_filters) == 3  # 231 distinct emails: 100, 100, 31
    assert seen_filters[0].startswith('any(email,["u0@x.com","u1@x.com",')
    assert seen_filters[0].endswith('"u99@x.com"])')
    assert seen_filters[2].endswith(""""u229@x.com",'o"brien@x.com'])""")
    assert seen_filters[2].count(",") == 31  # "any(email," and 30 between 31 values


@pytest.mark.parametrize("bad", ["a\\b@x.com", "it's\"odd@x.com", "line\nbreak@x.com"])
async def test_values_that_cannot_be_quoted_are_refused_before_sending(bad: str) -> None:
    rec = Recorder(lambda r: doc({"data": []}))
    async with make(rec) as k:
        with pytest.raises(UnsearchableValue) as info:
            await k.list_members_by_email(LIST, ["fine@x.com", bad])
    assert rec.requests == []
    assert info.value.values == (bad,)
    assert info.value.exit_code == ExitCode.INPUT
    assert info.value.hint


# ---- subscribe -----------------------------------------------------------------------------------


async def test_subscribe_sends_batches_and_the_exact_body() -> None:
    rec = Recorder(no_content)
    profiles = [SubscriptionProfile(email=f"s{i}@x.com") for i in range(1500)]
    profiles[1] = SubscriptionProfile(
        email="t@x.com", phone_number="+14155550123", sms_marketing=True
    )
    async with make(rec) as k:
        assert await k.subscribe_profiles(LIST, profiles, historical=False) == 1500
    assert [r.url.path for r in rec.requests] == ["/api/profile-subscription-bulk-create-jobs"] * 2
    first = orjson.loads(rec.requests[0].content)
    assert len(first["data"]["attributes"]["profiles"]["data"]) == 1000
    assert (
        len(orjson.loads(rec.requests[1].content)["data"]["attributes"]["profiles"]["data"]) == 500
    )
    assert first["data"]["type"] == "profile-subscription-bulk-create-job"
    assert first["data"]["attributes"]["historical_import"] is False
    assert first["data"]["relationships"] == {"list": {"data": {"type": "list", "id": LIST}}}
    subscribed = {"consent": "SUBSCRIBED"}
    email_only = {"email": {"marketing": subscribed}}
    assert first["data"]["attributes"]["profiles"]["data"][:2] == [
        {
            "type": "profile",
            "attributes": {"email": "s0@x.com", "subscriptions": email_only},
        },
        {
            "type": "profile",
            "attributes": {
                "email": "t@x.com",
                "phone_number": "+14155550123",
                "subscriptions": {
                    "email": {"marketing": subscribed},
                    "sms": {"marketing": subscribed},
                },
            },
        },
    ]


async def test_historical_subscribe_sends_past_consent_times_in_utc() -> None:
    rec = Recorder(no_content)
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC) + timedelta(hours=2)
    local = when.astimezone(timezone(timedelta(hours=2)))
    async with make(rec) as k:
        await k.subscribe_profiles(
            LIST, [SubscriptionProfile(email="h@x.com", consented_at=local)], historical=True
        )
    body = orjson.loads(rec.requests[0].content)["data"]
    assert body["attributes"]["historical_import"] is True
    marketing = body["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]["email"]
    assert marketing == {"marketing": {"consent": "SUBSCRIBED", "consented_at": when.isoformat()}}


@pytest.mark.parametrize(
    ("profile", "historical", "words"),
    [
        (SubscriptionProfile(), False, "neither an email nor a phone"),
        (SubscriptionProfile(phone_number="+1415"), False, "email marketing but has no email"),
        (SubscriptionProfile(email="a@x.com", sms_marketing=True), False, "no phone number"),
        (SubscriptionProfile(email="a@x.com", email_marketing=False), False, "no channel"),
        (SubscriptionProfile(email="a@x.com"), True, "needs a consent time"),
        (
            SubscriptionProfile(email="a@x.com", consented_at=datetime(2024, 1, 1)),
            True,
            "with a time zone",
        ),
        (
            SubscriptionProfile(
                email="a@x.com", consented_at=datetime.now(UTC) + timedelta(days=1)
            ),
            True,
            "in the future",
        ),
        (
            SubscriptionProfile(email="a@x.com", consented_at=datetime(2024, 1, 1, tzinfo=UTC)),
            False,
            "only in a historical import",
        ),
    ],
)
async def test_subscriptions_that_would_fail_or_assert_false_consent_are_refused(
    profile: SubscriptionProfile, historical: bool, words: str
) -> None:
    rec = Recorder(no_content)
    fine = SubscriptionProfile(email="ok@x.com", consented_at=datetime(2024, 1, 1, tzinfo=UTC))
    if not historical:
        fine = SubscriptionProfile(email="ok@x.com")
    async with make(rec) as k:
        with pytest.raises(InvalidSubscription, match=words) as info:
            await k.subscribe_profiles(LIST, [fine, profile], historical=historical)
    assert str(info.value).startswith("Profile 2 ")
    assert info.value.exit_code == ExitCode.INPUT
    assert rec.requests == []  # nothing sent when any profile is wrong


def test_sync_operations_carry_the_spec_tiers_and_scopes() -> None:
    expected = {
        "remove_profiles_from_list": (10, 150, ("lists:write", "profiles:write")),
        "get_profiles_for_list": (75, 700, ("lists:read", "profiles:read")),
        "get_profile_ids_for_list": (75, 700, ("lists:read", "profiles:read")),
        "bulk_subscribe_profiles": (
            75,
            700,
            ("lists:write", "profiles:write", "subscriptions:write"),
        ),
    }
    for name, (burst, steady, scopes) in expected.items():
        op = OPERATIONS[name]
        assert (op.burst, op.steady, op.scopes) == (burst, steady, scopes)
