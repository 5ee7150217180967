"""Sandbox endpoints over real loopback HTTP: auth, headers, lists, paging, filters, bulk import."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from klaviyo_tui.sandbox import DEMO_KEY, SandboxServer, SandboxSettings
from tests.support.sandbox import (
    client,
    create_list,
    headers,
    import_body,
    list_members,
    member_emails,
    wait_job,
)

READER = "pk_" + "r" * 34
NOPROF = "pk_" + "n" * 34


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    keys = {
        DEMO_KEY: frozenset(
            {"accounts:read", "lists:read", "lists:write", "profiles:read", "profiles:write"}
        ),
        READER: frozenset({"lists:read", "profiles:read"}),
        NOPROF: frozenset({"lists:read", "lists:write"}),
    }
    with SandboxServer(SandboxSettings(keys=keys, rate_limits=False, job_delay=0)) as s:
        yield s


@pytest.fixture
def c(server: SandboxServer) -> Iterator[httpx.Client]:
    with client(server.base_url) as cl:
        yield cl


def test_accounts_one_element(c: httpx.Client) -> None:
    r = c.get("/api/accounts")
    assert r.status_code == 200
    data = r.json()["data"]
    assert len(data) == 1
    assert data[0]["type"] == "account"
    assert data[0]["attributes"]["contact_information"]["organization_name"] == "Sandbox Store"


def test_auth_missing_unknown_and_bearer(server: SandboxServer) -> None:
    with httpx.Client(base_url=server.base_url) as raw:
        r = raw.get("/api/lists", headers={"revision": "2026-07-15"})
        assert r.status_code == 401
        assert r.json()["errors"][0]["status"] == 401
        r = raw.get("/api/lists", headers={"revision": "2026-07-15", "Authorization": "Bearer x"})
        assert r.status_code == 401
        r = raw.get("/api/lists", headers=headers("pk_" + "x" * 34))
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "authentication_failed"


def test_scope_checked_before_body(server: SandboxServer) -> None:
    with client(server.base_url, READER) as cl:
        assert cl.get("/api/accounts").status_code == 403
        r = cl.post("/api/profile-bulk-import-jobs", content=b"")
        assert r.status_code == 403
        assert r.json()["errors"][0]["code"] == "permission_denied"
        assert cl.get("/api/lists").status_code == 200
    with client(server.base_url, NOPROF) as cl:
        assert cl.post("/api/profile-bulk-import-jobs", content=b"").status_code == 403
    with client(server.base_url) as cl:  # has the scope: the empty body is then a 400
        assert cl.post("/api/profile-bulk-import-jobs", content=b"").status_code == 400


@pytest.mark.parametrize("revision", [None, "2019-01-01", "latest"])
def test_revision_required_and_known(server: SandboxServer, revision: str | None) -> None:
    h = headers()
    del h["revision"]
    if revision:
        h["revision"] = revision
    r = httpx.get(f"{server.base_url}/api/lists", headers=h)
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"parameter": "revision"}


def test_revision_pre_accepted(server: SandboxServer) -> None:
    r = httpx.get(f"{server.base_url}/api/lists", headers=headers(revision="2026-04-15.pre"))
    assert r.status_code == 200


def test_content_types(c: httpx.Client) -> None:
    body = orjson.dumps({"data": {"type": "list", "attributes": {"name": "ct"}}})
    for ctype, status in [
        ("application/json", 201),
        ("application/vnd.api+json; charset=utf-8", 201),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
    ]:
        r = c.post("/api/lists", content=body, headers={"Content-Type": ctype})
        assert r.status_code == status, ctype
    r = c.post("/api/lists", content=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 415


def test_paths_404_405_and_trailing_slash(c: httpx.Client) -> None:
    assert c.get("/api/lists/").status_code == 200
    assert c.get("/api/nope").status_code == 404
    r = c.put("/api/lists", content=b"{}")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]
    assert r.json()["errors"][0]["status"] == 405
    assert c.get("/api/lists/NoSuch").status_code == 404
    assert c.get("/").status_code == 404


def test_lists_create_get_delete(c: httpx.Client) -> None:
    list_id = create_list(c, "To delete")
    r = c.get(f"/api/lists/{list_id}/", params={"additional-fields[list]": "profile_count"})
    assert r.status_code == 200
    assert r.json()["data"]["attributes"]["profile_count"] == 0
    assert c.delete(f"/api/lists/{list_id}").status_code == 204
    assert c.get(f"/api/lists/{list_id}").status_code == 404
    assert c.delete(f"/api/lists/{list_id}").status_code == 404


def test_create_list_validation(c: httpx.Client) -> None:
    r = c.post("/api/lists", json={"data": {"type": "list", "attributes": {}}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"] == "/data/attributes/name"
    assert c.post("/api/lists", content=b"{not json").status_code == 400


def test_lists_paging_and_filters(server: SandboxServer) -> None:
    with SandboxServer(SandboxSettings(rate_limits=False)) as s, client(s.base_url) as cl:
        ids = [create_list(cl, f"L{i:02d}") for i in range(35)]
        seen: list[str] = []
        url: str | None = "/api/lists"
        pages = 0
        while url:
            body = cl.get(url).json()
            assert len(body["data"]) <= 10
            seen += [d["id"] for d in body["data"]]
            url = body["links"].get("next")
            assert url is None or url.startswith(s.base_url)
            pages += 1
        assert seen == ids
        assert pages == 4
        r = cl.get("/api/lists", params={"page[size]": "3", "filter": 'equals(name,"L07")'})
        assert [d["id"] for d in r.json()["data"]] == [ids[7]]
        assert "next" not in r.json()["links"]
        f = f'any(id,["{ids[1]}","{ids[2]}"])'
        assert {d["id"] for d in cl.get("/api/lists", params={"filter": f}).json()["data"]} == {
            ids[1],
            ids[2],
        }
        r = cl.get("/api/lists", params={"filter": "any(name,['L01','L03'])", "sort": "-name"})
        assert [d["attributes"]["name"] for d in r.json()["data"]] == ["L03", "L01"]
        assert cl.get("/api/lists", params={"page[size]": "11"}).status_code == 400
        bad = cl.get("/api/lists", params={"filter": "equals(color,'red')"})
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["source"] == {"parameter": "filter"}
        assert cl.get("/api/lists", params={"page[cursor]": "garbage"}).status_code == 400


def test_daily_list_cap() -> None:
    with SandboxServer(SandboxSettings(rate_limits=False)) as s, client(s.base_url) as cl:
        for i in range(150):
            create_list(cl, f"cap {i}")
        r = cl.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "x"}}})
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["errors"][0]["code"] == "throttled"
        assert "RateLimit-Limit" not in r.headers


def _profiles(n: int, prefix: str = "u") -> list[dict[str, object]]:
    return [{"email": f"{prefix}{i}@example.com", "first_name": f"F{i}"} for i in range(n)]


def test_bulk_import_into_list_and_member_paging(server: SandboxServer, c: httpx.Client) -> None:
    list_id = create_list(c, "Bulk")
    r = c.post("/api/profile-bulk-import-jobs", json=import_body(_profiles(250), list_id))
    assert r.status_code == 202
    job = r.json()["data"]
    assert job["attributes"]["status"] == "queued"
    assert job["attributes"]["total_count"] == 250
    done = wait_job(c, job["id"])
    assert done["attributes"]["completed_count"] == 250
    assert done["attributes"]["failed_count"] == 0
    members = list_members(server.base_url, list_id)
    assert len(members) == 250
    assert all(m["attributes"]["joined_group_at"] for m in members)
    # page through with page[size]=20 (more than three pages)
    url: str | None = f"/api/lists/{list_id}/profiles"
    count = pages = 0
    while url:
        body = c.get(url).json()
        count += len(body["data"])
        url = body["links"].get("next")
        pages += 1
    assert count == 250
    assert pages == 13
    desc = c.get(f"/api/lists/{list_id}/profiles", params={"sort": "-joined_group_at"}).json()
    assert desc["data"][0]["attributes"]["email"] == "u249@example.com"
    r = c.get(
        f"/api/lists/{list_id}/profiles",
        params={"filter": 'any(email,["U3@example.com","u7@example.com","nobody@example.com"])'},
    )
    assert {m["attributes"]["email"] for m in r.json()["data"]} == {
        "u3@example.com",
        "u7@example.com",
    }
    joined = members[0]["attributes"]["joined_group_at"]
    r = c.get(
        f"/api/lists/{list_id}/profiles", params={"filter": f"less-than(joined_group_at,{joined})"}
    )
    assert r.json()["data"] == []
    included = c.get(f"/api/profile-bulk-import-jobs/{job['id']}", params={"include": "lists"})
    assert included.json()["included"][0]["id"] == list_id


def test_upsert_ignores_nulls_and_merges(server: SandboxServer, c: httpx.Client) -> None:
    list_id = create_list(c, "Upsert")
    first = [{"email": "ada@example.com", "first_name": "Ada", "properties": {"a": 1}}]
    wait_job(
        c,
        c.post("/api/profile-bulk-import-jobs", json=import_body(first, list_id)).json()["data"][
            "id"
        ],
    )
    second = [
        {
            "email": "ADA@example.com",
            "first_name": None,
            "last_name": "L",
            "properties": {"b": 2, "a": None},
        }
    ]
    wait_job(
        c,
        c.post("/api/profile-bulk-import-jobs", json=import_body(second, list_id)).json()["data"][
            "id"
        ],
    )
    (member,) = list_members(server.base_url, list_id)
    attrs = member["attributes"]
    assert attrs["first_name"] == "Ada"
    assert attrs["last_name"] == "L"
    assert attrs["properties"] == {"a": 1, "b": 2}


def test_bulk_row_errors_all_or_nothing(c: httpx.Client) -> None:
    list_id = create_list(c, "Rows")
    rows = _profiles(5)
    rows[1]["email"] = "not-an-email"
    rows[3] = {"phone_number": "12345"}
    rows[4] = {"first_name": "no identifier"}
    r = c.post("/api/profile-bulk-import-jobs", json=import_body(rows, list_id))
    assert r.status_code == 400
    pointers = [e["source"]["pointer"] for e in r.json()["errors"]]
    assert pointers == [
        "/data/attributes/profiles/data/1/attributes/email",
        "/data/attributes/profiles/data/3/attributes/phone_number",
        "/data/attributes/profiles/data/4",
    ]
    assert c.get("/api/profile-bulk-import-jobs").json()["data"] == [] or all(
        j["attributes"]["total_count"] != 5
        for j in c.get("/api/profile-bulk-import-jobs").json()["data"]
    )


def test_bulk_unknown_list_and_limits(c: httpx.Client) -> None:
    r = c.post("/api/profile-bulk-import-jobs", json=import_body(_profiles(1), "NoSuch"))
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"] == "/data"
    r = c.post("/api/profile-bulk-import-jobs", json=import_body(_profiles(10_001)))
    assert r.status_code == 400
    big = [{"email": "big@example.com", "properties": {"blob": "x" * 110_000}}]
    r = c.post("/api/profile-bulk-import-jobs", json=import_body(big))
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profiles/data/0"
    huge = b'{"data": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    assert c.post("/api/profile-bulk-import-jobs", content=huge).status_code == 413


def test_list_relationships_add_remove(server: SandboxServer, c: httpx.Client) -> None:
    a, b = create_list(c, "A"), create_list(c, "B")
    wait_job(
        c,
        c.post("/api/profile-bulk-import-jobs", json=import_body(_profiles(3, "rel"), a)).json()[
            "data"
        ]["id"],
    )
    ids = [m["id"] for m in list_members(server.base_url, a)]
    refs = {"data": [{"type": "profile", "id": i} for i in ids]}
    assert c.post(f"/api/lists/{b}/relationships/profiles", json=refs).status_code == 204
    assert member_emails(server.base_url, b) == {f"rel{i}@example.com" for i in range(3)}
    one = {"data": [{"type": "profile", "id": ids[0]}]}
    assert (
        c.request("DELETE", f"/api/lists/{b}/relationships/profiles", json=one).status_code == 204
    )
    assert len(list_members(server.base_url, b)) == 2
    bad = {"data": [{"type": "profile", "id": "nope"}]}
    assert c.post(f"/api/lists/{b}/relationships/profiles", json=bad).status_code == 400
    many = {"data": [{"type": "profile", "id": ids[0]}] * 1001}
    assert c.post(f"/api/lists/{b}/relationships/profiles", json=many).status_code == 400


def test_list_deleted_before_job_completes() -> None:
    with (
        SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.3)) as s,
        client(s.base_url) as cl,
    ):
        list_id = create_list(cl, "Vanishing")
        job = cl.post(
            "/api/profile-bulk-import-jobs", json=import_body(_profiles(4), list_id)
        ).json()
        assert cl.delete(f"/api/lists/{list_id}").status_code == 204
        done = wait_job(cl, job["data"]["id"])
        assert done["attributes"]["failed_count"] == 4
        errors = cl.get(f"/api/profile-bulk-import-jobs/{job['data']['id']}/import-errors").json()
        assert errors["data"][0]["attributes"]["original_payload"]["email"] == "u0@example.com"


def test_job_moves_through_states() -> None:
    with (
        SandboxServer(SandboxSettings(rate_limits=False, job_delay=0.4)) as s,
        client(s.base_url) as cl,
    ):
        job_id = cl.post("/api/profile-bulk-import-jobs", json=import_body(_profiles(2))).json()[
            "data"
        ]["id"]
        seen: list[str] = []
        while not seen or seen[-1] != "complete":
            status = cl.get(f"/api/profile-bulk-import-jobs/{job_id}").json()["data"]["attributes"][
                "status"
            ]
            if not seen or seen[-1] != status:
                seen.append(status)
        assert seen[0] == "queued"
        assert seen[-1] == "complete"
        assert "processing" in seen


def test_jobs_collection_filter_sort_paging() -> None:
    with (
        SandboxServer(SandboxSettings(rate_limits=False, job_delay=0)) as s,
        client(s.base_url) as cl,
    ):
        ids = [
            cl.post(
                "/api/profile-bulk-import-jobs", json=import_body(_profiles(1, f"j{i}"))
            ).json()["data"]["id"]
            for i in range(7)
        ]
        for job_id in ids:
            wait_job(cl, job_id)
        got: list[str] = []
        url: str | None = (
            '/api/profile-bulk-import-jobs?page[size]=2&filter=equals(status,"complete")'
        )
        while url:
            body = cl.get(url).json()
            got += [j["id"] for j in body["data"]]
            url = body["links"].get("next")
        assert got == ids
        desc = cl.get("/api/profile-bulk-import-jobs", params={"sort": "-created_at"}).json()
        assert [j["id"] for j in desc["data"]] == ids[::-1]
        none = cl.get(
            "/api/profile-bulk-import-jobs",
            params={"filter": 'any(status,["queued","processing"])'},
        )
        assert none.json()["data"] == []
        assert cl.get("/api/profile-bulk-import-jobs/NOPE").status_code == 404
