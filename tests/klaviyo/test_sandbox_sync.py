"""Endpoints for segment sync over loopback: remove from list, membership and id reads, profiles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from klaviyo_tui.sandbox import SandboxServer, SandboxSettings
from tests.support.sandbox import client, create_list, list_members, member_emails, run_import


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=0)) as s:
        yield s


@pytest.fixture
def c(server: SandboxServer) -> Iterator[httpx.Client]:
    with client(server.base_url) as cl:
        yield cl


def _fill(c: httpx.Client, name: str, n: int) -> tuple[str, list[str]]:
    list_id = create_list(c, name)
    rows = [{"email": f"{name.lower()}{i}@example.com", "first_name": f"F{i}"} for i in range(n)]
    run_import(c, rows, list_id)
    return list_id, [r["email"] for r in rows]


def _pages(c: httpx.Client, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    next_url: str | None = url
    query: dict[str, str] | None = params
    while next_url:
        r = c.get(next_url, params=query)
        assert r.status_code == 200, r.text
        out += r.json()["data"]
        next_url, query = r.json()["links"].get("next"), None
    return out


def test_remove_from_list_keeps_profile_and_other_lists(
    server: SandboxServer, c: httpx.Client
) -> None:
    a, emails = _fill(c, "Remove", 5)
    b = create_list(c, "Other")
    ids = [m["id"] for m in list_members(server.base_url, a)]
    refs = {"data": [{"type": "profile", "id": i} for i in ids]}
    assert c.post(f"/api/lists/{b}/relationships/profiles", json=refs).status_code == 204
    two = {"data": [{"type": "profile", "id": i} for i in ids[:2]]}
    path = f"/api/lists/{a}/relationships/profiles"
    assert c.request("DELETE", path, json=two).status_code == 204
    assert member_emails(server.base_url, a) == set(emails[2:])
    assert member_emails(server.base_url, b) == set(emails)
    assert c.get(f"/api/profiles/{ids[0]}").json()["data"]["attributes"]["email"] == emails[0]
    # known ids that are no longer members: a no-op, so a retried DELETE still gets 204
    assert c.request("DELETE", path, json=two).status_code == 204
    bad = {"data": [{"type": "profile", "id": ids[2]}, {"type": "profile", "id": "nope"}]}
    r = c.request("DELETE", path, json=bad)
    assert r.status_code == 400
    assert [e["source"]["pointer"] for e in r.json()["errors"]] == ["/data/1/id"]
    assert len(list_members(server.base_url, a)) == 3  # all-or-nothing
    many = {"data": [{"type": "profile", "id": ids[2]}] * 1001}
    assert c.request("DELETE", path, json=many).status_code == 400


def test_list_profiles_sparse_fieldset_and_paging(c: httpx.Client) -> None:
    list_id, emails = _fill(c, "Sparse", 230)
    params = {"fields[profile]": "email", "page[size]": "100"}
    members = _pages(c, f"/api/lists/{list_id}/profiles", params)
    assert [m["attributes"]["email"] for m in members] == emails
    assert all(set(m["attributes"]) == {"email", "joined_group_at"} for m in members)
    first = c.get(f"/api/lists/{list_id}/profiles", params=params).json()
    assert "fields%5Bprofile%5D=email" in first["links"]["next"]
    loc = c.get(
        f"/api/lists/{list_id}/profiles",
        params={"fields[profile]": "first_name,location.city", "page[size]": "1"},
    ).json()["data"][0]["attributes"]
    assert set(loc) == {"first_name", "joined_group_at"}
    bad = c.get(f"/api/lists/{list_id}/profiles", params={"fields[profile]": "shoe_size"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"] == {"parameter": "fields[profile]"}
    assert c.get(f"/api/lists/{list_id}/profiles", params={"page[size]": "101"}).status_code == 400


def test_list_profile_ids_filtered_by_email(server: SandboxServer, c: httpx.Client) -> None:
    list_id, emails = _fill(c, "Ids", 150)
    run_import(c, [{"email": "outsider@example.com"}])
    wanted = [*emails[:99], "outsider@example.com"]
    flt = "any(email,[" + ",".join(f'"{e.upper()}"' for e in wanted) + "])"
    got = _pages(
        c, f"/api/lists/{list_id}/relationships/profiles", {"filter": flt, "page[size]": "40"}
    )
    assert all(set(d) == {"type", "id"} for d in got)
    by_id = {m["id"]: m["attributes"]["email"] for m in list_members(server.base_url, list_id)}
    assert sorted(by_id[d["id"]] for d in got) == sorted(emails[:99])
    too_many = "any(email,[" + ",".join(f'"x{i}@example.com"' for i in range(101)) + "])"
    r = c.get(f"/api/lists/{list_id}/relationships/profiles", params={"filter": too_many})
    assert r.status_code == 400
    assert "at most 100" in r.json()["errors"][0]["detail"]


def test_profiles_by_email_and_one_profile(c: httpx.Client) -> None:
    run_import(
        c,
        [
            {"email": "pa@example.com", "external_id": "E-PA", "phone_number": "+14155550131"},
            {"email": "pb@example.com"},
        ],
    )
    flt = 'any(email,["PA@example.com","pb@example.com","none@example.com"])'
    data = c.get("/api/profiles", params={"filter": flt, "fields[profile]": "email"}).json()["data"]
    assert sorted(d["attributes"]["email"] for d in data) == ["pa@example.com", "pb@example.com"]
    assert all(set(d["attributes"]) == {"email"} for d in data)
    by_ext = c.get("/api/profiles", params={"filter": 'equals(external_id,"E-PA")'}).json()
    assert [d["attributes"]["email"] for d in by_ext["data"]] == ["pa@example.com"]
    pid = by_ext["data"][0]["id"]
    one = c.get(f"/api/profiles/{pid}", params={"additional-fields[profile]": "subscriptions"})
    marketing = one.json()["data"]["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] == "NEVER_SUBSCRIBED"
    assert marketing["can_receive_email_marketing"] is False
    assert "subscriptions" not in c.get(f"/api/profiles/{pid}").json()["data"]["attributes"]
    assert c.get("/api/profiles/01NOPE").status_code == 404
    assert c.get("/api/profiles", params={"sort": "email"}).status_code == 400
    pages = _pages(c, "/api/profiles", {"page[size]": "1", "filter": flt})
    assert len(pages) == 2
