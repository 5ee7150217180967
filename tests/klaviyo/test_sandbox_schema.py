"""Every sandbox response body (success and error) validates against the spec's response schema."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from klaviyo_tui.sandbox import SandboxServer, SandboxSettings
from klaviyo_tui.sandbox.operations import BY_ID
from tests.support.sandbox import (
    client,
    create_list,
    email_consent,
    headers,
    import_body,
    subscribe_body,
    wait_job,
)

SPEC = (Path(__file__).parents[2] / "../shared/klaviyo-openapi/stable.json").resolve()


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> JSON Schema `anyOf [null, …]`, recursively."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, out]}
    return out


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"OpenAPI spec not found at {SPEC}; schema checks need the shared spec")
    loaded: dict[str, Any] = json.loads(SPEC.read_text())
    return loaded


@pytest.fixture(scope="module")
def checker(spec: dict[str, Any]) -> Any:
    components = _nullable(copy.deepcopy(spec["components"]))
    formats = FormatChecker()

    @formats.checks("date-time", raises=ValueError)
    def _dt(value: object) -> bool:
        return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None

    @formats.checks("uri")
    def _uri(value: object) -> bool:
        return not isinstance(value, str) or bool(urlparse(value).scheme and urlparse(value).netloc)

    by_op = {
        op["operationId"]: op
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }

    def check(op_id: str, r: httpx.Response) -> None:
        op = by_op[op_id]
        status = str(r.status_code)
        declared_empty = "content" not in op["responses"].get(status, {"content": 1})
        if r.status_code in (202, 204) and declared_empty:  # the spec declares no body
            assert not r.content
            return
        declared = op["responses"].get(status) or op["responses"][f"{status[0]}XX"]
        if "$ref" in declared:
            declared = components["responses"][declared["$ref"].rsplit("/", 1)[1]]
        media = declared["content"]["application/vnd.api+json"]["schema"]
        assert r.headers["content-type"].startswith("application/vnd.api+json")
        schema = {"components": components, **_nullable(copy.deepcopy(media))}
        validator = Draft202012Validator(schema, format_checker=formats)
        errors = sorted(validator.iter_errors(r.json()), key=lambda e: list(e.path))
        assert not errors, f"{op_id} {status}: {errors[0].message} at {list(errors[0].path)}"

    return check


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(
        SandboxSettings(rate_limits=False, job_delay=0, faults={"rowfail": 0.5})
    ) as s:
        yield s


@pytest.fixture
def c(server: SandboxServer) -> Iterator[httpx.Client]:
    with client(server.base_url) as cl:
        yield cl


def _assert_ops_cover_table(seen: set[str]) -> None:
    assert seen <= set(BY_ID)


def test_get_accounts(c: httpx.Client, checker: Any) -> None:
    checker("get_accounts", c.get("/api/accounts"))
    checker("get_accounts", c.get("/api/accounts", headers={"revision": "nope"}))


def test_lists_endpoints(c: httpx.Client, checker: Any) -> None:
    r = c.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "S"}}})
    checker("create_list", r)
    list_id = r.json()["data"]["id"]
    checker("create_list", c.post("/api/lists", json={"data": {"type": "list"}}))
    create_list(c, "S2")
    checker("get_lists", c.get("/api/lists", params={"page[size]": "1"}))
    checker("get_lists", c.get("/api/lists", params={"filter": "bogus"}))
    checker("get_list", c.get(f"/api/lists/{list_id}"))
    checker("get_list", c.get(f"/api/lists/{list_id}?additional-fields[list]=profile_count"))
    checker("get_list", c.get("/api/lists/missing"))
    checker("delete_list", c.delete(f"/api/lists/{create_list(c, 'gone')}"))
    checker("delete_list", c.delete("/api/lists/missing"))


def test_bulk_and_member_endpoints(c: httpx.Client, checker: Any) -> None:
    list_id = create_list(c, "Members")
    profiles = [
        {
            "email": f"s{i}@example.com",
            "phone_number": f"+1415555{i:04d}",
            "external_id": f"x{i}",
            "first_name": "S",
            "location": {"city": "Boston", "latitude": 42.36, "zip": None},
            "properties": {"n": i},
        }
        for i in range(30)
    ]
    r = c.post("/api/profile-bulk-import-jobs", json=import_body(profiles, list_id))
    checker("bulk_import_profiles", r)
    job_id = r.json()["data"]["id"]
    bad = c.post("/api/profile-bulk-import-jobs", json=import_body([{"email": "bad"}], list_id))
    checker("bulk_import_profiles", bad)
    checker("bulk_import_profiles", c.post("/api/profile-bulk-import-jobs", content=b"[]"))
    wait_job(c, job_id)
    checker("get_bulk_import_profiles_job", c.get(f"/api/profile-bulk-import-jobs/{job_id}"))
    checker(
        "get_bulk_import_profiles_job",
        c.get(f"/api/profile-bulk-import-jobs/{job_id}", params={"include": "lists"}),
    )
    checker("get_bulk_import_profiles_job", c.get("/api/profile-bulk-import-jobs/none"))
    errors = c.get(
        f"/api/profile-bulk-import-jobs/{job_id}/import-errors", params={"page[size]": "2"}
    )
    assert errors.json()["data"], "rowfail=0.5 should have failed some rows"
    checker("get_errors_for_bulk_import_profiles_job", errors)
    checker(
        "get_errors_for_bulk_import_profiles_job",
        c.get(f"/api/profile-bulk-import-jobs/{job_id}/import-errors", params={"page[size]": "0"}),
    )
    checker("get_bulk_import_profiles_jobs", c.get("/api/profile-bulk-import-jobs"))
    checker(
        "get_bulk_import_profiles_jobs",
        c.get("/api/profile-bulk-import-jobs", params={"filter": "equals(color,'x')"}),
    )
    members = c.get(f"/api/lists/{list_id}/profiles", params={"page[size]": "5"})
    assert members.json()["data"]
    checker("get_profiles_for_list", members)
    checker("get_profiles_for_list", c.get("/api/lists/none/profiles"))
    ref = {"data": [{"type": "profile", "id": members.json()["data"][0]["id"]}]}
    path = f"/api/lists/{list_id}/relationships/profiles"
    checker("add_profiles_to_list", c.post(path, json=ref))
    checker("add_profiles_to_list", c.post(path, json={"data": []}))
    checker("remove_profiles_from_list", c.request("DELETE", path, json=ref))
    checker("remove_profiles_from_list", c.request("DELETE", path, content=b"x"))


def test_error_statuses_match_client_error_schema(c: httpx.Client, checker: Any) -> None:
    checker("get_lists", c.get("/api/lists", headers={"Authorization": "nope"}))
    checker(
        "create_list", c.post("/api/lists", content=b"{}", headers={"Content-Type": "text/csv"})
    )
    checker("get_lists", c.put("/api/lists"))  # 405 uses the same envelope


def test_checker_rejects_a_wrong_body(checker: Any) -> None:
    """Guard against a checker that accepts anything."""
    headers = {"content-type": "application/vnd.api+json"}
    bad = httpx.Response(200, json={"data": [{"type": "list", "id": 1}]}, headers=headers)
    with pytest.raises(AssertionError):
        checker("get_lists", bad)
    no_code = httpx.Response(400, json={"errors": [{"id": "x", "title": "t", "detail": "d"}]})
    with pytest.raises((AssertionError, KeyError)):
        checker("get_lists", no_code)


@pytest.fixture
def plain() -> Iterator[httpx.Client]:
    """A sandbox without rowfail, for tests that need every row imported."""
    with (
        SandboxServer(SandboxSettings(rate_limits=False, job_delay=0)) as s,
        client(s.base_url) as cl,
    ):
        yield cl


def test_sync_endpoints(plain: httpx.Client, checker: Any) -> None:
    c = plain
    list_id = create_list(c, "Sync")
    rows = [{"email": f"y{i}@example.com", "external_id": f"y{i}"} for i in range(5)]
    wait_job(
        c,
        c.post("/api/profile-bulk-import-jobs", json=import_body(rows, list_id)).json()["data"][
            "id"
        ],
    )
    members = c.get(
        f"/api/lists/{list_id}/profiles",
        params={
            "fields[profile]": "email,location.city",
            "additional-fields[profile]": "subscriptions",
            "page[size]": "2",
        },
    )
    assert members.json()["data"] and "next" in members.json()["links"]
    checker("get_profiles_for_list", members)
    flt = 'any(email,["y0@example.com","y1@example.com"])'
    ids = c.get(f"/api/lists/{list_id}/relationships/profiles", params={"filter": flt})
    assert len(ids.json()["data"]) == 2
    checker("get_profile_ids_for_list", ids)
    checker(
        "get_profile_ids_for_list",
        c.get(f"/api/lists/{list_id}/relationships/profiles", params={"page[size]": "0"}),
    )
    profiles = c.get(
        "/api/profiles", params={"filter": flt, "additional-fields[profile]": "subscriptions"}
    )
    checker("get_profiles", profiles)
    checker("get_profiles", c.get("/api/profiles", params={"fields[profile]": "nope"}))
    pid = profiles.json()["data"][0]["id"]
    sub = [{"email": "y0@example.com", "subscriptions": email_consent()}]
    r = c.post("/api/profile-subscription-bulk-create-jobs", json=subscribe_body(sub, list_id))
    assert r.status_code == 202
    checker("bulk_subscribe_profiles", r)
    bad = [{"email": "y0@example.com", "first_name": "Y", "subscriptions": email_consent()}]
    checker(
        "bulk_subscribe_profiles",
        c.post("/api/profile-subscription-bulk-create-jobs", json=subscribe_body(bad)),
    )
    unsub = [
        {
            "email": "y1@example.com",
            "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
        }
    ]
    body = subscribe_body(unsub, job_type="profile-subscription-bulk-delete-job")
    checker(
        "bulk_unsubscribe_profiles", c.post("/api/profile-subscription-bulk-delete-jobs", json=body)
    )
    for who in (pid, profiles.json()["data"][1]["id"]):
        one = c.get(f"/api/profiles/{who}", params={"additional-fields[profile]": "subscriptions"})
        checker("get_profile", one)
    checker("get_profile", c.get("/api/profiles/missing"))


def test_phone_and_revision_errors(c: httpx.Client, checker: Any) -> None:
    rows = [{"phone_number": "+1234"}]
    checker("bulk_import_profiles", c.post("/api/profile-bulk-import-jobs", json=import_body(rows)))
    checker(
        "bulk_import_profiles",
        c.post("/api/profile-bulk-import-jobs", json=import_body([{"email": "n@x.com"}], "NoSuch")),
    )
    for revision in ("2023-10-15", "2999-01-01", "bad"):
        checker("get_lists", c.get("/api/lists", headers=headers(revision=revision)))
    checker(
        "bulk_import_profiles",
        c.post(
            "/api/profile-bulk-import-jobs",
            json=import_body([{"email": "r@x.com"}]),
            headers=headers(revision="2023-10-15"),
        ),
    )


def test_fault_jobs_and_rate_limited_responses(checker: Any) -> None:
    """`stuck` keeps to the spec; `badstatus` deliberately does not (status `failed`), so only
    the rest of its resource is checked."""
    for kind in ("stuck", "badstatus"):
        settings = SandboxSettings(rate_limits=False, job_delay=0, faults={kind: 1.0})
        with SandboxServer(settings) as s, client(s.base_url) as cl:
            job_id = cl.post(
                "/api/profile-bulk-import-jobs", json=import_body([{"email": "f@x.com"}])
            ).json()["data"]["id"]
            r = cl.get(f"/api/profile-bulk-import-jobs/{job_id}")
            if kind == "badstatus":
                body = r.json()
                assert body["data"]["attributes"]["status"] == "failed"
                body["data"]["attributes"]["status"] = "complete"
                r = httpx.Response(
                    200, json=body, headers={"content-type": r.headers["content-type"]}
                )
            checker("get_bulk_import_profiles_job", r)
    settings = SandboxSettings(faults={"retry0": 1.0})
    with SandboxServer(settings) as s, client(s.base_url) as cl:
        checker("get_lists", cl.get("/api/lists"))
